"""Serving: each generator runs on the fastest path that is measured correct on this machine.

The first time a model is served on a device for a batch bucket (1: sliders; up to 8: grids and
strips; up to 64: bulk), every candidate path is built and run on the same probe input:

- a path whose images differ from eager fp32 by more than ``CHECK_MEAN`` / ``CHECK_MAX`` levels
  of 255 is dropped (tighter than the promise, ``BOUND_MEAN`` 0.5 and ``BOUND_MAX`` 4, to leave
  headroom for inputs other than the probe);
- the others are timed interleaved with eager fp32, and the fastest is kept only if it beats
  eager fp32 by ``MARGIN``; otherwise eager fp32 is served. So no path is chosen that was measured slower.

The choice is kept in memory and on disk (``FORGER_CACHE/serving.json``), keyed by the device
(GPU name, or CPU name, ISA flags and threads), the torch version, the model and the bucket, so a
restart does not measure again; a choice read from disk is checked once against eager fp32.

Candidates (``PATHS``):

=================  ====================================================================
eager              the model as written, fp32: the reference
fused              CPU: the fp32 rewrite of ``gan.runtime`` (BatchNorm folded, oneDNN)
channels_last      fp32 with channels_last activations
bf16               bf16 weights and activations, channels_last; first and last layers fp32
bf16-autocast      bf16 autocast; first and last layers fp32
cuda-graph         CUDA: eager fp32 captured in a CUDA graph per input shape
cuda-graph-bf16    CUDA: the bf16 path captured in a CUDA graph
compile            ``torch.compile`` (only with ``FORGER_COMPILE=1``: compiling takes long)
=================  ====================================================================

``FORGER_PRECISION`` (or ``precision=`` in the API) overrides the measurement: ``fp32`` is eager
fp32 (exactly plain PyTorch), ``bf16`` the bf16 path, or any path name above; ``auto`` measures.

One compute thread (``compute_thread``): on the CPU, ``gan.sample``, ``gan.interpolate`` and
``gan.generate`` called from any thread but the main one (a server's request threads) run, and their
paths are measured, on one long-lived thread. torch parallelises each CPU op with OpenMP, and every
thread that runs ops keeps its own OpenMP team; once a process holds more OpenMP threads than cores,
libgomp stops spin-waiting between ops and every op pays a wake-up. Measured on a 2-core CPU:
cifar10-gan's fused forward takes 9.3 ms on one thread, 12.4 ms while one other (idle) team exists,
and 20 ms inside the app, where Gradio's request threads each had a team. These calls are bounded (at
most ``checks.MAX_IMAGES`` images) and short, so queueing them on one thread costs users little. The
model is loaded (maybe downloaded) first, on a short-lived thread of its own; translations (minutes at
full size) run on the request's own thread. ``FORGER_COMPUTE_THREAD=0`` runs everything on the caller's
thread.
"""
from __future__ import annotations

import collections
import concurrent.futures
import copy
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from gan import hardware, runtime

log = logging.getLogger(__name__)

PATHS = ("eager", "fused", "channels_last", "bf16", "bf16-autocast", "cuda-graph", "cuda-graph-bf16", "compile")
PRECISIONS = ("auto", "fp32") + PATHS[1:]
BUCKETS = (1, 8, 64)
BOUND_MEAN = 0.5  # the promise: served images are within this mean (levels of 255) of eager fp32 ...
BOUND_MAX = 4  # ... and within this many levels at any pixel
# What a path must show on the probe to be used: tighter than the promise, leaving headroom for the inputs
# it was not checked on.
CHECK_MEAN = 0.4
CHECK_MAX = 3
MARGIN = 0.97  # a path is chosen over eager fp32 only when measured at least 3% faster
TIME_BUDGET_S = 1.0  # timing rounds stop after this (at least MIN_ROUNDS)
MIN_ROUNDS, MAX_ROUNDS = 3, 15


def bucket(batch: int) -> int:
    """The measured batch size whose choice serves ``batch``."""
    return next((b for b in BUCKETS if batch <= b), BUCKETS[-1])


def resolve_precision(precision: str | None) -> str:
    """An explicit setting, else ``FORGER_PRECISION``, else 'auto'; returns 'auto' or a path name."""
    asked = precision if precision is not None else os.environ.get("FORGER_PRECISION", "auto")
    asked = (asked or "auto").strip().lower()
    if asked not in PRECISIONS:
        raise ValueError(f"precision {asked!r} is not one of {', '.join(PRECISIONS)}")
    return "eager" if asked == "fp32" else asked


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> the 0..255 levels ``gan.to_images`` writes, as float."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round()


def image_error(reference: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
    """(mean, max) absolute difference in levels of 255 between two image batches."""
    d = (to_levels(reference) - to_levels(other)).abs()
    return float(d.mean()), float(d.max())


def within_bound(error: Sequence[float] | None) -> bool:
    """The probe's (mean, max) error leaves a path usable: within CHECK_MEAN and CHECK_MAX."""
    return error is not None and error[0] <= CHECK_MEAN and error[1] <= CHECK_MAX


@dataclass
class Choice:
    """What was measured for one (device, model, bucket), and what is served."""

    path: str
    why: str
    times_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, list[float]] = field(default_factory=dict)  # path -> [mean, max] levels
    rejected: dict[str, str] = field(default_factory=dict)  # path -> reason
    source: str = "measured"  # measured | disk | forced


def choose(times_ms: dict[str, float], errors: dict[str, Sequence[float]],
           rejected: dict[str, str] | None = None) -> Choice:
    """The fastest path within the accuracy bound, or eager fp32 unless one beats it by ``MARGIN``."""
    rejected = dict(rejected or {})
    for path, err in errors.items():
        if path != "eager" and not within_bound(tuple(err)) and path not in rejected:
            rejected[path] = f"differs from eager fp32 by mean {err[0]:.2f}, max {err[1]:.0f} levels " \
                             f"(allowed {CHECK_MEAN}, {CHECK_MAX})"
    if "eager" not in times_ms:
        raise ValueError("eager fp32 must be timed: it is the reference every path is compared with")
    accurate = {p: t for p, t in times_ms.items() if p not in rejected and (p == "eager" or p in errors)}
    best = min(accurate, key=accurate.__getitem__)
    eager = times_ms["eager"]
    if best != "eager" and accurate[best] > eager * MARGIN:
        why = f"eager fp32: no path was measured {100 * (1 - MARGIN):.0f}% faster ({best} {accurate[best]:.3g} ms " \
              f"vs {eager:.3g} ms)"
        best = "eager"
    elif best == "eager":
        why = f"eager fp32: the fastest path that meets the accuracy bound ({eager:.3g} ms)"
    else:
        why = f"{best}: {eager / accurate[best]:.2f}x eager fp32 ({accurate[best]:.3g} ms vs {eager:.3g} ms), " \
              f"within mean {CHECK_MEAN} / max {CHECK_MAX} levels"
    return Choice(best, why, dict(times_ms), {k: list(v) for k, v in errors.items()}, rejected)


# ---------------------------------------------------------------------------- building the paths


def _is_float(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _compute_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def _keep_fp32(module: nn.Module) -> None:
    """Run ``module`` in fp32 whatever the autocast or the input dtype around it."""
    module.float()
    inner = module.forward
    device_type = module.weight.device.type

    def forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, enabled=False):
            return inner(*(a.float() if _is_float(a) else a for a in args), **kwargs)

    module.forward = forward


def _cast_inputs_to_weights(module: nn.Module, args: tuple) -> tuple:
    dtype = next(module.parameters(recurse=False)).dtype
    return tuple(a.to(dtype) if _is_float(a) and a.dtype != dtype else a for a in args)


def _conv_model(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def build_bf16(model: nn.Module) -> nn.Module:
    """bf16 weights and activations, channels_last, with the first and last layers in fp32 (the
    input and the image are where bf16's 8-bit mantissa shows)."""
    m = copy.deepcopy(model).to(torch.bfloat16)
    if _conv_model(m):
        m = m.to(memory_format=torch.channels_last)
    for leaf in m.modules():
        if next(leaf.parameters(recurse=False), None) is not None:
            leaf.register_forward_pre_hook(_cast_inputs_to_weights)
    layers = _compute_layers(m)
    for end in {id(layers[0]): layers[0], id(layers[-1]): layers[-1]}.values() if layers else ():
        end.float()
    return m


def build_bf16_autocast(model: nn.Module, device: torch.device) -> Callable:
    m = copy.deepcopy(model)
    layers = _compute_layers(m)
    for end in {id(layers[0]): layers[0], id(layers[-1]): layers[-1]}.values() if layers else ():
        _keep_fp32(end)

    def run(*inputs: Any) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return m(*inputs)

    return run


class CudaGraphs:
    """``fn`` replayed from a CUDA graph captured once per input signature (shape and dtype), at most
    ``max_graphs`` kept (least recently used dropped). Replays share static buffers, so calls are
    serialised; the output is cloned before the lock is released."""

    def __init__(self, fn: Callable, max_graphs: int = 16, capture: Callable | None = None) -> None:
        self.fn, self.max_graphs = fn, max_graphs
        self.graphs: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()
        self.lock = threading.Lock()
        self._capture = capture or self._capture_cuda

    @staticmethod
    def signature(inputs: Sequence[Any]) -> tuple:
        return tuple(None if t is None else (tuple(t.shape), t.dtype) for t in inputs)

    def _capture_cuda(self, inputs: Sequence[Any]) -> tuple:
        static = [None if t is None else t.clone() for t in inputs]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up outside the graph: cuDNN picks its algorithms, allocations settle
                self.fn(*static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.fn(*static)
        return static, out, graph.replay

    def __call__(self, *inputs: Any) -> torch.Tensor:
        key = self.signature(inputs)
        with self.lock:
            entry = self.graphs.get(key)
            if entry is None:
                entry = self._capture(inputs)
                self.graphs[key] = entry
                while len(self.graphs) > self.max_graphs:
                    self.graphs.popitem(last=False)
            else:
                self.graphs.move_to_end(key)
            static, out, replay = entry
            for s, t in zip(static, inputs):
                if s is not None:
                    s.copy_(t)
            replay()
            return out.clone()


def candidates(device: torch.device) -> list[str]:
    """The paths worth measuring on ``device``."""
    paths = ["eager", "channels_last", "bf16", "bf16-autocast"]
    if device.type == "cpu" and runtime.fused_available():
        paths.insert(1, "fused")
    if device.type == "cuda":
        paths += ["cuda-graph", "cuda-graph-bf16"]
    if os.environ.get("FORGER_COMPILE", "") == "1":
        paths.append("compile")
    return paths


def build(path: str, model: nn.Module, device: torch.device) -> Callable:
    """A callable for ``path`` over a copy of ``model`` (an eval-mode fp32 model on ``device``)."""
    if path == "eager":
        return model
    if path == "fused":
        if device.type != "cpu" or not runtime.fused_available():
            raise RuntimeError("the fused fp32 path needs a CPU with oneDNN")
        return runtime.fuse(copy.deepcopy(model))
    if path == "channels_last":
        if not _conv_model(model):
            raise RuntimeError("no convolutions: channels_last changes nothing")
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        return lambda *inputs: cl(*(t.contiguous(memory_format=torch.channels_last)
                                    if isinstance(t, torch.Tensor) and t.dim() == 4 else t for t in inputs))
    if path == "bf16":
        return build_bf16(model)
    if path == "bf16-autocast":
        return build_bf16_autocast(model, device)
    if path in ("cuda-graph", "cuda-graph-bf16"):
        if device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        return CudaGraphs(model if path == "cuda-graph" else build_bf16(model))
    if path == "compile":
        return torch.compile(copy.deepcopy(model), mode="reduce-overhead" if device.type == "cuda" else "default")
    raise ValueError(f"unknown serving path {path!r}; choose from {', '.join(PATHS)}")


# ---------------------------------------------------------------------------- the on-disk cache

_disk_lock = threading.Lock()
CACHE_NAME = "serving.json"


def _read_disk() -> dict[str, Any]:
    from gan.weights import read_cache_json

    return read_cache_json(CACHE_NAME)


def _write_disk(key: str, choice: Choice) -> None:
    from gan.weights import write_cache_json

    with _disk_lock:
        write_cache_json(CACHE_NAME, key, {k: v for k, v in asdict(choice).items() if k != "source"})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- one compute thread

_compute: concurrent.futures.ThreadPoolExecutor | None = None
_compute_lock = threading.Lock()
COMPUTE_THREAD_NAME = "forger-compute"


def compute_thread_wanted() -> bool:
    """Whether a call from this thread goes to the compute thread: not from the main thread (a script or
    a notebook: its own OpenMP team is the only one), nor from the compute thread itself, nor with
    FORGER_COMPUTE_THREAD=0 (or off / false / no)."""
    here = threading.current_thread()
    return (here is not threading.main_thread() and not here.name.startswith(COMPUTE_THREAD_NAME)
            and os.environ.get("FORGER_COMPUTE_THREAD", "1").strip().lower() not in ("0", "off", "false", "no"))


def compute_thread(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on the one compute thread, waiting for its result (exceptions included);
    on the caller's thread where ``compute_thread_wanted()`` says no."""
    global _compute
    if not compute_thread_wanted():
        return fn(*args, **kwargs)
    with _compute_lock:
        if _compute is None:
            _compute = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=COMPUTE_THREAD_NAME)
        pool = _compute
    return pool.submit(fn, *args, **kwargs).result()


# ---------------------------------------------------------------------------- one served model


class Served:
    """A generator served on the measured fastest path; call it like the model.

    Args:
        model: the generator, eval mode, fp32, on ``device``.
        device: where it runs.
        name: a label for the cache key (the model name and its weights).
        probe: ``probe(batch, inputs)`` -> inputs of that batch size shaped like ``inputs``: the
            deterministic input every path is measured and checked on.
        accuracy_batch: the fewest images the accuracy bound is checked on (cheap models: more
            images than the bucket, so that batch 1's check is not one image).
    """

    def __init__(self, model: nn.Module, device: torch.device, name: str,
                 probe: Callable[[int, tuple], tuple], accuracy_batch: int = 1) -> None:
        self.eager = model.eval().requires_grad_(False)
        self.device, self.name, self.probe = device, name, probe
        self.accuracy_batch = accuracy_batch
        self.choices: dict[tuple, Choice] = {}
        self._built: dict[str, Callable] = {"eager": self.eager}
        self._lock = threading.RLock()  # measuring and building, once per model

    # -- the key of a measurement
    def _shape_key(self, inputs: tuple) -> tuple:
        return (bucket(inputs[0].shape[0]),) + tuple(inputs[0].shape[2:])

    def disk_key(self, shape_key: tuple) -> str:
        shape = "x".join(str(s) for s in shape_key)
        return f"{hardware.device_label(self.device)}|torch {torch.__version__}|{self.name}|batch {shape}"

    def runner(self, path: str) -> Callable:
        fn = self._built.get(path)  # built once; later calls take no lock
        if fn is not None:
            return fn
        with self._lock:
            if path not in self._built:
                self._built[path] = build(path, self.eager, self.device)
            return self._built[path]

    def _probe(self, batch: int, like: tuple) -> tuple:
        return tuple(None if t is None else t.to(self.device) for t in self.probe(batch, like))

    def _run(self, fn: Callable, inputs: tuple) -> torch.Tensor:
        with torch.inference_mode():
            return fn(*inputs).float()

    # -- measurement
    def measure(self, inputs: tuple, paths: Sequence[str] | None = None) -> Choice:
        """Check and time every candidate on the probe of ``inputs``' bucket; no caching."""
        key = self._shape_key(inputs)
        probe = self._probe(key[0], inputs)
        check = self._probe(max(key[0], self.accuracy_batch), inputs)
        reference = self._run(self.eager, check)
        fns: dict[str, Callable] = {"eager": self.eager}
        errors: dict[str, list[float]] = {}
        rejected: dict[str, str] = {}
        for path in paths or candidates(self.device):
            if path == "eager":
                continue
            try:
                fn = self.runner(path)
                errors[path] = list(image_error(reference, self._run(fn, check)))
            except Exception as e:  # a path this model or machine can't run is simply not a candidate
                rejected[path] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
                continue
            if within_bound(tuple(errors[path])):
                fns[path] = fn
        times = self._time(fns, probe)
        return choose(times, errors, rejected)

    def _time(self, fns: dict[str, Callable], inputs: tuple) -> dict[str, float]:
        samples: dict[str, list[float]] = {p: [] for p in fns}
        for fn in fns.values():  # a second warm-up: caches, oneDNN primitives, graph capture
            self._run(fn, inputs)
        started = time.perf_counter()
        for rounds in range(1, MAX_ROUNDS + 1):
            for path, fn in fns.items():
                _sync(self.device)
                t0 = time.perf_counter()
                self._run(fn, inputs)
                _sync(self.device)
                samples[path].append(time.perf_counter() - t0)
            if rounds >= MIN_ROUNDS and time.perf_counter() - started > TIME_BUDGET_S:
                break
        return {p: 1000 * statistics.median(s) for p, s in samples.items()}

    def choice(self, inputs: tuple) -> Choice:
        """The path for inputs like these: in memory, else from disk (checked), else measured."""
        key = self._shape_key(inputs)
        found = self.choices.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self.choices.get(key)
            if found is not None:
                return found
            found = self._from_disk(key, inputs)
            if found is None:
                found = self.measure(inputs)
                log.info("%s, batch %s on %s: %s", self.name, key[0], self.device, found.why)
                _write_disk(self.disk_key(key), found)
            self.choices[key] = found
            return found

    def _from_disk(self, key: tuple, inputs: tuple) -> Choice | None:
        entry = _read_disk().get(self.disk_key(key))
        if not isinstance(entry, dict) or entry.get("path") not in PATHS:
            return None
        try:
            choice = Choice(**{k: v for k, v in entry.items() if k in Choice.__dataclass_fields__})
            if choice.path != "eager":  # the weights may have changed since: check the path once
                probe = self._probe(max(key[0], self.accuracy_batch), inputs)
                error = image_error(self._run(self.eager, probe), self._run(self.runner(choice.path), probe))
                if not within_bound(error):
                    return None
        except Exception:  # an unreadable entry or a path that no longer builds: measure again
            return None
        choice.source = "disk"
        return choice

    # -- serving
    def path_for(self, inputs: tuple, precision: str | None = None) -> str:
        asked = resolve_precision(precision)
        return self.choice(inputs).path if asked == "auto" else asked

    def __call__(self, *inputs: Any, precision: str | None = None) -> torch.Tensor:
        """Run the model on ``inputs`` (CPU or device tensors, or None); images in [-1, 1], float32, on the CPU."""
        inputs = tuple(t if t is None or (isinstance(t, torch.Tensor) and t.device == self.device)
                       else torch.as_tensor(t).to(self.device) for t in inputs)
        path = self.path_for(inputs, precision)
        return self._run(self.runner(path), inputs).cpu()
