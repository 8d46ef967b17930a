"""Uploads into images: only files Gradio put in its upload folder are read (never a path a client names),
any kind of upload value becomes a PIL image or a clear error; sketchpad drawings; the video box's formats."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import gan

SKETCH_SIDE = 280  # the sketchpads' canvas: a digit drawn by hand (10x MNIST's 28)
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")  # what the Translate tab's video box takes


# what video translation imports beyond the app's own needs: (module, the package that brings it)
VIDEO_PACKAGES = (("imageio", "imageio"), ("imageio_ffmpeg", "imageio-ffmpeg"))


def missing_video_packages() -> list[str]:
    """The packages video translation needs that are not installed (requirements.txt brings them all)."""
    import importlib

    missing = []
    for module, package in VIDEO_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def upload_path(value: Any) -> str | None:
    """The file path inside whatever an upload component hands over: a path, or a Gradio FileData dict."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return str(value) or None
    if isinstance(value, dict):
        return value.get("path") or None
    path = getattr(value, "path", None)  # FileData model, tempfile wrapper
    if path is None:
        path = getattr(value, "name", None)
    return str(path) if path else None


def upload_root() -> Path:
    """The folder Gradio writes every upload into (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    from gradio.utils import get_upload_folder  # the app's own setting: read where Gradio reads it

    return Path(get_upload_folder())


def uploaded_file(value: Any) -> str:
    """The path of an upload, only if it is a regular file inside Gradio's upload folder.

    Events that skip Gradio's preprocessing get the client's payload as it was sent, so a client could
    name any server path; this refuses all but uploads, and the message never shows the path."""
    path = upload_path(value)
    if path is None:
        raise ValueError("no image: upload one, take one with the webcam, or paste one")
    real, root = os.path.realpath(path), os.path.realpath(upload_root())
    if os.path.commonpath([real, root]) != root or real == root:
        raise ValueError("that file was not uploaded to this app: upload the image instead")
    try:
        mode = os.lstat(real).st_mode
    except OSError:
        raise ValueError("the upload is gone (expired or deleted): please upload it again") from None
    if not stat.S_ISREG(mode):
        raise ValueError("the upload is not a regular file")
    return real


def open_upload(value: Any) -> Image.Image:
    """An uploaded image (an upload's path or FileData dict, a PIL image or an array) as a PIL image.

    Raises ValueError with a clear message for no image, a path that is not an upload, a file that is
    not an image, or one too large (``gan.MAX_PIXELS``, checked from the header before decoding)."""
    if value is None or (isinstance(value, (str, dict)) and not upload_path(value)):
        raise ValueError("no image: upload one, take one with the webcam, or paste one")
    img = gan.load_image(value if isinstance(value, (Image.Image, np.ndarray)) else uploaded_file(value))
    gan.checks.pixel_values(img)  # a float TIFF of NaNs would come out blank, without a word
    return img


def blank_sketch() -> Image.Image:
    """A sketchpad's empty canvas, white: with a background, Gradio's editor opens with its brush picked
    (with none, a drag draws nothing until Brush is pressed; docs/notes/sketchpad.md)."""
    return Image.new("RGB", (SKETCH_SIDE, SKETCH_SIDE), "white")


def sketch_image(value: Any) -> Image.Image | None:
    """The drawing of a gr.Sketchpad value (its composite), or None when nothing was drawn."""
    if value is None:
        return None
    if isinstance(value, dict):
        composite = value.get("composite")
        if composite is None:
            return None
        img = composite if isinstance(composite, (Image.Image, np.ndarray)) else upload_path(composite)
        if img is None:
            return None
    else:
        img = value
    img = open_upload(img)
    lo, hi = img.convert("L").getextrema()
    alpha = img.getchannel("A").getextrema() if "A" in img.getbands() else (255, 255)
    if lo == hi and alpha[1] == alpha[0]:
        return None  # an empty canvas
    return img
