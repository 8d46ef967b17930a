"""Images for display: small images enlarged by a whole factor, equally sized images tiled in a grid, an input
beside its output for an image slider."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

DISPLAY_SIDE = 256  # small images are enlarged (nearest neighbour) to at least this for display


def enlarge(img: Image.Image, side: int = DISPLAY_SIDE) -> Image.Image:
    """Enlarge a small image by a whole factor (nearest neighbour) so its long side is about ``side``."""
    factor = max(1, round(side / max(img.size)))
    return img if factor == 1 else img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def make_grid(images: Sequence[Image.Image], columns: int | None = None, padding: int = 2,
              background: int = 255) -> Image.Image:
    """Tile equally sized images in rows of ``columns`` (default: about square), with white padding."""
    if not images:
        raise ValueError("no images to put in a grid")
    n = len(images)
    columns = max(1, min(columns or int(np.ceil(np.sqrt(n))), n))
    rows = (n + columns - 1) // columns
    w, h = images[0].size
    mode = "RGB" if any(im.mode != "L" for im in images) else "L"
    fill = background if mode == "L" else (background,) * 3
    sheet = Image.new(mode, (columns * w + (columns + 1) * padding, rows * h + (rows + 1) * padding), fill)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        sheet.paste(im.convert(mode), (padding + c * (w + padding), padding + r * (h + padding)))
    return sheet


def shrink_enlarged(img: Image.Image, side: int) -> Image.Image:
    """An image ``enlarge``d from ``side`` pixels back to its own size (exactly, nearest neighbour)."""
    if img.width == img.height and img.width > side and img.width % side == 0:
        return img.resize((side, side), Image.Resampling.NEAREST)
    return img


def before_after(before: Image.Image, after: Image.Image) -> tuple[Image.Image, Image.Image]:
    """An input and its output as an image slider shows them: the input in the output's mode (transparency on
    white, 16-bit scaled) and at its size, so the two halves line up."""
    from gan.images import to_mode  # (torch: the page is built without it)

    shown = to_mode(before, 1 if after.mode == "L" else 3)
    if shown.size != after.size:
        shown = shown.resize(after.size, Image.Resampling.BICUBIC)
    return shown, after
