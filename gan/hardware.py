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


def _cpu_ticks() -> tuple[int, int, int] | None:
    """(idle ticks, all ticks, CPUs) of this machine since boot, from Linux's /proc/stat; None elsewhere."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        fields = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return None
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return fields[3] + fields[4], sum(fields), cpus


def idle_cores(seconds: float = 0.3) -> float | None:
    """How many of this machine's cores other processes left idle over the next ``seconds`` (measured from
    /proc/stat, Linux); None where it cannot be read. E.g. about 1.0 on 2 cores while a busy loop runs."""
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return after[2] * (after[0] - before[0]) / (after[1] - before[1])


def device_label(device: torch.device | str) -> str:
    """A name for the kind of machine a measurement was made on: the GPU's name, or the CPU's name,
    its ISA flags and the thread count (the same CPU is a different machine with 1 or 16 threads)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_name()} [{' '.join(cpu_isa())}] x{torch.get_num_threads()}"
