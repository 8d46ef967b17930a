"""Remake the translator strips of the README's results section: python docs/results/figures.py

Each strip shows the first test input of each digit 0-9 (top) and what ``gan.translate`` makes of it
(bottom), with the bundled weights.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import gan  # noqa: E402
from gan import evaluate  # noqa: E402


def strip(name: str, size: int = 28) -> Image.Image:
    images, labels, _ = evaluate.translator_test_set(name)  # ordered 0, 1, ..., 9, 0, ...
    out = Image.new("L", (10 * size, 2 * size))
    for digit in range(10):
        source = Image.fromarray(images[digit].numpy(), "L")
        assert int(labels[digit]) == digit
        out.paste(source.resize((size, size), Image.Resampling.BICUBIC), (digit * size, 0))
        result = gan.translate(name, source).convert("L").resize((size, size), Image.Resampling.BICUBIC)
        out.paste(result, (digit * size, size))
    return out


if __name__ == "__main__":
    for model in ("pix2pix-sketch2digit", "cyclegan-digits2mnist", "cyclegan-mnist2digits"):
        path = ROOT / "docs" / "results" / f"{model}.png"
        strip(model).save(path)
        print(path)
