"""Limits and checks at the package's boundary: one place for every bound on what a caller may ask.

The app, the CLI and the library share these, so a request is refused with the same clear message
wherever it comes from, before anything is allocated or decoded.
"""
from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

import numpy as np

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
MAX_PIXEL_VALUE = 65535.0  # a 16-bit image's white: larger values (a float TIFF of 3e38) are not an image's
MAX_JSON_DEPTH = 64  # nesting of a config.json or a safetensors header (Forger's own are at most 4 deep)


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


def pixel_values(img: Any) -> None:
    """A ValueError that says what is wrong with a float or 32-bit image (a TIFF, say) whose values no image
    holds: none that is a number (all NaN or infinite), or values past 16-bit white (3e38), which would come
    out as a blank picture. Other modes hold bytes and always pass."""
    if getattr(img, "mode", None) not in ("F", "I", "I;16", "I;16B", "I;16L"):
        return
    arr = np.asarray(img, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise ValueError("the image holds no pixel value that is a number (all NaN or infinite): it is not a "
                         "picture; save it with values from 0 to 1, 0 to 255 or 0 to 65535")
    top = float(np.abs(finite).max())
    if top > MAX_PIXEL_VALUE:
        raise ValueError(f"the image holds pixel values up to {top:.3g}; an image's values go from 0 to 1, 0 to "
                         f"255 or 0 to 65535: scale it into one of these ranges")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """How deeply a JSON text nests its arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def load_json(text: str | bytes, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(text)``, after a ValueError when it nests deeper than ``max_depth`` (a file nested 100,000
    deep would otherwise end in Python's "maximum recursion depth"). ``what`` names it in the message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"{what} is nested too deeply ({depth} levels; at most {max_depth})")
    return json.loads(text)
