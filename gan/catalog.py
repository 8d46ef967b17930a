"""What is registered and what can run here: the registry's models and whether their weights are on this
machine. Imports no torch, so the app can build its pickers before torch has loaded."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gan import weights as _weights
from gan.registry import get_spec, list_specs


def list_models(family: str | None = None, task: str | None = None) -> list[str]:
    """Registered model names, optionally only one family ('dcgan', 'cyclegan', ...) or task ('noise', 'translate')."""
    return [s.name for s in list_specs(family, task)]


def model_info(name: str) -> dict[str, Any]:
    """Everything the registry knows about a model, plus whether its weights are available offline."""
    spec = get_spec(name)
    return {
        "name": spec.name, "family": spec.family, "task": spec.task, "description": spec.description,
        "image_size": spec.image_size, "channels": spec.channels, "latent_dim": spec.latent_dim,
        "classes": list(spec.classes), "licence": spec.licence, "reverse": spec.reverse or None,
        "sources": [s.describe() for s in spec.sources],
        "offline": any(_weights.is_cached(s) for s in spec.sources),
        "train_command": spec.train_command(),
    }


def is_served(name: str, weights: str | Path | None = None) -> bool:
    """Whether ``name`` (with these weights) is loaded and ready to serve. Nothing is before the serving
    module (and torch) has been imported, which this does not do."""
    serving = sys.modules.get("gan.serving")
    return serving is not None and serving.is_served(name, weights)


def hand_models() -> list[str]:
    """The models that can learn a hand (``gan.train.finetune``): class-conditional noise models of digits (those
    the digit classifier judges) with one grey channel."""
    return [s.name for s in list_specs(task="noise") if s.conditional and s.evaluation is not None
            and s.channels == 1]
