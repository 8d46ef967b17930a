"""What every measurement shares: interleaved timing, the machine, matmul peaks, weights for models
that have none bundled, and result rows for the report.

Timing on a shared machine is noisy, so a reference and our path are always timed in the same run,
alternating (ref, ours, ref, ours, ...), and the report gives the ratio of their medians.
"""
from __future__ import annotations

import atexit
import datetime
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import gan
from gan import hardware, weights as gan_weights

log = logging.getLogger("benchmarks")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NOISE_MODELS = ("mnist-gan", "mnist-dcgan", "cifar10-gan", "dcgan-faces")


# ---------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Seconds per call of a reference and of ours, sampled alternately."""

    ref: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)

    @property
    def ref_s(self) -> float:
        return statistics.median(self.ref)

    @property
    def ours_s(self) -> float:
        return statistics.median(self.ours)

    @property
    def speedup(self) -> float:
        """How many times faster ours is than the reference (ratio of the medians)."""
        return self.ref_s / self.ours_s


def _calls_per_sample(fn: Callable[[], Any], min_sample_s: float) -> int:
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(1000, int(min_sample_s / max(once, 1e-6)) + 1))


def time_pair(ref: Callable[[], Any], ours: Callable[[], Any], *, repeats: int = 7, min_sample_s: float = 0.05,
              warmup: int = 1, sync: Callable[[], None] = lambda: None) -> Timing:
    """Time ``ref`` and ``ours`` alternately ``repeats`` times; each sample averages enough calls to
    last ``min_sample_s``. Both run ``warmup`` times first (oneDNN picks kernels on first use)."""
    for _ in range(warmup):
        ref(), ours()
    sync()
    k_ref, k_ours = _calls_per_sample(ref, min_sample_s), _calls_per_sample(ours, min_sample_s)
    timing = Timing()
    for i in range(repeats):
        order = ((ref, k_ref, timing.ref), (ours, k_ours, timing.ours))
        for fn, k, out in (order if i % 2 == 0 else order[::-1]):
            sync()
            start = time.perf_counter()
            for _ in range(k):
                fn()
            sync()
            out.append((time.perf_counter() - start) / k)
    return timing


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ---------------------------------------------------------------------------- the machine




def machine() -> dict[str, Any]:
    isa = hardware.cpu_isa()
    info = {
        "cpu": hardware.cpu_name(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
        "isa": ", ".join(isa) or "?", "torch": torch.__version__,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
        "device": str(hardware.serving_device()),
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?",
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


MATMUL_CALL_S = 0.25  # matmul_peak shrinks a dtype's matrices until one product takes about this long


def matmul_peak(device: str = "cpu", n: int = 2048, repeats: int = 7) -> dict[str, float]:
    """Sustained FLOP/s of large square matmuls in bf16 and fp32, timed alternately: the median of
    ``repeats`` samples, each a few back-to-back (n x n) @ (n x n) products. A dtype this CPU computes slowly
    gets smaller matrices (a 2048 product in bf16 took 12 s on an AVX2-only EPYC, and the whole measurement
    minutes), down to 256: one product of it takes about ``MATMUL_CALL_S``."""
    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    mats, sizes = {}, {}
    for k, dt in dtypes.items():
        size = 256
        while True:  # up from 256 while a product takes well under MATMUL_CALL_S, to at most n
            a, b = torch.randn(size, size, device=device).to(dt), torch.randn(size, size, device=device).to(dt)
            torch.mm(a, b)  # warm up
            sync()
            start = time.perf_counter()
            torch.mm(a, b)
            sync()
            if size >= n or (time.perf_counter() - start) * 8 > MATMUL_CALL_S:
                break
            size *= 2
        mats[k], sizes[k] = (a, b), size
    calls = 3 if device == "cpu" else 50
    samples: dict[str, list[float]] = {k: [] for k in dtypes}
    for i in range(repeats):
        for k, (a, b) in (list(mats.items()) if i % 2 == 0 else list(mats.items())[::-1]):
            sync()
            start = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b)
            sync()
            samples[k].append(calls * 2 * sizes[k] ** 3 / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in samples.items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call, counted by torch.utils.flop_counter (convolutions, matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------------------- weights


def has_weights(name: str) -> bool:
    return any(gan_weights.is_cached(s) for s in gan.registry.get_spec(name).sources)


def weights_dir(names: tuple[str, ...] | list[str], root: Path | None = None) -> Path:
    """A weights folder (FORGER_WEIGHTS_DIR layout) holding every model of ``names``: the bundled weights
    where they exist (linked), else freshly initialised ones (seeded; fine for speed). Returns its path."""
    if root is None:  # a folder of this run's own, gone when it ends (the random weights are up to 220 MB a model)
        root = Path(tempfile.mkdtemp(prefix="forger-bench-weights-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        spec = gan.registry.get_spec(name)
        target = root / name
        if target.exists():
            continue
        bundled = gan_weights.WEIGHTS_DIR / name
        if (bundled / "model.safetensors").exists():
            target.symlink_to(bundled.resolve(), target_is_directory=True)
            continue
        torch.manual_seed(0)
        g = gan.load_generator(name, pretrained=False)
        gan_weights.save_pretrained(g, target, name=name, family=spec.family, generator=spec.generator,
                                    card=f"# {name}\n\nRandom weights for benchmarks only.\n")
    return root


def weights_for(name: str, root: Path) -> Path | None:
    """``weights=`` for gan.sample / gan.translate: None when the model has its own weights here."""
    return None if has_weights(name) else root / name


# ---------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of a results table: named cells, and targets met or missed."""

    section: str
    cells: dict[str, Any]
    targets: list[tuple[str, bool]] = field(default_factory=list)  # (what, met)


def fmt(x: float, digits: int = 3) -> str:
    if x != x:  # nan
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"
