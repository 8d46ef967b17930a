"""Images in and out: opening anything image-like (refused from its header when too large), decoding,
a model's input as the registry's ``Preprocess`` says, and tensors back to PIL images.

Big images are decoded and prepared at most two at a time (``image_slot``): bounded memory whatever the
number of requests.
"""
from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gan import checks, data as _data
from gan.registry import ModelSpec, get_spec

MAX_PIXELS = checks.MAX_PIXELS  # larger images are refused from their header, before decoding
BIG_IMAGE_PIXELS = 4_000_000  # images larger than this are decoded and prepared at most two at a time
_big_images = threading.BoundedSemaphore(2)


@contextlib.contextmanager
def image_slot(img: Image.Image):
    """Hold one of the two slots for big images while ``img`` is decoded and prepared: bounded memory
    whatever the number of requests."""
    if img.width * img.height <= BIG_IMAGE_PIXELS:
        yield
        return
    with _big_images:
        yield


def open_image(source: str | Path | bytes | Image.Image | np.ndarray) -> Image.Image:
    """Open ``source`` without decoding its pixels, and refuse it from its header if it is too large."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or source.size == 0:
            raise ValueError(f"an image array must be (H, W) or (H, W, C), got shape {source.shape}")
        if source.shape[0] * source.shape[1] > MAX_PIXELS:
            raise ValueError(f"image is {source.shape[1]}x{source.shape[0]}; the limit is "
                             f"{MAX_PIXELS // 1_000_000} megapixels, please downscale it")
        arr = source if source.dtype == np.uint8 else np.clip(np.nan_to_num(source), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    elif isinstance(source, (str, Path, bytes)):
        name = "the image" if isinstance(source, bytes) else Path(source).name
        if not isinstance(source, bytes):
            try:
                mode = os.stat(source).st_mode
            except OSError:
                raise ValueError(f"{name}: no such file") from None
            if not stat.S_ISREG(mode):  # a FIFO or a device would hold the reader forever
                raise ValueError("that path is not a regular file: give an image file")
        try:
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except Image.DecompressionBombError:
            raise ValueError(f"{name} is too large to process; please downscale it") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            reason = "not a known image format" if isinstance(e, UnidentifiedImageError) else type(e).__name__
            raise ValueError(f"{name} is not a readable image ({reason})") from None
    else:
        raise ValueError(f"expected an image (PIL image, file path, bytes or array), got {type(source).__name__}")
    if img.width * img.height > MAX_PIXELS:
        raise ValueError(f"image is {img.width}x{img.height}; the limit is {MAX_PIXELS // 1_000_000} megapixels, "
                         f"please downscale it")
    if img.width < 1 or img.height < 1:
        raise ValueError("the image is empty (0 pixels)")
    return img


def decode(img: Image.Image) -> Image.Image:
    """Decode the first frame of an opened image, EXIF rotation applied."""
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"the image could not be decoded ({type(e).__name__}: it may be truncated or "
                         f"corrupt)") from None
    checks.pixel_values(img)  # a float TIFF of NaN or 3e38 says so, rather than coming out blank
    return ImageOps.exif_transpose(img) or img


def load_image(source: str | Path | bytes | Image.Image | np.ndarray) -> Image.Image:
    """Open anything image-like as a PIL image (first frame of animations, EXIF rotation applied).

    Raises ValueError with a clear message (which never shows a server path) for anything that is not
    a readable image, is not a regular file, or has more than ``MAX_PIXELS`` pixels (checked from the
    header, before decoding).
    """
    img = open_image(source)
    with image_slot(img):
        return decode(img)


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any mode -> 'L' or 'RGB': transparency onto white, 16-bit and float scaled, CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32))
        if img.mode.startswith("I;16") or arr.max() > 255:
            top = 65535.0
        elif img.mode == "F" and arr.min() >= 0 and arr.max() <= 1.0:
            top = 1.0  # a float image in [0, 1], as scientific TIFFs store them
        else:
            top = 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def output_size(width: int, height: int, model_size: int, cap: int = 1024) -> tuple[int, int]:
    """The input's aspect ratio, long side between the model's size and ``cap``."""
    long_side = min(max(width, height, model_size), cap)
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def preprocess(name: str, image: Any) -> torch.Tensor:
    """One image -> the translator's input (C, S, S), as the registry's ``Preprocess`` says: mode,
    centre crop, resize, light-background inversion, MNIST-style digit framing, normalisation."""
    img = open_image(image)
    with image_slot(img):
        return prepare_input(get_spec(name), decode(img))


def prepare_input(spec: ModelSpec, img: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The model input (C, H, W): at the model's size (S, S), or at ``size`` (width, height) for full resolution.

    The resize is PIL's bicubic without ``reducing_gap``, as torchvision's ``Resize`` in the official
    ``get_transform``, so the input equals the official one at every size."""
    pre = spec.preprocess
    img = to_mode(img, pre.channels)
    if pre.crop == "center":
        img = ImageOps.fit(img, (min(img.size),) * 2)
    size = (pre.size, pre.size) if size is None else size
    if not pre.fit and img.size != size:  # fit_digit resizes from the full image instead
        img = img.resize(size, Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()) / 255.0
    x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)  # (C, H, W)
    if pre.invert_light and x.mean() > 0.5:
        x = 1.0 - x  # a dark drawing on light paper -> light strokes on black, like the training data
    if pre.fit:
        x = _data.fit_digit(x, pre.fit, pre.size)
    return (x - pre.mean) / pre.std


def to_images(x: torch.Tensor) -> list[Image.Image]:
    """(B, C, H, W) in [-1, 1] -> PIL images ('L' for one channel, 'RGB' for three)."""
    arr = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    arr = arr.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB") for a in arr]
