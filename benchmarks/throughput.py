"""Generator throughput: ``gan.sample`` (latents -> PIL images, the whole serving path) against the
plain fp32 eager PyTorch reference of the same architecture (the DCGAN tutorial's way: ``model(z)``
in fp32 under ``torch.no_grad``, then the same tensor -> PIL conversion), at batch 1 and 64.

Also: FLOPs per call (torch.utils.flop_counter) and the FLOP/s achieved against this machine's
bf16 and fp32 matmul peaks measured in the same run; the pixel difference between the two paths'
images for the same seeds; and an ablation of the alternatives the fast path was chosen from.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

import gan
from benchmarks.common import NOISE_MODELS, Row, count_flops, time_pair, weights_dir, weights_for
from gan import hardware, latent, serving

BATCHES = (1, 64)
SEED = 0
BIG = ("cifar10-gan", "dcgan-faces")  # batch 64 targets: >= 4x on AMX CPUs, >= 1.2x on others; batch 1: >= 1x


def target(name: str, n: int) -> float | None:
    if n == 1:
        return 1.0
    if n == 64 and name in BIG:
        return 4.0 if "amx_bf16" in hardware.cpu_isa() else 1.2  # a label for the target, not a code path
    return None


def _labels(spec, n: int) -> torch.Tensor | None:
    return torch.arange(n) % len(spec.classes) if spec.conditional else None


def reference_sample(model: torch.nn.Module, spec, n: int, seed: int = SEED) -> list:
    """The tutorial's path: fp32 eager forward under no_grad, then the same tensor -> PIL conversion."""
    z = latent.seeded_latents(seed, n, spec.latent_dim)
    with torch.no_grad():
        x = model(z, _labels(spec, n))
    return gan.to_images(x)


def pixel_diff(a: list, b: list) -> tuple[float, float]:
    """Max and mean absolute difference (0..255) between two lists of PIL images."""
    x = np.stack([np.asarray(i, dtype=np.int16) for i in a])
    y = np.stack([np.asarray(i, dtype=np.int16) for i in b])
    d = np.abs(x - y)
    return float(d.max()), float(d.mean())


def run(peak: dict[str, float], quick: bool = False) -> list[Row]:
    root = weights_dir(NOISE_MODELS)
    rows = []
    repeats = 5 if quick else 9
    for name in NOISE_MODELS:
        spec = gan.registry.get_spec(name)
        weights = weights_for(name, root)
        ref_model = gan.load_generator(name, weights=weights)
        for n in BATCHES:
            choice = gan.serving_choice(name, weights=weights)  # measured (or read back) before timing
            diff_max, diff_mean = pixel_diff(gan.sample(name, seed=SEED, n=n, weights=weights),
                                             reference_sample(ref_model, spec, n))
            timing = time_pair(lambda: reference_sample(ref_model, spec, n),
                               lambda: gan.sample(name, seed=SEED, n=n, weights=weights),
                               repeats=repeats, min_sample_s=0.05 if quick else 0.2)
            z = latent.seeded_latents(SEED, n, spec.latent_dim)
            with torch.no_grad():
                flops = count_flops(lambda: ref_model(z, _labels(spec, n)))
            achieved = flops / timing.ours_s
            goal = target(name, n)
            targets = [] if goal is None else [
                (f"{name} batch {n}: gan.sample >= {goal:g}x the fp32 reference", timing.speedup >= goal)]
            targets.append((f"{name} batch {n}: within mean {serving.BOUND_MEAN} / max {serving.BOUND_MAX} levels "
                            f"of fp32 eager", diff_mean <= serving.BOUND_MEAN and diff_max <= serving.BOUND_MAX))
            rows.append(Row("throughput", {
                "model": name, "batch": n, "serving path": choice.path,
                "reference img/s": n / timing.ref_s, "gan.sample img/s": n / timing.ours_s,
                "speedup": timing.speedup,
                "GFLOP/img": flops / n / 1e9, "achieved GFLOP/s": achieved / 1e9,
                "% of fp32 peak": 100 * achieved / peak["fp32"],
                "max px diff": diff_max, "mean px diff": diff_mean,
            }, targets))
    return rows


# ---------------------------------------------------------------------------- the alternatives


def variants(model: torch.nn.Module) -> dict[str, Callable]:
    """path -> callable: every CPU path the serving runtime measures and chooses from (gan.serving)."""
    cpu = torch.device("cpu")
    out = {}
    for path in serving.candidates(cpu):
        if path == "eager":
            continue
        try:
            out[path] = serving.build(path, model, cpu)
        except RuntimeError:  # e.g. channels_last for a model without convolutions
            continue
    return out


def ablation(models: tuple[str, ...] = ("cifar10-gan", "dcgan-faces"), batches: tuple[int, ...] = (1, 64),
             repeats: int = 5, translators: tuple[str, ...] = ()) -> list[Row]:
    """Forward pass only, each alternative against eager fp32, timed alternately; and its pixel difference."""
    root = weights_dir(models + translators)
    rows = []
    for name in models + translators:
        spec = gan.registry.get_spec(name)
        model = gan.load_generator(name, weights=weights_for(name, root))
        for n in (batches if spec.task == "noise" else (1,)):
            if spec.task == "noise":
                args: tuple = (latent.seeded_latents(SEED, n, spec.latent_dim), _labels(spec, n))
            else:
                g = torch.Generator().manual_seed(0)
                small = torch.rand(1, spec.channels, spec.image_size // 8, spec.image_size // 8, generator=g)
                args = (torch.nn.functional.interpolate(small, size=spec.image_size, mode="bicubic") * 2 - 1,)
            with torch.inference_mode():
                reference = model(*args)
            for what, fn in variants(model).items():
                def ours(fn=fn) -> torch.Tensor:
                    with torch.inference_mode():
                        return fn(*args)

                def ref() -> torch.Tensor:
                    with torch.inference_mode():
                        return model(*args)

                timing = time_pair(ref, ours, repeats=repeats, min_sample_s=0.1)
                diff_max, diff_mean = pixel_diff(gan.to_images(ours().float()), gan.to_images(reference))
                rows.append(Row("ablation", {
                    "model": name, "batch": n, "path": what, "speedup vs eager fp32": timing.speedup,
                    "ms/call": timing.ours_s * 1e3, "eager fp32 ms/call": timing.ref_s * 1e3,
                    "max px diff": diff_max, "mean px diff": diff_mean}))
    return rows


def threads(models: tuple[str, ...] = ("mnist-gan", "dcgan-faces", "cifar10-gan"), batches: tuple[int, ...] = (1, 64),
            repeats: int = 5) -> list[Row]:
    """gan.sample with torch's default thread count against one thread, alternately. On a shared
    machine a parallel region waits for a core that another process holds; one thread never waits."""
    default = torch.get_num_threads()
    if default == 1:
        return []
    root = weights_dir(models)
    rows = []
    try:
        for name in models:
            weights = weights_for(name, root)
            gan.sample(name, seed=SEED, n=1, weights=weights)
            for n in batches:
                def call(k: int, n: int = n) -> None:
                    torch.set_num_threads(k)
                    gan.sample(name, seed=SEED, n=n, weights=weights)

                timing = time_pair(lambda: call(default), lambda: call(1), repeats=repeats, min_sample_s=0.1)
                rows.append(Row("threads", {
                    "model": name, "batch": n, f"{default} threads ms": timing.ref_s * 1e3,
                    "1 thread ms": timing.ours_s * 1e3, f"1 thread vs {default}": timing.speedup}))
    finally:
        torch.set_num_threads(default)
    return rows
