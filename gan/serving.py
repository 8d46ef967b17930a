"""Serving: each generator runs on the fastest path that is measured correct on this machine.

Once per model, device and input shape (not per batch size), every candidate path is built and run on
one deterministic probe input at batch 1, within a bounded cost:

- eager fp32 runs first: once cold, once timed (``t_e``); everything after is counted in units of it;
- a candidate's first run is the accuracy check (on up to ``accuracy_batch`` images, as many as fit in
  ``CHECK_GFLOP`` of counted work, so the check is as strict on a busy machine as on a quiet one; its first
  image is run alone first, a step of its own, so a request waits for at most one image of a slow path): a path whose images differ from eager fp32 by more than ``CHECK_MEAN`` /
  ``CHECK_MAX`` levels of 255 is dropped (tighter than the promise, ``BOUND_MEAN`` 0.5 and ``BOUND_MAX``
  4, to leave headroom for inputs other than the probe); so is one whose first run takes more than
  ``FIRST_RUN_SLACK`` x eager's first run (+ ``FIRST_RUN_SLACK_S``: oneDNN compiles kernels per batch
  shape on first use);
- its first timed run must be within ``SLOWER`` x ``t_e`` (one retry; the first try alone may run as
  long as a first run), or it is dropped; a run
  is cut short at the next layer once it passes its limit (``TooSlow``), so a path that is
  pathologically slow on this CPU costs at most one layer of it; when bf16 is dropped as too slow,
  bf16-autocast (the same bf16 arithmetic) is not tried; neither is tried on a CPU where a bf16 matmul
  takes over ``BF16_SLOWER`` x fp32's (``bf16_slowdown``, measured once a process: 40x on an AVX2-only CPU);
- the survivors are timed interleaved with eager over two passes; the fastest is kept only if it
  beats eager by ``MARGIN`` in *both* passes, otherwise eager fp32 is served, so the choice does not
  flip on timing noise;
- the whole choice stops at ``BUDGET`` x ``t_e`` (at least ``MIN_BUDGET_S``): past it, the best path
  measured so far is kept, or eager. The worst case is written out in docs/testing.md.

An image never depends on the batch it is in: oneDNN and the BLAS pick kernels, blockings and thread splits by
batch size, so a batch's rows are in general not bit-identical to the same inputs run alone (measured here: an
MLP's rows differ between batch 1, batches 2-3 and batches 4+; dcgan-faces' eager rows agree in every batch,
its fused rows did only in batches of 1-2 while its first layer ran on the BLAS GEMM, before
``runtime._linear``). So with the path, the choice checks which batch shapes give every probe image's lone
bits, at every position (``Choice.sizes``), and a batch is computed in pieces of those shapes only (a lone
image of a cheap model may be padded up to a checked shape); where none agrees, each image alone. One path per
model and checked shapes make the same seed give the same pixels whatever ``n`` is. Since a path that wins
alone may batch badly (a path whose rows match only in batches of 1-2), the batch-1 winner is weighed against
64 images, each contender in pieces of its own checked shapes (``weigh``).

Off the click: a call from the main thread (a script, a notebook) measures at once. A call from any
other thread (a server's) never waits: until the model's choice is made it is served by eager fp32,
and the measurement runs on the compute thread one forward pass at a time, only while no request
waits and once ``QUIET_S`` (1 s) has passed since the last request: a burst of clicks never meets a step.
So in a server a model's first images are eager fp32, and later ones the chosen path (within
the bound of them); with a remembered choice, the chosen path serves from the first image.

The choice is kept in memory and on disk (``FORGER_CACHE/serving.json``), keyed by the device
(GPU name, or CPU name, ISA flags and threads), the torch version, the model and the input shape, so a
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

The served models (``serving_generator``, at the end of this file): each (model, weights) is loaded once,
behind a lock of its own, and shared by every caller; at most ``MAX_SERVED`` stay loaded (least recently
used dropped); a model whose weights could not be found is not tried again before its backoff
(``FAILURE_BACKOFF_S``) ends. ``gan.prepare``, ``gan.serving_choice``, ``gan.is_served``,
``gan.raise_if_failing`` and ``gan.clear_serving_cache`` are this cache's public face.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import copy
import functools
import hashlib
import importlib.util
import logging
import os
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan import checks, hardware, latent, runtime
from gan.registry import ModelSpec, as_spec, get_spec
from gan.weights import WeightsUnavailableError

log = logging.getLogger(__name__)

PATHS = ("eager", "fused", "channels_last", "bf16", "bf16-autocast", "onnxruntime", "cuda-graph", "cuda-graph-bf16",
         "compile")
PRECISIONS = ("auto", "fp32") + PATHS
BOUND_MEAN = 0.5  # the promise: served images are within this mean (levels of 255) of eager fp32 ...
BOUND_MAX = 4  # ... and within this many levels at any pixel
# What a path must show on the probe to be used: tighter than the promise, leaving headroom for the inputs
# it was not checked on.
CHECK_MEAN = 0.4
CHECK_MAX = 3
CHECK_GFLOP = 4.0  # the accuracy check runs on as many probe images (up to accuracy_batch) as fit in this much
# work: counted, not timed, so the check is as strict on a busy or slow machine as on a quiet one
MARGIN = 0.9  # a path is chosen over eager fp32 only when measured at least 10% faster, in both passes
SLOWER = 1.5  # a timed run over this multiple of eager's drops the path before it runs again
FIRST_RUN_SLACK = 3.0  # a path's first run (building kernels, the accuracy check) may take this x eager's first
SLACK_S = 0.001  # ... and every limit this much more: below a millisecond, timer and scheduler noise dominate
FIRST_RUN_SLACK_S = 0.05  # ... a first run this much more: oneDNN compiles a kernel per layer and batch shape
# on first use (the fused path's 5-layer MLP: 3 ms here, 8-14 ms in 2 of 8 fresh processes), which eager,
# already served, has done before; so may a path's first try alone
BUDGET = 30  # the whole choice stops after this many eager forward passes' time ...
MIN_BUDGET_S = 1.0  # ... or this, for models whose forward pass takes a few milliseconds or less
ROUNDS_PER_PASS = 2  # interleaved timing rounds in each of the two passes
BATCHES = (2, 4, 8, 16, 64)  # batch shapes a batch may be computed in, where its rows are the lone image's bits
PAD_GFLOP = 0.1  # a lone image may be computed padded to a batch of this much counted work, no more ...
PAD_TO = 4  # ... and of this size (an MLP's rows here: batch 1, batches 2-3 and batches 4+ each differ)
SHORT_RUNS_S = 0.005  # the weighing times a piece up to 5 times while its runs take less than this in all
MANY = 64  # the batch-1 choice is weighed against this many images (a grid), each path in its checked pieces
BF16_SLOWER = 4.0  # the bf16 paths are not tried on a CPU where a bf16 matmul measured this many times fp32's


class TooSlow(Exception):
    """A measured run passed its time limit; raised between two layers to cut the run short."""


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
    """What was measured for one (device, model, input shape), and what is served."""

    path: str
    why: str
    times_ms: dict[str, float] = field(default_factory=dict)  # path -> median of all its timed runs
    errors: dict[str, list[float]] = field(default_factory=dict)  # path -> [mean, max] levels
    rejected: dict[str, str] = field(default_factory=dict)  # path -> reason
    source: str = "measured"  # measured | disk | forced
    cost_ms: float = 0.0  # what measuring took, all in
    eager_ms: float = 0.0  # eager's first timed run, the unit of BUDGET
    sizes: list[int] = field(default_factory=lambda: [1])  # batch shapes ``path`` computes with identical rows
    threads: int = 0  # torch's thread count when ``sizes`` was checked (another count may split work otherwise)
    many_ms: dict[str, float] = field(default_factory=dict)  # path -> MANY images in pieces of its own sizes


def drain(steps: Generator[None, None, Any]) -> Any:
    """Runs a generator of steps to its end, at once; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def pieces(n: int, sizes: Sequence[int]) -> list[int]:
    """How a batch of ``n`` images is computed: the largest checked shapes first, the rest padded up to the
    smallest one (whose first rows are kept). ``pieces(70, [1, 2, 64]) == [64, 2, 2, 2]``."""
    out, left = [], n
    while left > 0:
        fits = [s for s in sizes if s <= left]
        size = max(fits) if fits else min(sizes)
        out.append(size)
        left -= size
    return out


def _winners(passes: dict[str, Sequence[Sequence[float]]], errors: dict[str, Sequence[float]],
             rejected: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """({path: median ms} of every timed path, {path: median ms} of those within the bound that beat eager
    fp32 by ``MARGIN`` in every pass, on each pass's fastest run)."""
    if not passes.get("eager"):
        raise ValueError("eager fp32 must be timed: it is the reference every path is compared with")
    n = len(passes["eager"])
    times = {p: statistics.median([t for one in ps for t in one]) for p, ps in passes.items() if ps and any(ps)}
    winners = {}
    for path, ps in passes.items():
        if path == "eager" or path in rejected or path not in errors or len(ps) != n \
                or not within_bound(tuple(errors[path])):
            continue
        if all(one and min(one) <= MARGIN * min(ref) for one, ref in zip(ps, passes["eager"])):
            winners[path] = times[path]
    return times, winners


def choose(passes: dict[str, Sequence[Sequence[float]]], errors: dict[str, Sequence[float]],
           rejected: dict[str, str] | None = None) -> Choice:
    """The fastest path within the accuracy bound that beats eager fp32 by ``MARGIN`` in every pass.

    ``passes``: path -> one list of timings (ms) per pass; a path is compared with eager pass by pass, on
    each pass's fastest run (another process on the machine only ever adds time), so one lucky pass does not
    make it win. Eager fp32 is kept unless a path wins them all."""
    rejected = dict(rejected or {})
    for path, err in errors.items():
        if path != "eager" and not within_bound(tuple(err)) and path not in rejected:
            rejected[path] = f"differs from eager fp32 by mean {err[0]:.2f}, max {err[1]:.0f} levels " \
                             f"(allowed {CHECK_MEAN}, {CHECK_MAX})"
    times, winners = _winners(passes, errors, rejected)
    n, eager = len(passes["eager"]), times["eager"]
    if winners:
        best = min(winners, key=winners.__getitem__)
        why = f"{best}: {eager / times[best]:.2f}x eager fp32 ({times[best]:.3g} ms vs {eager:.3g} ms), " \
              f"faster by {100 * (1 - MARGIN):.0f}% or more in each of {n} passes, within mean {CHECK_MEAN} / " \
              f"max {CHECK_MAX} levels"
    else:
        best = "eager"
        others = {p: t for p, t in times.items() if p != "eager" and p not in rejected and p in errors}
        if others:
            near = min(others, key=others.__getitem__)
            why = f"eager fp32: no path was {100 * (1 - MARGIN):.0f}% faster in every pass ({near} " \
                  f"{others[near]:.3g} ms vs {eager:.3g} ms)"
        else:
            why = f"eager fp32: no other path met the accuracy bound and the time limits ({eager:.3g} ms)"
    return Choice(best, why, times, {k: list(v) for k, v in errors.items()}, rejected)


def weigh(alone_ms: dict[str, float], many_ms: dict[str, float], chosen: str) -> str:
    """The path to serve, given each weighed path's time for one image as served (alone, or padded up to its
    smallest checked shape) and its time for ``MANY`` images in pieces of its own checked shapes: the smallest
    product of the two, each relative to eager's, among the paths that serve one image no slower than eager does;
    ``chosen`` (the batch-1 winner) gives way only to a product ``MARGIN`` below its own, and stays when eager was
    not weighed."""
    if "eager" not in many_ms or chosen not in many_ms:
        return chosen
    score = {p: alone_ms[p] / alone_ms["eager"] * many_ms[p] / many_ms["eager"] for p in many_ms
             if p == chosen or alone_ms[p] <= alone_ms["eager"]}  # one image never served slower than by eager
    best = min(score, key=score.__getitem__)
    return best if score[best] <= MARGIN * score[chosen] else chosen


# ---------------------------------------------------------------------------- building the paths


@functools.lru_cache(maxsize=8)
def bf16_slowdown(threads: int) -> float:
    """How many times longer a 256 x 256 matmul takes in bf16 than in fp32 on this CPU, with ``threads``
    threads (the faster of 3 runs each, after a warm-up: a few milliseconds, once a process and thread count).
    Measured, not read from CPU flags: 40x on an AVX2-only EPYC, where one bf16 layer of cifar10-gan ran past
    its limit for over a second (the choice's whole budget); about 1x or less with AMX or AVX-512 bf16."""
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        torch.mm(x, y)
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            torch.mm(x, y)
            runs.append(time.perf_counter() - t0)
        best[dtype] = min(runs)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


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

    run.module = m  # type: ignore[attr-defined]  # what the time limit of a measured run watches
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


def onnxruntime_available() -> bool:
    """ONNX Runtime and the onnx package (the exporter writes through it) are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


class OnnxRuntime:
    """The model exported to ONNX once and run in an ONNX Runtime CPU session: one per input signature (which
    inputs are given, and each one's shape past the batch, which stays dynamic).

    The export is kept in ``FORGER_CACHE/onnx``, named by a hash of the weights and the signature, so a restart
    does not export again. The session runs its ops on as many threads as torch (``torch.get_num_threads``), on
    the calling thread and no other pool (inter-op 1), and its workers sleep between runs instead of spinning,
    so on a small server it shares the cores with the one compute thread rather than competing for them."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.sessions: dict[tuple, Any] = {}
        self.lock = threading.Lock()
        digest = hashlib.sha256()
        for key, value in model.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        self.weights_hash = digest.hexdigest()[:16]

    def session_for(self, inputs: Sequence[Any]) -> None:
        """Export and open the session for inputs like these now (the first call would otherwise)."""
        self._session(inputs)

    def _session(self, inputs: Sequence[Any]) -> Any:
        import onnxruntime as ort

        given = tuple(t for t in inputs if t is not None)
        key = tuple(None if t is None else (tuple(t.shape[1:]), str(t.dtype)) for t in inputs)
        with self.lock:
            if key in self.sessions:
                return self.sessions[key]
            from gan.weights import cache_dir

            name = hashlib.sha256(repr((self.weights_hash, key, torch.__version__)).encode()).hexdigest()[:20]
            path = cache_dir() / "onnx" / f"{name}.onnx"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                names = [f"input{i}" for i in range(len(given))]
                partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
                with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated upstream
                    torch.onnx.export(_GivenOnly(self.model, inputs), given, str(partial), input_names=names,
                                      output_names=["images"], opset_version=17, dynamo=False,
                                      dynamic_axes={n: {0: "batch"} for n in names + ["images"]})
                os.replace(partial, path)  # whole or absent: a killed export never leaves a half file
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.sessions[key] = (session, [i.name for i in session.get_inputs()])
            return self.sessions[key]

    def __call__(self, *inputs: Any) -> torch.Tensor:
        session, names = self._session(inputs)
        feed = dict(zip(names, (t.detach().cpu().numpy() for t in inputs if t is not None)))
        return torch.from_numpy(session.run(None, feed)[0])


class _GivenOnly(nn.Module):
    """``model`` called with the given inputs in their places and None in the others, for the exporter."""

    def __init__(self, model: nn.Module, like: Sequence[Any]) -> None:
        super().__init__()
        self.model, self.absent = model, [t is None for t in like]

    def forward(self, *given: torch.Tensor) -> torch.Tensor:
        it = iter(given)
        return self.model(*(None if absent else next(it) for absent in self.absent))


def candidates(device: torch.device) -> list[str]:
    """The paths worth measuring on ``device``."""
    paths = ["eager", "channels_last", "bf16", "bf16-autocast"]
    if device.type == "cpu" and runtime.fused_available():
        paths.insert(1, "fused")
    if device.type == "cpu" and onnxruntime_available():
        paths.insert(1, "onnxruntime")
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

        def run(*inputs: Any) -> torch.Tensor:
            return cl(*(t.contiguous(memory_format=torch.channels_last)
                        if isinstance(t, torch.Tensor) and t.dim() == 4 else t for t in inputs))

        run.module = cl  # type: ignore[attr-defined]
        return run
    if path == "onnxruntime":
        if device.type != "cpu" or not onnxruntime_available():
            raise RuntimeError("the onnxruntime path needs the CPU and the onnxruntime and onnx packages")
        return OnnxRuntime(copy.deepcopy(model))
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


# ---------------------------------------------------------------------------- time limits and hooks

# A test hook: timing_hook(label, path, seconds) -> seconds, applied to every timed run of a measurement
# (never to its time limits). tests/conftest.py steers choices with it (FORGER_TEST_FAVOUR).
timing_hook: Callable[[str, str, float], float] | None = None


def _leaves(fn: Callable) -> list[nn.Module]:
    module = fn if isinstance(fn, nn.Module) else getattr(fn, "module", None)
    if not isinstance(module, nn.Module) or type(module).__name__ == "OptimizedModule":
        return []
    # an Identity (the fused path's placeholder for a folded layer) does no work: no hook, whose cost would
    # count against the path in a timing eager makes without hooks
    return [m for m in module.modules() if next(m.children(), None) is None and type(m) is not nn.Identity]


@contextlib.contextmanager
def time_limit(fn: Callable, until: float | None):
    """While inside, a forward pass of ``fn`` raises ``TooSlow`` at its next layer once
    ``time.perf_counter()`` passes ``until`` (None: no limit). The hooks are removed on leaving, so
    serving pays nothing for them."""
    if until is None:
        yield
        return

    def check(module: nn.Module, args: tuple) -> None:
        if time.perf_counter() > until:
            raise TooSlow

    handles = [m.register_forward_pre_hook(check) for m in _leaves(fn)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def counted_flops(model: nn.Module):
    """Counts the multiply-adds (x2) of ``model``'s convolutions and linear layers run while inside, into
    the one-item list it yields."""
    total = [0]

    def count(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if isinstance(module, nn.ConvTranspose2d):
            total[0] += 2 * args[0].numel() * module.weight[0].numel()
        elif isinstance(module, nn.Conv2d):
            total[0] += 2 * out.numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            total[0] += 2 * out.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in _compute_layers(model)]
    try:
        yield total
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------------- one compute thread

COMPUTE_THREAD_NAME = "forger-compute"
QUIET_S = 1.0  # background work (path choices) waits this long after the last request, or after it was queued
STARVED_S = 30.0  # ... but once it has waited this long, its steps run between requests (a server never quiet)


def compute_thread_enabled() -> bool:
    return os.environ.get("FORGER_COMPUTE_THREAD", "1").strip().lower() not in ("0", "off", "false", "no")


def compute_thread_wanted() -> bool:
    """Whether a call from this thread goes to the compute thread: not from the main thread (a script or
    a notebook: its own OpenMP team is the only one), nor from the compute thread itself, nor with
    FORGER_COMPUTE_THREAD=0 (or off / false / no)."""
    here = threading.current_thread()
    return (here is not threading.main_thread() and not here.name.startswith(COMPUTE_THREAD_NAME)
            and compute_thread_enabled())


def choices_deferred() -> bool:
    """Whether a model's path choice is made in the background (a server's threads) rather than at once
    (the main thread: a script)."""
    return threading.current_thread() is not threading.main_thread() and compute_thread_enabled()


class _ComputeThread:
    """One long-lived thread that runs requests first and background work one step (one forward pass) at a
    time, only once ``QUIET_S`` has passed with no request and no new background work: a user's clicks come in
    bursts (a slider dragged, a page's first sample then a tab's), and none of them waits on a step. Background
    work that has waited ``STARVED_S`` for a quiet second (a server never quiet) runs between requests."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: collections.deque = collections.deque()
        self._background: collections.deque = collections.deque()
        self._busy = False
        self._quiet_from = time.monotonic()  # the last request's end, or the last background work queued
        self._waiting_since = 0.0  # when the background queue last went from empty to not
        threading.Thread(target=self._loop, name=COMPUTE_THREAD_NAME, daemon=True).start()

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            self._jobs.append((future, fn, args, kwargs))
            self._cond.notify()
        return future

    def background(self, steps: Iterator[Any]) -> None:
        with self._cond:
            if not self._background:
                self._waiting_since = time.monotonic()
            self._background.append(steps)
            self._quiet_from = max(self._quiet_from, time.monotonic())
            self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running (tests, benchmarks); False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._background or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    now = time.monotonic()
                    quiet = min(self._quiet_from + QUIET_S, self._waiting_since + STARVED_S) - now
                    if self._background and quiet <= 0:
                        break
                    self._cond.wait(quiet if self._background else None)
                job = self._jobs.popleft() if self._jobs else None
                steps = None if job else self._background[0]
                self._busy = True
            try:
                if job is not None:
                    future, fn, args, kwargs = job
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn(*args, **kwargs))
                        except BaseException as e:  # noqa: BLE001 - the caller raises it
                            future.set_exception(e)
                else:
                    try:
                        next(steps)
                    except StopIteration:
                        self._drop(steps)
                    except Exception:  # a measurement that fails leaves eager fp32 serving
                        log.warning("a background serving measurement failed", exc_info=True)
                        self._drop(steps)
            finally:
                with self._cond:
                    self._busy = False
                    if job is not None:
                        self._quiet_from = time.monotonic()
                    self._cond.notify_all()

    def _drop(self, steps: Iterator[Any]) -> None:
        with self._cond:
            if self._background and self._background[0] is steps:
                self._background.popleft()


_compute: _ComputeThread | None = None
_compute_lock = threading.Lock()


def _compute_thread() -> _ComputeThread:
    global _compute
    with _compute_lock:
        if _compute is None:
            _compute = _ComputeThread()
        return _compute


def compute_thread(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on the one compute thread, waiting for its result (exceptions included);
    on the caller's thread where ``compute_thread_wanted()`` says no."""
    if not compute_thread_wanted():
        return fn(*args, **kwargs)
    return _compute_thread().submit(fn, *args, **kwargs).result()


def wait_for_background(timeout: float = 60.0) -> bool:
    """Wait until the compute thread has no request and no measurement left; False on timeout."""
    return _compute is None or _compute.wait_idle(timeout)


# ---------------------------------------------------------------------------- one served model


class Served:
    """A generator served on the measured fastest path; call it like the model.

    Args:
        model: the generator, eval mode, fp32, on ``device``.
        device: where it runs.
        name: a label for the cache key (the model name and its weights).
        probe: ``probe(batch, inputs)`` -> inputs of that batch size shaped like ``inputs``: the
            deterministic input every path is measured and checked on.
        accuracy_batch: the most images the accuracy bound is checked on (fewer where they would take more
            than ``CHECK_GFLOP`` of work).
    """

    def __init__(self, model: nn.Module, device: torch.device, name: str,
                 probe: Callable[[int, tuple], tuple], accuracy_batch: int = 1) -> None:
        self.eager = model.eval().requires_grad_(False)
        self.device, self.name, self.probe = device, name, probe
        self.accuracy_batch = accuracy_batch
        self.choices: dict[tuple, Choice] = {}
        self._built: dict[str, Callable] = {"eager": self.eager}
        self._lock = threading.RLock()  # measuring, once per model
        self._build_locks = {path: threading.Lock() for path in PATHS}  # building, once per path: never under _lock
        self._pending: set[tuple] = set()  # shapes whose choice is being made in the background
        self._spent = 0.0  # seconds the measurement under way has cost
        self._over = 0.0  # ... of which cut runs spent past their limits (one layer each: outside the budget)

    # -- the key of a measurement: the shape of one input, never the batch size
    @staticmethod
    def _shape_key(inputs: tuple) -> tuple:
        return tuple(inputs[0].shape[1:])

    def disk_key(self, shape_key: tuple) -> str:
        shape = "x".join(str(s) for s in shape_key)
        return f"{hardware.device_label(self.device)}|torch {torch.__version__}|{self.name}|input {shape}"

    def runner(self, path: str) -> Callable:
        fn = self._built.get(path)  # built once; later calls take no lock
        if fn is not None:
            return fn
        with self._build_locks[path]:  # a build can take seconds: it holds only its own path's lock
            if path not in self._built:
                self._built[path] = build(path, self.eager, self.device)
            return self._built[path]

    def _probe(self, batch: int, like: tuple) -> tuple:
        return tuple(None if t is None else t.to(self.device) for t in self.probe(batch, like))

    def _run(self, fn: Callable, inputs: tuple) -> torch.Tensor:
        with torch.inference_mode():
            return fn(*inputs).float()

    def _counted(self, fn: Callable, inputs: tuple) -> torch.Tensor:
        """``_run``, its time added to what the measurement under way has cost."""
        t0 = time.perf_counter()
        try:
            return self._run(fn, inputs)
        finally:
            self._spent += time.perf_counter() - t0

    def _timed(self, path: str, fn: Callable, inputs: tuple, until: float | None = None
               ) -> tuple[float, float, torch.Tensor]:
        """(real seconds, reported seconds, output) of one run of ``fn``, cut short with TooSlow once
        ``until`` seconds have passed (None: no limit). The reported time goes through ``timing_hook``."""
        _sync(self.device)
        t0 = time.perf_counter()
        try:
            with time_limit(fn, None if until is None else t0 + until):
                out = self._run(fn, inputs)
            _sync(self.device)
        except TooSlow:
            self._over += max(0.0, time.perf_counter() - t0 - until)
            raise
        finally:
            self._spent += time.perf_counter() - t0
        seconds = time.perf_counter() - t0
        return seconds, (timing_hook(self.name, path, seconds) if timing_hook else seconds), out

    @property
    def _charged(self) -> float:
        """What the budget counts of the measurement under way: its cost, less the layers that cut runs spent
        past their limits (a bf16 layer of cifar10-gan on an AVX2-only CPU took over a second, the whole budget,
        and left fused, 2.5x eager, untimed; docs/testing.md counts those layers outside the budget)."""
        return self._spent - self._over

    # -- measurement
    def measure(self, inputs: tuple, paths: Sequence[str] | None = None) -> Choice:
        """Check and time every candidate for inputs shaped like ``inputs``, at once; no caching."""
        return drain(self.measuring(inputs, paths))

    def measuring(self, inputs: tuple, paths: Sequence[str] | None = None) -> Generator[None, None, Choice]:
        """``measure`` as steps: it yields after every forward pass, so a server can answer requests
        between them; returns the Choice. Its budget counts only its own runs and builds, so a busy
        server does not cut it short."""
        self._spent = self._over = 0.0
        probe = self._probe(1, inputs)
        with counted_flops(self.eager) as flops:
            cold, _, _ = self._timed("eager", self.eager, probe)
        yield
        e_real, e_time, _ = self._timed("eager", self.eager, probe)
        yield
        budget = cold + max(BUDGET * e_real, MIN_BUDGET_S)
        k = max(1, min(self.accuracy_batch, int(CHECK_GFLOP * 1e9 / max(flops[0], 1))))
        check = self._probe(k, inputs)
        check_real, _, reference = self._timed("eager", self.eager, check)
        yield
        passes: dict[str, list[list[float]]] = {"eager": [[e_time]]}
        errors: dict[str, list[float]] = {}
        rejected: dict[str, str] = {}
        live: dict[str, Callable] = {"eager": self.eager}
        for path in paths or candidates(self.device):
            if path == "eager":
                continue
            if path == "bf16-autocast" and rejected.get("bf16", "").startswith("slower"):
                rejected[path] = "not tried: bf16 arithmetic was measured too slow here (the bf16 path)"
                continue
            if path in ("bf16", "bf16-autocast") and self.device.type == "cpu":
                slowdown = bf16_slowdown(torch.get_num_threads())
                if slowdown > BF16_SLOWER:
                    rejected[path] = f"not tried: a bf16 matmul took {slowdown:.0f}x fp32's here"
                    continue
            if self._charged > budget:
                rejected[path] = "not measured: the choice's time budget was spent"
                continue
            try:
                fn = yield from self._built_aside(path, check)
                first = FIRST_RUN_SLACK * max(cold, check_real) + FIRST_RUN_SLACK_S
                limit = min(first, max(budget - self._charged, 0.0))
                if check[0].shape[0] > 1:  # one image first, a step of its own: a path pathologically slow here
                    # is cut on it (one layer of one image: 0.5 s for bf16 on an AVX2-only EPYC), not on the k images
                    # at once (2.3 s), which a request waiting on the compute thread would wait for
                    self._timed(path, fn, tuple(None if t is None else t[:1] for t in check), limit)
                    yield
                    limit = min(first, max(budget - self._charged, 0.0))
                _, _, out = self._timed(path, fn, check, limit)
                errors[path] = list(image_error(reference, out))
            except TooSlow:
                rejected[path] = f"slower than {FIRST_RUN_SLACK:g}x eager fp32 on its first run (cut short)"
                continue
            except Exception as e:  # a path this model or machine can't run is simply not a candidate
                rejected[path] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
                continue
            finally:
                yield
            if not within_bound(tuple(errors[path])):
                continue  # choose() says why
            t = None
            for attempt in range(2):  # a second try, so that one hiccup of a busy machine does not drop a fast
                # path; the first may take as long as a first run, for oneDNN compiles a path's kernels per
                # batch shape on first use, and the accuracy check ran at another batch
                limit = first if attempt == 0 else SLOWER * e_real + SLACK_S
                try:
                    _, t, _ = self._timed(path, fn, probe, limit)
                except TooSlow:
                    t = None
                finally:
                    yield
                if t is not None and t <= SLOWER * e_time + SLACK_S:
                    break
            if t is None:
                rejected[path] = f"slower than {SLOWER:g}x eager fp32 on its first timed runs (cut short)"
                continue
            if t > SLOWER * e_time + SLACK_S:
                rejected[path] = f"slower than {SLOWER:g}x eager fp32 on its first timed run " \
                                 f"({1000 * t:.3g} ms vs {1000 * e_time:.3g} ms)"
                continue
            passes[path] = [[t]]
            live[path] = fn
        # two passes of interleaved rounds; a path must beat eager in both (choose)
        for half in (0, 1):
            for _ in range(ROUNDS_PER_PASS):
                if len(live) == 1 or self._charged > budget:
                    break
                for path, fn in list(live.items()):
                    runs = passes[path]
                    while len(runs) <= half:
                        runs.append([])
                    limit = None if path == "eager" else FIRST_RUN_SLACK * e_real + SLACK_S
                    try:
                        _, t, _ = self._timed(path, fn, probe, limit)
                        runs[half].append(t)
                    except TooSlow:  # at least this slow: choose() compares each pass's fastest run
                        runs[half].append(limit)
                    finally:
                        yield
        n = len(passes["eager"])
        for path, runs in passes.items():
            runs[:] = [[1000 * t for t in one] for one in runs]
            if path != "eager" and (len(runs) != n or n < 2) and path not in rejected:
                rejected[path] = "not timed in both passes: the choice's time budget was spent"
        choice = choose(passes, errors, rejected)
        # weighed: every accurate path timed at batch 1, not only the winners, for the weighing compares one
        # image as each path serves it, and eager's own may have to be padded up to a checked shape (mnist-gan's
        # here); it leaves out a path clearly slower alone than eager serves one image (weigh never serves it)
        accurate = [p for p in choice.times_ms if p != "eager" and p in errors
                    and p not in choice.rejected and within_bound(tuple(errors[p]))]
        allowance = max(BUDGET * e_real, MIN_BUDGET_S)  # the weighing's own budget, as long as the choice's
        choice = yield from self._weigh_batches(choice, accurate, inputs, flops[0], self._charged + allowance)
        choice.threads = torch.get_num_threads()
        choice.cost_ms, choice.eager_ms = 1000 * self._spent, 1000 * e_real
        return choice

    def _built_aside(self, path: str, like: tuple) -> Generator[None, None, Callable]:
        """``runner(path)``, ready for inputs like ``like`` (ONNX Runtime: exported and its session made), built
        on a short-lived thread of its own while this measurement yields every 10 ms: a build can take seconds
        (exporting dcgan-faces to ONNX took 2.3 s here), and a request waiting on the compute thread must not
        wait for it. Its own time counts towards the budget; a build that fails raises here."""
        done: concurrent.futures.Future = concurrent.futures.Future()

        def build_it() -> None:
            t0 = time.perf_counter()
            try:
                fn = self.runner(path)
                if isinstance(fn, OnnxRuntime):
                    fn.session_for(like)
                done.set_result((fn, time.perf_counter() - t0))
            except BaseException as e:  # noqa: BLE001 - raised in the measurement
                done.set_exception(e)

        threading.Thread(target=build_it, name=f"forger-build-{path}", daemon=True).start()
        while True:
            try:
                fn, seconds = done.result(timeout=0.01)
                self._spent += seconds
                return fn
            except concurrent.futures.TimeoutError:
                yield

    def _weigh_batches(self, choice: Choice, contenders: Sequence[str], inputs: tuple, flops: int,
                       until: float) -> Generator[None, None, Choice]:
        """The batch-1 choice, weighed against ``MANY`` images: eager and each contender (``contenders``, the accurate
        paths timed at batch 1, less those clearly (1.5x) slower than eager serves one image) is computed in pieces
        of its own checked shapes (``_batch_sizes``), so a path that wins alone but whose rows match only in batches
        of 1-2 (dcgan-faces' fused path here, before ``runtime._linear``) can lose to one that batches, and a path no
        faster than eager alone can win where eager must pad a lone image (mnist-gan's MLP rows here agree only from
        batch 4 on).
        ``weigh`` keeps the smallest product of the time for one image as served (alone, or padded up to the smallest
        checked shape) and for ``MANY`` images, each relative to eager's, never serving one image slower than eager
        would. Eager is weighed first, then the others by their batch-1 time, until ``until`` (seconds of this
        measurement's own runs) is spent; where no batch shape can be checked (cifar10-gan), none is."""
        fn = self.runner(choice.path)
        choice.sizes = yield from self._batch_sizes(fn, inputs, flops)
        if not any(b * max(flops, 1) <= CHECK_GFLOP * 1e9 for b in BATCHES) or not set(contenders) - {"eager"}:
            return choice  # every path computes each image alone, or eager alone is left
        sizes = {choice.path: choice.sizes}
        lone = {choice.path: (yield from self._many(choice.path, fn, inputs, choice.sizes, 1))}
        many = {choice.path: (yield from self._many(choice.path, fn, inputs, choice.sizes))}
        others = sorted(set(contenders) - {choice.path}, key=lambda p: choice.times_ms.get(p, float("inf")))
        for path in ["eager"] + others if choice.path != "eager" else others:
            if self._charged > until:
                break
            if path != "eager" and choice.times_ms[path] > SLOWER * 1000 * lone["eager"]:
                continue  # clearly slower alone than eager serves one image: weigh would never serve it (a looser
                # test than weigh's, for these are single runs of under a millisecond for the MNIST models)
            other = self.runner(path)
            sizes[path] = yield from self._batch_sizes(other, inputs, flops)
            lone[path] = yield from self._many(path, other, inputs, sizes[path], 1)
            many[path] = yield from self._many(path, other, inputs, sizes[path])
        choice.many_ms = {p: 1000 * t for p, t in many.items()}
        best = weigh({p: 1000 * t for p, t in lone.items()}, choice.many_ms, choice.path)
        if best != choice.path:
            was = choice.path
            choice.path, choice.sizes = best, sizes[best]
            choice.why = f"{best}: {lone['eager'] / lone[best]:.2f}x eager fp32 for one image and " \
                         f"{many['eager'] / many[best]:.2f}x for {MANY} images ({was}: " \
                         f"{lone['eager'] / lone[was]:.2f}x for one, " \
                         f"{many['eager'] / many[was]:.2f}x for {MANY} in batches of " \
                         f"{'/'.join(map(str, sizes[was]))}), within mean {CHECK_MEAN} / max {CHECK_MAX} levels"
        return choice

    def _many(self, path: str, fn: Callable, inputs: tuple, sizes: list[int], n: int = MANY
              ) -> Generator[None, None, float]:
        """Seconds for ``n`` images computed in pieces of ``sizes``: each distinct piece timed (the faster of
        two runs) and counted as often as it occurs. With ``n=1``, what one image costs as served: alone, or
        padded up to the smallest checked shape (an MLP's eager rows here agree only from batch 4 on)."""
        total = 0.0
        for size in set(pieces(n, sizes)):
            probe = self._probe(size, inputs)
            runs = []  # two runs; up to five while they are short (under a millisecond, one run is mostly noise)
            while len(runs) < 2 or (len(runs) < 5 and sum(runs) < SHORT_RUNS_S):
                runs.append(self._timed(path, fn, probe)[1])
                yield
            total += min(runs) * pieces(n, sizes).count(size)
        return total

    def _batch_sizes(self, fn: Callable, inputs: tuple, flops: int) -> Generator[None, None, list[int]]:
        """The batch shapes whose rows ``fn`` computes bit for bit as the smallest of them, so a batch can be
        computed in pieces of these and an image never depends on ``n``: oneDNN and the BLAS choose kernels,
        blockings and thread splits by batch size (here an MLP's rows differ between batch 1, 2-3 and 4+), so
        this is checked, on distinct probe images at every position, never assumed.

        The smallest shape is 1, or, for models whose image is cheap (``PAD_GFLOP``), ``PAD_TO`` that a lone
        image is padded up to when that lets batches of at least 4x as many be computed at once. Checks run on
        at most ``CHECK_GFLOP`` of counted work a shape; [1] (every image alone) when nothing else holds."""
        per_image = max(flops, 1)
        checkable = [b for b in BATCHES if b * per_image <= CHECK_GFLOP * 1e9]
        if not checkable:
            return [1]
        most = max(checkable)
        probe = self._probe(most, inputs)

        def rows(start: int, stop: int) -> tuple:
            return tuple(None if t is None else t[start:stop] for t in probe)

        best = [1]
        for lone in [1] + [b for b in checkable if b == PAD_TO and b * per_image <= PAD_GFLOP * 1e9]:
            alone = []  # the probe images computed at the lone shape, in order
            for i in range(0, most, lone):
                alone.append(self._counted(fn, rows(i, i + lone)))
                yield
            alone = torch.cat(alone)
            if lone > 1:  # a padded image is the same bits as in a full batch of distinct ones
                last = rows(lone - 1, lone)
                padded = self._counted(fn, tuple(None if t is None else t.expand(lone, *t.shape[1:]) for t in last))
                yield
                if not torch.equal(padded[0], alone[lone - 1]):
                    continue
            sizes = [lone]
            for b in checkable:
                if b > lone:
                    same = torch.equal(self._counted(fn, rows(0, b)), alone[:b])
                    yield
                    if same:
                        sizes.append(b)
            if max(sizes) > max(best) and (lone == 1 or max(sizes) >= 4 * lone):
                best = sizes
            if lone == 1 and max(best) == most:
                break  # every shape agrees with the lone image: nothing to pad for
        return best

    def choice(self, inputs: tuple, wait: bool = True) -> Choice | None:
        """The path for inputs shaped like these: in memory, else from disk (checked), else measured.
        With ``wait=False`` an unknown choice is made in the background on the compute thread, and None
        is returned at once (the caller serves eager fp32 meanwhile)."""
        key = self._shape_key(inputs)
        found = self.choices.get(key)
        if found is not None or not wait:
            if found is None:
                self._choose_in_background(key, inputs)
            return found
        with self._lock:
            found = self.choices.get(key)
            if found is not None:
                return found
            found = self._from_disk(key, inputs)
            if found is None:
                found = self.measure(inputs)
                self._remember(key, found)
            self.choices[key] = found
            return found

    def _remember(self, key: tuple, choice: Choice) -> None:
        log.info("%s, input %s on %s: %s; batches computed in pieces of %s (chosen in %.0f ms, %.1fx eager's "
                 "forward pass)", self.name, "x".join(map(str, key)), self.device, choice.why,
                 "/".join(map(str, choice.sizes)), choice.cost_ms, choice.cost_ms / max(choice.eager_ms, 1e-9))
        _write_disk(self.disk_key(key), choice)

    def _choose_in_background(self, key: tuple, inputs: tuple) -> None:
        with self._lock:
            if key in self._pending or key in self.choices:
                return
            self._pending.add(key)
        like = tuple(None if t is None else t[:1].detach().clone() for t in inputs)
        _compute_thread().background(self._background_steps(key, like))

    def _background_steps(self, key: tuple, inputs: tuple) -> Iterator[None]:
        try:
            found = self._from_disk(key, inputs)
            yield
            if found is None:
                found = yield from self.measuring(inputs)
                self._remember(key, found)
            with self._lock:
                self.choices.setdefault(key, found)
        finally:
            with self._lock:
                self._pending.discard(key)

    def _from_disk(self, key: tuple, inputs: tuple) -> Choice | None:
        entry = _read_disk().get(self.disk_key(key))
        if not isinstance(entry, dict) or entry.get("path") not in PATHS:
            return None
        if "sizes" not in entry or "threads" not in entry:
            # written before batch shapes were checked (an older Forger): read back, every image of a batch
            # would be computed alone (64 images 0.13x as fast as eager for mnist-gan). Measured again.
            return None
        try:
            choice = Choice(**{k: v for k, v in entry.items() if k in Choice.__dataclass_fields__})
            if choice.path != "eager":  # the weights may have changed since: check the path once
                probe = self._probe(1, inputs)
                error = image_error(self._run(self.eager, probe), self._run(self.runner(choice.path), probe))
                if not within_bound(error):
                    return None
            if choice.sizes != [1]:  # the kernels may differ under other settings (ONEDNN_MAX_CPU_ISA): check
                with counted_flops(self.eager) as flops:
                    self._run(self.eager, self._probe(1, inputs))
                choice.sizes = drain(self._batch_sizes(self.runner(choice.path), inputs, flops[0]))
                choice.threads = torch.get_num_threads()
        except Exception:  # an unreadable entry or a path that no longer builds: measure again
            return None
        choice.source = "disk"
        return choice

    # -- serving
    def path_for(self, inputs: tuple, precision: str | None = None) -> str:
        """The path that serves ``inputs``: the asked one, else the chosen one; in a server, eager fp32
        until the choice is made (``choices_deferred``)."""
        asked = resolve_precision(precision)
        if asked != "auto":
            return asked
        choice = self.choice(inputs, wait=not choices_deferred())
        return "eager" if choice is None else choice.path

    def __call__(self, *inputs: Any, precision: str | None = None) -> torch.Tensor:
        """Run the model on ``inputs`` (CPU or device tensors, or None); images in [-1, 1], float32, on the
        CPU. The batch is computed in pieces of the checked shapes (``batch_sizes``), so an image never depends
        on the others in the batch or on ``n``."""
        inputs = tuple(t if t is None or (isinstance(t, torch.Tensor) and t.device == self.device)
                       else torch.as_tensor(t).to(self.device) for t in inputs)
        path = self.path_for(inputs, precision)
        fn = self.runner(path)
        n, out, start = inputs[0].shape[0], [], 0
        for size in pieces(n, self.batch_sizes(inputs, path)):
            part = tuple(None if t is None else t[start:start + size] for t in inputs)
            if part[0].shape[0] < size:  # the last image repeated: rows never depend on the others
                part = tuple(None if t is None else torch.cat([t, t[-1:].expand(size - t.shape[0], *t.shape[1:])])
                             for t in part)
            out.append(self._run(fn, part)[:n - start].cpu())
            start += size
        return torch.cat(out)

    def batch_sizes(self, inputs: tuple, path: str) -> list[int]:
        """The checked batch shapes of the chosen path (``Choice.sizes``); [1] for any other path, before the
        choice is made, or under another thread count than the check's."""
        choice = self.choices.get(self._shape_key(inputs))
        if choice is None or choice.path != path or choice.threads != torch.get_num_threads():
            return [1]
        return choice.sizes


# ---------------------------------------------------------------------------- the served models

MAX_SERVED = 16  # models kept loaded; the least recently used is dropped beyond this
_served: collections.OrderedDict[tuple[str, str | None], Served] = collections.OrderedDict()
_served_lock = threading.Lock()  # guards the dict only: never held while a model loads
_load_locks: dict[tuple[str, str | None], threading.Lock] = {}
# A model whose weights could not be found is not tried again for a while: 30 s, doubling to 15 min.
FAILURE_BACKOFF_S = (30.0, 900.0)
_failed: dict[tuple[str, str | None], tuple[float, int, str]] = {}  # key -> (retry after, failures, message)


def probe_for(spec: ModelSpec) -> Callable[[int, tuple], tuple]:
    """The deterministic input every serving path of ``spec`` is measured and checked on."""
    def probe(batch: int, like: tuple) -> tuple:
        if spec.task == "noise":
            z = latent.seeded_latents(0, batch, spec.latent_dim)
            labels = like[1] if len(like) > 1 else None
            if labels is None:
                return (z,) + ((None,) if len(like) > 1 else ())
            ids = torch.arange(batch) % len(spec.classes)
            return z, (nn.functional.one_hot(ids, len(spec.classes)).float() if labels.is_floating_point() else ids)
        shape = like[0].shape[1:]  # (C, H, W): smooth random images, like photos and drawings
        small = torch.rand(batch, shape[0], 8, 8, generator=torch.Generator().manual_seed(0))
        return (nn.functional.interpolate(small, size=tuple(shape[1:]), mode="bilinear") * 2 - 1,)
    return probe


def serving_generator(name: str, weights: str | Path | None) -> Served:
    """The served generator of (name, weights), loaded once and shared: loading one model never
    waits for another, and two users never race on one 'current model'."""
    key = (name, None if weights is None else str(weights))
    with _served_lock:
        if key in _served:
            _served.move_to_end(key)
            return _served[key]
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:
        with _served_lock:
            if key in _served:
                return _served[key]
            failed = _failed.get(key)
        if failed is not None and time.monotonic() < failed[0]:
            raise WeightsUnavailableError(failed[2])
        import gan  # the public loader, looked up at call time

        spec = get_spec(name)
        device = hardware.serving_device()
        started = time.perf_counter()
        try:
            model = gan.load_generator(name, weights=weights, device=device)
        except WeightsUnavailableError as e:
            count = 1 if failed is None else failed[1] + 1
            wait = min(FAILURE_BACKOFF_S[0] * 2 ** (count - 1), FAILURE_BACKOFF_S[1])
            with _served_lock:
                _failed[key] = (time.monotonic() + wait, count, str(e))
            raise
        with _served_lock:
            _failed.pop(key, None)
        label = name if weights is None else f"{name}@{Path(str(weights)).name}"
        log.info("%s loaded on %s in %.2f s", label, device, time.perf_counter() - started)
        served = Served(model, device, label, probe_for(spec), accuracy_batch=16 if spec.task == "noise" else 1)
        with _served_lock:
            _served[key] = served
            while len(_served) > MAX_SERVED:
                _served.popitem(last=False)
        return served


def raise_if_failing(name: str, weights: str | Path | None = None) -> None:
    """Raise at once the error of a model whose weights recently failed to load (its backoff has not
    ended), so a caller can refuse before any work (decoding an upload); otherwise do nothing."""
    with _served_lock:
        failed = _failed.get((name, None if weights is None else str(weights)))
    if failed is not None and time.monotonic() < failed[0]:
        raise WeightsUnavailableError(failed[2])


def is_served(name: str, weights: str | Path | None = None) -> bool:
    """Whether ``name`` (with these weights) is loaded and served in this process: nothing is probed."""
    return (name, None if weights is None else str(weights)) in _served


def clear_serving_cache() -> None:
    """Forget every loaded model, its in-memory path choices and remembered load failures (the disk cache stays)."""
    with _served_lock:
        _served.clear()
        _load_locks.clear()
        _failed.clear()
    directions.cache_clear()


def probe_like(spec: ModelSpec) -> tuple:
    """Inputs of batch 1 shaped like the ones ``spec``'s generator is served."""
    if spec.task == "noise":
        return torch.zeros(1, spec.latent_dim), (torch.zeros(1, dtype=torch.long) if spec.conditional else None)
    size = spec.preprocess.size
    return (torch.zeros(1, spec.preprocess.channels, size, size),)


def serving_choice(name: str, *, weights: str | Path | None = None) -> Choice:
    """Which path serves ``name`` on this machine (at model resolution), and why; measured now if not known.
    One choice serves every batch size, in pieces of the batch shapes checked to give each image's lone bits."""
    return serving_generator(name, weights).choice(probe_like(get_spec(name)))


def prepare(name: str, *, weights: str | Path | None = None) -> None:
    """Load ``name`` and start choosing its serving path in the background (on the compute thread, between
    requests): a server calls this at start for its default model, so no click waits on the measurement."""
    served = serving_generator(name, weights)
    served.choice(probe_like(get_spec(name)), wait=False)


def load_recording(name: str, weights: str | Path | None, errors: list[BaseException]) -> None:
    """``serving_generator(name, weights)`` as the target of a loading thread: its exception goes to
    ``errors``, for the thread that waits on the load to raise."""
    try:
        serving_generator(name, weights)
    except BaseException as e:  # noqa: BLE001 - raised again by whoever waits for the load
        errors.append(e)


def load_on_own_thread(name: str, weights: str | Path | None) -> None:
    """``serving_generator(name, weights)`` on a thread of its own, waiting for it: loading runs torch
    ops, and a thread that runs them keeps an OpenMP team for as long as it lives (see
    ``compute_thread``); this one ends with the load."""
    errors: list[BaseException] = []
    thread = threading.Thread(target=load_recording, args=(name, weights, errors), name=f"forger-load {name}",
                              daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def on_compute_thread(fn: Callable) -> Callable:
    """Run a noise->image call on the CPU's one compute thread (``compute_thread``: one
    OpenMP team in a server, not one per request thread). Its model is loaded first, outside that
    thread, so a download blocks only the request that needs it."""

    @functools.wraps(fn)
    def wrapper(name: str | ModelSpec, *args: Any, **kwargs: Any) -> Any:
        if not compute_thread_wanted():  # first: the cheapest test, and the main thread's answer
            return fn(name, *args, **kwargs)
        spec = as_spec(name)
        if spec.task != "noise" or hardware.serving_device().type != "cpu":
            return fn(name, *args, **kwargs)
        if not is_served(spec.name, kwargs.get("weights")):
            load_on_own_thread(spec.name, kwargs.get("weights"))
        return compute_thread(fn, name, *args, **kwargs)

    return wrapper


def run_generator(spec: ModelSpec, z: torch.Tensor, labels: torch.Tensor | None, weights: str | Path | None,
                  precision: str | None, finite: bool = False) -> torch.Tensor:
    """``gan.generate`` with the spec looked up, on the caller's thread; ``finite``: z is known finite (seeded latents), skip that check."""
    if spec.task != "noise":
        raise ValueError(f"{spec.name!r} is a translator; use gan.translate")
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.dim() != 2 or z.shape[1] != spec.latent_dim or not 1 <= z.shape[0] <= checks.MAX_IMAGES:
        raise ValueError(f"latents must be shaped (n, {spec.latent_dim}) with n from 1 to {checks.MAX_IMAGES}, "
                         f"got {tuple(z.shape)}")
    if not finite and not torch.isfinite(z).all():
        raise ValueError("latents must be finite numbers (no NaN or infinity)")
    return serving_generator(spec.name, weights)(z, labels, precision=precision)


@functools.lru_cache(maxsize=32)
def directions(name: str, weights: str | None, k: int) -> torch.Tensor:
    """``gan.slider_directions``, computed once per model (``clear_serving_cache`` forgets them)."""
    spec = get_spec(name)
    if spec.latent_dim <= 32:
        return torch.eye(spec.latent_dim)  # small latents: one slider per raw dimension
    return latent.pca_directions(serving_generator(name, weights).eager, k=k)
