"""bf16 or fp32 for training: measured on this machine, never guessed from CPU flags.

``--precision bf16`` (the default) means "bf16 autocast where it makes a training step faster". Whether it
does depends on the machine, not on its name: on a CPU with AMX a step is several times faster in bf16; on
one with only AVX-512 bf16 it is slower than fp32; on a GPU it depends on the model's size. So before the
first step the trainer is copied, and the copy takes a few real steps on a real batch in each precision.
The faster one is used (bf16 must win by ``MARGIN``), and the choice is kept in ``FORGER_CACHE/training.json``,
keyed by device, torch version, model and batch size, so the next run of the same kind starts at once.

The probe uses copies of the networks and optimisers, and puts every RNG back: the run itself is exactly
what it would have been without it.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from gan import hardware
from gan.weights import read_cache_json, write_cache_json

log = logging.getLogger(__name__)

MARGIN = 0.9  # bf16 is used only when its step takes at most this fraction of fp32's
REPEATS = 3  # timed steps per precision, after one warm-up step; the fastest counts
CUT = 10.0  # a precision whose warm-up step takes over this many times the other's is not timed further ...
CUT_MIN_S = 1.0  # ... when it also took this long (short steps are all timed: a first call's one-time costs,
# loading kernels on a GPU, can be many times a small model's step, and timing them again costs nothing)


CACHE_NAME = "training.json"


def _read() -> dict[str, Any]:
    return read_cache_json(CACHE_NAME)


def cache_key(device: torch.device, model: str, batch_size: int, world: int = 1) -> str:
    where = hardware.device_label(device)
    return f"{where}|torch {torch.__version__}|{model}|batch {batch_size}|x{world}"


@contextlib.contextmanager
def _rng_kept(device: torch.device) -> Iterator[None]:
    """Every global RNG the probe's steps draw from (dropout) is put back afterwards."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


def time_steps(steps: dict[str, Callable[[], Any]], device: torch.device, repeats: int = REPEATS) -> dict[str, float]:
    """The fastest of ``repeats`` calls of each step, in seconds, after one warm-up call each. The steps take
    turns (A B A B ...), so that a machine busy with something else slows them alike.

    A step whose warm-up takes over ``CUT`` times the fastest warm-up, and over ``CUT_MIN_S``, is not called
    again: it has lost by far more than any margin, and each call is long (a large model's bf16 step on a CPU
    that only emulates bf16 took 29 s against fp32's 0.5 s). Its warm-up time is what it reports."""
    warm = {name: _timed(step, device) for name, step in steps.items()}
    limit = max(CUT * min(warm.values()), CUT_MIN_S)
    lost = {name for name, seconds in warm.items() if seconds > limit}
    best = {name: (warm[name] if name in lost else float("inf")) for name in steps}
    for _ in range(repeats):
        for name in steps:
            if name not in lost:
                best[name] = min(best[name], _timed(steps[name], device))
    return best


def _timed(step: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def choose(key: str, timings: Callable[[], dict[str, float]]) -> tuple[bool, dict[str, Any]]:
    """(use bf16?, the cache entry): from the cache, else from ``timings()`` -> {"fp32": s, "bf16": s}."""
    entry = _read().get(key)
    if isinstance(entry, dict) and isinstance(entry.get("bf16"), bool):
        return entry["bf16"], {**entry, "source": "cache"}
    seconds = timings()
    use = seconds["bf16"] <= MARGIN * seconds["fp32"]
    entry = {"bf16": use, "seconds": {k: round(v, 6) for k, v in seconds.items()}}
    write_cache_json(CACHE_NAME, key, entry)
    return use, {**entry, "source": "measured"}


def measure(trainer: Any, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Seconds of one full training step (G forward, D step, G step) of a copy of ``trainer`` on ``batch``,
    in fp32 and under bf16 autocast."""
    from gan.train.common import detach

    hw = trainer.hw
    with _rng_kept(hw.device):
        steps = {}
        for precision in ("fp32", "bf16"):
            probe = copy.deepcopy(trainer)
            probe.hw = copy.copy(hw)
            probe.hw.bf16 = precision == "bf16"
            steps[precision] = lambda p=probe: _step(p, batch, detach)
        return time_steps(steps, hw.device)


def _step(trainer: Any, batch: tuple[torch.Tensor, ...], detach: Callable[[Any], Any]) -> None:
    fake = trainer.generate(batch)
    trainer.d_step(batch, detach(fake))
    trainer.g_step(batch, fake)


def pick(trainer: Any, make_batch: Callable[[], tuple[torch.Tensor, ...]], model: str, batch_size: int) -> bool:
    """Set ``trainer.hw.bf16`` to the measured faster precision (the run asked for bf16); returns it.
    ``make_batch`` gives the real batch the probe times; it is called only when the choice is not cached."""
    hw = trainer.hw
    if hw.device.type == "cuda" and not torch.cuda.is_bf16_supported():
        hw.bf16 = False
        return False
    key = cache_key(hw.device, model, batch_size, hw.world)
    use, entry = choose(key, lambda: measure(trainer, make_batch()))
    hw.bf16 = use
    s = entry["seconds"]
    log.info("training precision: %s (%s: a step takes %.1f ms in fp32, %.1f ms in bf16)",
             "bf16 autocast" if use else "fp32", entry["source"], 1e3 * s["fp32"], 1e3 * s["bf16"])
    return use
