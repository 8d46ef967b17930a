"""Translation latency per 256x256 image: ``gan.translate`` (the whole path: PIL in, preprocessing,
generator, PIL out) against the same path with the plain fp32 eager generator.

The official architectures (CycleGAN resnet_9blocks, Pix2Pix unet_256) run with seeded random
weights (pretrained=False, saved in our format), which is fine for speed; the pixel difference
between the two paths is measured on the same input.
"""
from __future__ import annotations

from unittest import mock

import numpy as np
import torch
from PIL import Image

import gan
from benchmarks.common import Row, count_flops, time_pair, weights_dir, weights_for
from benchmarks.throughput import pixel_diff

MODELS = ("cyclegan-horse2zebra", "pix2pix-edges2shoes")
SMALL = ("cyclegan-digits2mnist", "pix2pix-sketch2digit")
TARGET_MS = {"cyclegan-horse2zebra": 300.0, "pix2pix-edges2shoes": 150.0}


def test_image(size: int = 256) -> Image.Image:
    """A deterministic photo-like RGB image: smooth colour blobs plus a little noise."""
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    arr = np.asarray(small, dtype=np.int16) + rng.integers(-8, 9, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def reference_translate(eager: torch.nn.Module, name: str, image: Image.Image, weights) -> Image.Image:
    """gan.translate's own pre- and post-processing around the plain fp32 eager generator."""
    def plain(x, precision=None):
        with torch.no_grad():
            return eager(x)

    with mock.patch.object(gan.serving, "serving_generator", lambda *_: plain):
        return gan.translate(name, image, weights=weights)


def run(peak: dict[str, float], quick: bool = False) -> list[Row]:
    models = MODELS if quick else MODELS + SMALL
    root = weights_dir(models)
    rows = []
    for name in models:
        spec = gan.registry.get_spec(name)
        weights = weights_for(name, root)
        eager = gan.load_generator(name, weights=weights)
        image = test_image(spec.preprocess.size).convert("L" if spec.channels == 1 else "RGB")
        ours = gan.translate(name, image, weights=weights)  # loads and prepares the model once
        diff_max, diff_mean = pixel_diff([ours], [reference_translate(eager, name, image, weights)])
        timing = time_pair(lambda: reference_translate(eager, name, image, weights),
                           lambda: gan.translate(name, image, weights=weights),
                           repeats=5 if quick else 9, min_sample_s=0.0 if spec.image_size >= 256 else 0.1)
        x = torch.zeros(1, spec.channels, spec.image_size, spec.image_size)
        with torch.no_grad():
            flops = count_flops(lambda: eager(x))
        achieved = flops / timing.ours_s
        ms = timing.ours_s * 1e3
        targets = [(f"{name}: translation <= {TARGET_MS[name]:g} ms", ms <= TARGET_MS[name])] \
            if name in TARGET_MS else []
        rows.append(Row("translate", {
            "model": name, "size": f"{spec.image_size}x{spec.image_size}",
            "serving path": gan.serving_choice(name, weights=weights).path,
            "reference ms": timing.ref_s * 1e3, "gan.translate ms": ms, "speedup": timing.speedup,
            "GFLOP": flops / 1e9, "achieved GFLOP/s": achieved / 1e9,
            "% of fp32 peak": 100 * achieved / peak["fp32"],
            "max px diff": diff_max, "mean px diff": diff_mean,
        }, targets))
    return rows
