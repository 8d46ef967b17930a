"""One file per model family. Each file defines ``Generator`` and ``Discriminator``.

A family module's constructor keyword arguments are its config: the registry stores
them, ``config.json`` beside the weights stores them, and ``build`` rebuilds from them.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# family name -> module name in gan.models
FAMILIES = {
    "mnist-gan": "mnist",
    "cdcgan": "cdcgan",
    "cifar": "cifar",
    "dcgan": "dcgan",
    "pix2pix": "pix2pix",
    "cyclegan": "cyclegan",
}


def family_module(family: str) -> ModuleType:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known families: {', '.join(FAMILIES)}")
    return importlib.import_module(f"gan.models.{FAMILIES[family]}")
