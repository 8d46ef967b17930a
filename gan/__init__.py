"""Forger: the classic GANs, ready to sample, interpolate, translate and train.

The public API (the app, the docs and the tests use these names as the contract)::

    >>> import gan
    >>> gan.list_models()[:2]
    ['mnist-gan', 'mnist-dcgan']
    >>> face = gan.sample("dcgan-faces", seed=3)[0]          # a PIL image
    >>> strip = gan.interpolate("mnist-dcgan", 1, 2, steps=8, label_a=3, label_b=8)
    >>> digit = gan.translate("pix2pix-sketch2digit", "sketch.png")

Each name is imported from the module that defines it on first use (PEP 562), so ``import gan`` does not
import torch: the app builds and serves its page first, and torch loads behind it.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# public name -> the module that defines it
API = {
    **dict.fromkeys(["list_models", "model_info", "is_served"], "gan.catalog"),
    **dict.fromkeys(["load_generator", "load_discriminator", "sample", "interpolate", "generate", "slider_directions",
                     "export_model", "MAX_PIXELS"], "gan.api"),
    **dict.fromkeys(["translate", "translate_folder", "translate_video"], "gan.translation"),
    **dict.fromkeys(["prepare", "serving_choice", "raise_if_failing", "clear_serving_cache"], "gan.serving"),
    **dict.fromkeys(["load_image", "to_images", "preprocess"], "gan.images"),
    **dict.fromkeys(["judge", "Verdict"], "gan.expert"),
    **dict.fromkeys(["project", "Projection"], "gan.projection"),
    "UnknownModelError": "gan.registry",
    **dict.fromkeys(["WeightsUnavailableError", "CheckpointMismatchError"], "gan.errors"),
}

__all__ = [name for name in API if name != "MAX_PIXELS"]


def __getattr__(name: str) -> Any:
    """A public name (imported from its module, then kept here), or a submodule: ``gan.registry``."""
    if name in API:
        value = getattr(importlib.import_module(API[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'gan' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
