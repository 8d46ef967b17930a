"""What this machine is: one probe of the CPU and the GPU, and the device models are served on.

Nothing here decides a code path: which path is fastest is measured (``gan.serving``). The CPU's
name and flags only label measurements, so that a cached choice is reused on the same kind of
machine and re-measured on another.
"""
from __future__ import annotations

import functools
import os
import platform
import time
from pathlib import Path

import torch

DEVICES = ("auto", "cpu", "cuda")
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


@functools.cache
def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags") and key not in fields:
            fields[key] = value.strip()
    return fields


def cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "CPU"


def cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu_isa() -> list[str]:
    """The vector and matrix extensions that matter for bf16 and fp32 speed, as labels."""
    flags = cpu_flags()
    return [f for f in ISA_FLAGS if f in flags]


def serving_device() -> torch.device:
    """``FORGER_DEVICE``: cpu, cuda or auto (the default: CUDA when it is there)."""
    asked = os.environ.get("FORGER_DEVICE", "auto").strip().lower() or "auto"
    if asked not in DEVICES:
        raise ValueError(f"FORGER_DEVICE={asked!r} is not one of {', '.join(DEVICES)}")
    if asked == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("FORGER_DEVICE=cuda, but CUDA is not available here; use cpu or auto")
    if asked == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(asked)


def _cpu_ticks() -> dict[int, tuple[int, int]] | None:
    """{CPU: (idle ticks, all ticks)} since boot for the CPUs this process may run on, from Linux's /proc/stat;
    None elsewhere."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    ticks = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and (allowed is None or int(name[3:]) in allowed):
                values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
                ticks[int(name[3:])] = (values[3] + values[4], sum(values))
    except (OSError, ValueError):
        return None
    return ticks or None


def idle_cores(seconds: float = 0.3) -> float | None:
    """How many of the cores this process may run on other processes left idle over the next ``seconds``
    (measured from /proc/stat, Linux); None where it cannot be read. E.g. about 1.0 on 2 cores while a busy
    loop runs."""
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    if before is None or after is None:
        return None
    shares = [(after[c][0] - before[c][0]) / (after[c][1] - before[c][1])
              for c in after if c in before and after[c][1] > before[c][1]]
    return sum(shares) if shares else None


def device_label(device: torch.device | str) -> str:
    """A name for the kind of machine a measurement was made on: the GPU's name, or the CPU's name,
    its ISA flags and the thread count (the same CPU is a different machine with 1 or 16 threads)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_name()} [{' '.join(cpu_isa())}] x{torch.get_num_threads()}"
