"""One file per model family. Each file defines ``Generator`` and ``Discriminator``.

A family module's constructor keyword arguments are its config: the registry stores
them, ``config.json`` beside the weights stores them, and ``build`` rebuilds from them.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from gan.registry import FAMILIES  # family name -> module name in gan.models: the registry names them

__all__ = ["FAMILIES", "family_module"]


def family_module(family: str) -> ModuleType:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known families: {', '.join(FAMILIES)}")
    return importlib.import_module(f"gan.models.{FAMILIES[family]}")
