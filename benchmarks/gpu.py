"""On a machine with CUDA: every generator served by ``gan.generate`` (the path measured fastest there,
``gan.serving``) against eager fp32 and against a captured CUDA graph of the same network, at batch 1 and
64; the pixel difference from eager fp32. Skipped without CUDA; nothing else depends on it.

Targets (issue 10): batch 1 within 1.5x of the captured graph, never slower than eager, and the
accuracy bound of every path.
"""
from __future__ import annotations

import os

import torch

import gan
from benchmarks.common import NOISE_MODELS, Row, count_flops, time_pair, weights_dir, weights_for
from benchmarks.throughput import pixel_diff
from gan import latent, serving

MODELS = NOISE_MODELS + ("pix2pix-sketch2digit", "cyclegan-digits2mnist", "cyclegan-horse2zebra",
                         "pix2pix-edges2shoes")
PEAK_KEY = {"eager": "fp32", "fused": "fp32", "channels_last": "fp32", "cuda-graph": "fp32", "compile": "fp32",
            "bf16": "bf16", "bf16-autocast": "bf16", "cuda-graph-bf16": "bf16"}


def _inputs(spec, n: int) -> tuple:
    if spec.task == "noise":
        return (latent.seeded_latents(0, n, spec.latent_dim).cuda(),
                (torch.arange(n) % len(spec.classes)).cuda() if spec.conditional else None)
    g = torch.Generator().manual_seed(0)
    small = torch.rand(n, spec.channels, 8, 8, generator=g)
    return ((torch.nn.functional.interpolate(small, size=spec.image_size, mode="bilinear") * 2 - 1).cuda(),)


def run(peak: dict[str, float], quick: bool = False) -> list[Row]:
    if not torch.cuda.is_available():
        return []
    os.environ["FORGER_DEVICE"] = "cuda"
    root = weights_dir(MODELS)
    rows = []
    for name in MODELS:
        spec = gan.registry.get_spec(name)
        weights = weights_for(name, root)
        served = serving.serving_generator(name, weights)
        eager = served.eager
        graph = serving.CudaGraphs(eager)  # the reference: plain fp32 weights, one captured graph
        for n in ((1, 64) if spec.task == "noise" else (1,)):
            args = _inputs(spec, n)
            choice = served.choice(args)

            def ref():
                with torch.inference_mode():
                    return eager(*args)

            def ours():
                return served(*args)  # the whole served call: path lookup, run, copy to the CPU

            def captured():
                with torch.inference_mode():
                    return graph(*args)

            sync = torch.cuda.synchronize
            timing = time_pair(ref, ours, repeats=5 if quick else 9, min_sample_s=0.05, sync=sync)
            vs_graph = time_pair(captured, ours, repeats=5 if quick else 9, min_sample_s=0.05, sync=sync)
            with torch.no_grad():
                flops = count_flops(ref)
            diff_max, diff_mean = pixel_diff(gan.to_images(ours()), gan.to_images(ref().float()))
            achieved = flops / timing.ours_s
            dtype = PEAK_KEY.get(choice.path, "fp32")
            targets = [(f"{name} batch {n} on CUDA: never slower than eager", timing.speedup >= 1.0),
                       (f"{name} batch {n} on CUDA: within mean {serving.BOUND_MEAN} / max {serving.BOUND_MAX} "
                        f"levels", diff_mean <= serving.BOUND_MEAN and diff_max <= serving.BOUND_MAX)]
            if n == 1:
                targets.append((f"{name} batch 1 on CUDA: within 1.5x of a captured CUDA graph",
                                vs_graph.speedup >= 1 / 1.5))
            rows.append(Row("gpu", {
                "model": name, "batch": n, "path": choice.path, "eager fp32 ms": timing.ref_s * 1e3,
                "CUDA graph fp32 ms": vs_graph.ref_s * 1e3, "ours ms": timing.ours_s * 1e3,
                "vs eager": timing.speedup, "vs CUDA graph": vs_graph.speedup,
                "achieved TFLOP/s": achieved / 1e12, f"% of {dtype} matmul peak": 100 * achieved / peak[dtype],
                "max px diff": diff_max, "mean px diff": diff_mean}, targets))
    return rows
