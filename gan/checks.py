"""Limits and checks at the package's boundary: one place for every bound on what a caller may ask.

The app, the CLI and the library share these, so a request is refused with the same clear message
wherever it comes from, before anything is allocated or decoded.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

MAX_IMAGES = 256  # images per call of sample / generate (a grid, a batch)
MAX_FRAMES = 256  # frames of an interpolation
MAX_SEED = 2**32 - 1  # seeds are 0 .. MAX_SEED
MAX_TRUNCATION = 4.0  # latents scaled by more than this are far outside what a GAN was trained on
MAX_EDIT = 100.0  # slider values, along unit directions
MAX_PIXELS = 50_000_000  # input images, checked from the header before decoding (app, CLI and library)
MAX_PARAMETERS = 200_000_000  # a generator or discriminator built from a weights file's config
MAX_WEIGHTS_BYTES = 2 << 30  # a weights file (the largest bundled or official one is ~45 MB)
MAX_BATCH_SIZE = 4096  # training batch size
MIN_RESOLUTION, MAX_RESOLUTION = 16, 8192  # translate(resolution=N): the output's long side in pixels
MAX_TRANSLATE_PIXELS = 12_000_000  # translation at full resolution (a 4000x3000 photo); larger inputs are scaled to fit
MAX_FOLDER_IMAGES = 1000  # images of one folder translated by one call
MAX_VIDEO_FRAMES = MAX_FRAMES  # frames of a video translated by one call
MAX_PROJECTION_STEPS = 2000  # Adam steps of one projection (gan.project)
MAX_PROJECTION_STARTS = 16  # starting latents of one projection, per class


def number(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> Any:
    """``value`` as an int (``integer``) or float within [lo, hi]; a ValueError that says what is wanted otherwise.

    Refuses None, strings, booleans, NaN and infinities: a request never reaches a model with them."""
    what = f"a whole number from {int(lo)} to {int(hi)}" if integer else f"a number from {lo:g} to {hi:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = "nothing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        raise ValueError(f"{name} must be {what}, got {shown}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value}")
    shown = f"{int(value)}" if value == int(value) else f"{value:g}"
    if (integer and value != int(value)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be {what}, got {shown}")
    return int(value) if integer else value
