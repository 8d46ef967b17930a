"""Regenerate the Translate tab's example images: python docs/examples/make_examples.py

- sketch_2.png, sketch_7.png: hand-drawn-looking digit outlines (dark strokes on white paper, drawn
  with PIL along a slightly jittered path), like what a user draws on the sketchpad;
- mnist_*.png: real MNIST digits from the subset bundled with the package (gan.data.mnist_offline);
- uci_*.png: real 8x8 UCI digits (scikit-learn's, vendored as gan.data.uci_digits), enlarged to 112x112
  with visible pixels, as a scan would look: the input cyclegan-digits2mnist is made for.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def _stroke(points: list[tuple[float, float]], seed: int, size: int = 280, width: int = 16) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    # densify the path and jitter it a little, like a hand on a touchpad
    pts = np.asarray(points, dtype=np.float64) * size
    segments = [np.linspace(a, b, 12, endpoint=False) for a, b in zip(pts[:-1], pts[1:], strict=True)]
    dense = np.concatenate([*segments, pts[-1:]])
    dense += np.cumsum(rng.normal(0, 0.6, dense.shape), axis=0).clip(-4, 4)
    draw.line([tuple(p) for p in dense], fill=20, width=width, joint="curve")
    return img


def main() -> None:
    two = [(0.30, 0.32), (0.38, 0.22), (0.52, 0.18), (0.65, 0.24), (0.68, 0.36), (0.60, 0.50), (0.45, 0.63),
           (0.30, 0.78), (0.50, 0.78), (0.72, 0.78)]
    seven = [(0.28, 0.22), (0.50, 0.22), (0.72, 0.22), (0.64, 0.40), (0.56, 0.58), (0.50, 0.80)]
    _stroke(two, seed=2).save(HERE / "sketch_2.png", optimize=True)
    _stroke(seven, seed=7).save(HERE / "sketch_7.png", optimize=True)

    from gan.data import mnist_offline

    images, labels = mnist_offline("train")
    for digit in (3, 8):
        i = int(np.flatnonzero(labels.numpy() == digit)[0])
        Image.fromarray(images[i].numpy(), "L").save(HERE / f"mnist_{digit}.png", optimize=True)

    from gan.data import uci_digits

    images, labels = uci_digits()
    for digit in (4, 9):
        i = int(np.flatnonzero(labels.numpy() == digit)[0])
        scan = Image.fromarray(images[i].numpy(), "L").resize((112, 112), Image.Resampling.NEAREST)
        scan.save(HERE / f"uci_{digit}.png", optimize=True)


if __name__ == "__main__":
    main()
