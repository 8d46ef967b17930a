"""On a machine with CUDA: each generator's forward pass, fp32 eager against the fast path there
(``runtime.prepare(model, "cuda")``: channels_last, bf16 autocast where the GPU has bf16, else fp16
autocast). Skipped without CUDA; nothing else depends on it.
"""
from __future__ import annotations

import copy

import torch

import gan
from benchmarks.common import NOISE_MODELS, Row, count_flops, time_pair, weights_dir, weights_for
from benchmarks.throughput import pixel_diff
from gan import latent, runtime

MODELS = NOISE_MODELS + ("cyclegan-horse2zebra", "pix2pix-edges2shoes")


def run(peak: dict[str, float], quick: bool = False) -> list[Row]:
    if not torch.cuda.is_available():
        return []
    root = weights_dir(MODELS)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    rows = []
    for name in MODELS:
        spec = gan.registry.get_spec(name)
        eager = gan.load_generator(name, weights=weights_for(name, root), device="cuda")
        fast = runtime.prepare(copy.deepcopy(eager), "cuda")
        for n in ((1, 64) if spec.task == "noise" else (1,)):
            if spec.task == "noise":
                args = (latent.seeded_latents(0, n, spec.latent_dim).cuda(),
                        (torch.arange(n) % len(spec.classes)).cuda() if spec.conditional else None)
            else:
                args = (torch.rand(1, spec.channels, spec.image_size, spec.image_size, device="cuda") * 2 - 1,)

            def ref():
                with torch.no_grad():
                    return eager(*args)

            def ours():
                with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
                    return fast(*args)

            timing = time_pair(ref, ours, repeats=5 if quick else 9, min_sample_s=0.05,
                               sync=torch.cuda.synchronize)
            with torch.no_grad():
                flops = count_flops(ref)
            diff_max, diff_mean = pixel_diff(gan.to_images(ours().float()), gan.to_images(ref()))
            achieved = flops / timing.ours_s
            rows.append(Row("gpu", {
                "model": name, "batch": n, "eager fp32 ms": timing.ref_s * 1e3, "ours ms": timing.ours_s * 1e3,
                "speedup": timing.speedup, "achieved TFLOP/s": achieved / 1e12,
                f"% of {str(dtype).removeprefix('torch.')} matmul peak": 100 * achieved / peak["bf16"],
                "max px diff": diff_max, "mean px diff": diff_mean}))
    return rows
