"""Translation at full resolution: time and peak memory (RSS) of a 3000x2000 photo, each run in a fresh
process so that its peak RSS is its own.

- CycleGAN (resnet_9blocks): ``gan.translate(resolution="full")`` (the low-memory path) against the plain
  eager forward pass of the same network on the same (padded) input.
- Pix2Pix (unet_256): ``gan.translate(resolution="full")`` (half-overlapping feathered tiles) against the
  same tiles laid edge to edge (no overlap, so a quarter of the tiles, and visible seams).

The official architectures run with seeded random weights (the official weights cannot be downloaded
here), which is fine for time and memory.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from benchmarks.common import Row

ROOT = Path(__file__).resolve().parent.parent
CASES = (("cyclegan-horse2zebra", "plain forward"), ("pix2pix-edges2shoes", "edge-to-edge tiles"))
RSS_TARGET_GB = 3.0

_SCRIPT = """
import json, sys, tempfile, time
import torch
import torch.nn.functional as F
import gan
from gan import translation
name, how, width, height, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
spec = gan.registry.get_spec(name)
model = gan.load_generator(name, pretrained=False)
weights = gan.weights.save_pretrained(model, tempfile.mkdtemp() + "/" + name, name=name, family=spec.family,
                                      generator=spec.generator)
small = torch.rand(1, 3, 6, 9, generator=torch.Generator().manual_seed(1))
photo = gan.to_images(F.interpolate(small, size=(height, width), mode="bicubic").clamp(0, 1) * 2 - 1)[0]
def peak_gb():  # VmHWM: this process's own peak RSS (ru_maxrss keeps the parent's across exec)
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 2**20


before = peak_gb()
t = time.perf_counter()
if how == "ours":
    size = gan.translate(name, photo, weights=weights, resolution="full").size
else:
    x = gan.images.prepare_input(spec, photo, photo.size)[None]
    with torch.inference_mode():
        if spec.family == "cyclegan":
            y = model(translation._pad_to(x, 4)[0])[..., :height, :width]
        else:
            y = translation.run_tiled(model, x, spec.preprocess.size, overlap=0, margin=0)
    size = gan.to_images(y)[0].size
print(json.dumps({"s": time.perf_counter() - t, "rss_gb": peak_gb(),
                  "before_gb": before, "size": list(size)}))
"""


def _measure(name: str, how: str, width: int, height: int) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_SCRIPT), name, how, str(width), str(height),
                           str(torch.get_num_threads())], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return {"s": float("nan"), "rss_gb": float("nan"), "before_gb": float("nan"), "size": None,
                "error": done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Row]:
    width, height = (1200, 800) if quick else (3000, 2000)
    rows = []
    for name, reference in CASES:
        ref = _measure(name, "reference", width, height)
        ours = _measure(name, "ours", width, height)
        kept = ours["size"] == [width, height]
        rows.append(Row("fullres", {
            "model": name, "image": f"{width}x{height}", "threads": torch.get_num_threads(),
            "reference": reference, "reference s": ref["s"], "reference peak RSS GB": ref["rss_gb"],
            "gan.translate full s": ours["s"], "peak RSS GB": ours["rss_gb"],
            "RSS before the run GB": ours["before_gb"], "time ratio (ref/ours)": ref["s"] / ours["s"],
            "output size": "x".join(map(str, ours["size"] or ["?"])),
        }, [(f"{name}: {width}x{height} comes out at its size", kept),
            (f"{name}: peak RSS <= {RSS_TARGET_GB:g} GB", ours["rss_gb"] <= RSS_TARGET_GB)]))
    return rows
