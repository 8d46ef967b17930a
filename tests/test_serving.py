"""Serving (gan.serving, gan.runtime): every path the runtime may pick gives eager fp32's images within
the bound, the choice is the measured fastest, bounded in cost, stable under timing noise, never made on a
server's click, and cached.

Numerics contract (docs/testing.md): tests that compare a served path with eager fp32 rely on "bounded"
(mean 0.5 / max 4 levels); tests of the same seed across n rely on "exact on one machine" (one path per model; a batch computed
only in shapes checked to give each image's lone bits).

Correctness only: nothing here depends on how fast this machine is (speed lives in benchmarks/). The
choice logic is tested with made-up timing tables, so the CUDA rules are checked on a CPU too. Every
path runs here whatever the CPU (bf16 runs everywhere, slowly without AMX), so the same code is tested on
every machine; a test that compares numbers pins the path it compares.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import gan
from gan import hardware, latent, runtime, serving, weights
from gan.registry import get_spec

SMALL = ["mnist-gan", "mnist-dcgan", "cifar10-gan", "dcgan-faces", "pix2pix-sketch2digit", "cyclegan-digits2mnist"]


def _fresh(name: str) -> nn.Module:
    """Seeded random weights, with BatchNorm statistics away from (0, 1) so that folding them is tested."""
    torch.manual_seed(0)
    g = gan.load_generator(name, pretrained=False)
    for m in g.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return g


def _inputs(name: str, n: int) -> tuple:
    spec = get_spec(name)
    if spec.task == "noise":
        return latent.seeded_latents(1, n, spec.latent_dim), (torch.arange(n) % 10 if spec.conditional else None)
    g = torch.Generator().manual_seed(1)
    small = torch.rand(n, spec.channels, 8, 8, generator=g)
    return (nn.functional.interpolate(small, size=spec.image_size, mode="bilinear") * 2 - 1,)


def _pixels(x: torch.Tensor) -> np.ndarray:
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().numpy()


needs_fused = pytest.mark.skipif(not runtime.fused_available(), reason="oneDNN is not in this torch build")


@pytest.fixture
def serving_cache(monkeypatch, tmp_path):
    """A fresh on-disk cache of serving choices, and no models loaded."""
    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FORGER_PRECISION", raising=False)
    gan.clear_serving_cache()
    yield tmp_path / "cache" / "serving.json"
    gan.clear_serving_cache()


def _served(name: str, model: nn.Module | None = None) -> serving.Served:
    spec = get_spec(name)
    return serving.Served(model if model is not None else _fresh(name), torch.device("cpu"), f"test-{name}",
                          serving.probe_for(spec), accuracy_batch=16 if spec.task == "noise" else 1)


# ---------------------------------------------------------------------------- the paths


@needs_fused
def test_a_fused_generator_never_runs_nor_hooks_the_placeholders_of_its_folded_layers(monkeypatch):
    """The rewrite leaves an Identity where each folded BatchNorm and activation was, so indices and slicing
    (``features``) still work; running the model, or a slice of it, never calls them, and the time limit hangs no
    hook on them. Each is a module call for nothing, and each hook's cost counted against the path in timings that
    eager made without hooks (mnist-gan's fused MLP holds 8, and its forward pass is a fraction of a millisecond)."""
    eager = _fresh("mnist-gan")
    fused = runtime.fuse(copy.deepcopy(eager))
    assert sum(type(m) is nn.Identity for m in fused.modules()) == 8
    z, _ = _inputs("mnist-gan", 2)
    with torch.no_grad():
        want, want_features = eager(z), eager.features(z)
        monkeypatch.setattr(nn.Identity, "forward", lambda self, x: pytest.fail("a placeholder ran"))
        assert (_pixels(fused(z)) - _pixels(want)).__abs__().max() <= 1
        assert torch.allclose(fused.features(z), want_features, atol=1e-4)
    assert serving._leaves(fused) and not any(type(m) is nn.Identity for m in serving._leaves(fused))


@needs_fused
@pytest.mark.parametrize("name", SMALL)
def test_fused_fp32_path_gives_the_eager_images_within_one_level(name):
    eager = _fresh(name)
    fast = runtime.fuse(copy.deepcopy(eager))
    assert any(type(m).__module__ == "gan.runtime" for m in fast.modules()), "nothing was rewritten"
    for n in (1, 5):
        x = _inputs(name, n)
        with torch.inference_mode():
            a, b = _pixels(eager(*x)), _pixels(fast(*x))
        diff = np.abs(a - b)
        assert diff.max() <= 1 and diff.mean() <= 0.01, (name, n, diff.max(), diff.mean())


@needs_fused
@pytest.mark.parametrize("name", ["mnist-gan", "mnist-dcgan", "dcgan-faces"])
def test_fused_linear_layers_run_on_onednn_not_the_blas_gemm_whose_rows_depend_on_the_batch(name, monkeypatch):
    """The BLAS GEMM behind ``F.linear`` picks its kernel by the number of rows, so a row's bits depended on
    how many images shared its batch; the fused path runs its linear layers (and DCGAN's 1x1 -> 4x4 layer)
    on oneDNN's matmul with prepacked weights instead. Relies on "bounded" only (the images, within one
    level); whether rows are bit-identical across batch sizes is the library's business, checked on each
    machine by the serving choice (``Choice.sizes``), never asserted here."""
    eager = _fresh(name)
    fast = runtime.fuse(copy.deepcopy(eager))

    def refused(*args, **kwargs):
        raise AssertionError("the fused path called the BLAS GEMM")

    for n in (1, 3, 64):
        x = _inputs(name, n)
        with torch.inference_mode():
            ref = eager(*x)
            with monkeypatch.context() as m:
                for owner, attr in ((torch.nn.functional, "linear"), (torch, "addmm"), (torch, "mm")):
                    m.setattr(owner, attr, refused)
                out = fast(*x)
        assert out.shape == ref.shape
        assert np.abs(_pixels(out) - _pixels(ref)).max() <= 1


needs_ort = pytest.mark.skipif(not serving.onnxruntime_available(), reason="onnxruntime is not installed")


@needs_ort
@pytest.mark.parametrize("name", SMALL)
def test_onnxruntime_path_gives_the_eager_images_within_the_bound_at_any_batch(name, serving_cache):
    """Contract: bounded. One export serves every batch size (the batch axis is dynamic), labels included."""
    eager = _fresh(name)
    ort = serving.build("onnxruntime", eager, torch.device("cpu"))
    for n in (1, 5):
        x = _inputs(name, n)
        with torch.inference_mode():
            a, b = _pixels(eager(*x)), _pixels(ort(*x))
        diff = np.abs(a - b)
        assert b.shape == a.shape and diff.max() <= serving.BOUND_MAX and diff.mean() <= serving.BOUND_MEAN, \
            (name, n, diff.max(), diff.mean())
    assert len(ort.sessions) == 1


@needs_ort
def test_onnxruntime_exports_once_per_weights_and_fits_the_servers_threads(serving_cache, monkeypatch):
    """The export is kept in FORGER_CACHE: a restart (a new runner) reads it back instead of exporting again;
    other weights get their own file. The session uses torch's thread count, one inter-op thread, no spinning."""
    eager = _fresh("mnist-dcgan")
    x = _inputs("mnist-dcgan", 2)
    first = serving.build("onnxruntime", eager, torch.device("cpu"))
    want = first(*x)
    files = sorted((serving_cache.parent / "onnx").glob("*.onnx"))
    assert len(files) == 1 and not list(files[0].parent.glob("*.part"))
    session = first.sessions[next(iter(first.sessions))][0]
    options = session.get_session_options()
    assert options.intra_op_num_threads == torch.get_num_threads() and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = serving.build("onnxruntime", eager, torch.device("cpu"))
    assert torch.equal(again(*x), want)
    other = copy.deepcopy(eager)
    with torch.no_grad():
        next(other.parameters()).mul_(2)
    with pytest.raises(AssertionError, match="exported again"):
        serving.build("onnxruntime", other, torch.device("cpu"))(*x)


def test_onnxruntime_is_a_candidate_only_where_it_is_installed(monkeypatch):
    monkeypatch.setattr(serving, "onnxruntime_available", lambda: False)
    assert "onnxruntime" not in serving.candidates(torch.device("cpu"))
    monkeypatch.setattr(serving, "onnxruntime_available", lambda: True)
    assert "onnxruntime" in serving.candidates(torch.device("cpu"))
    assert "onnxruntime" not in serving.candidates(torch.device("cuda"))


@needs_fused
def test_fused_path_keeps_features_and_attributes():
    for name in ("dcgan-faces", "mnist-dcgan"):
        eager = _fresh(name)
        fast = runtime.fuse(copy.deepcopy(eager))
        assert fast.latent_dim == eager.latent_dim and len(fast.main) == len(eager.main)
        z, labels = _inputs(name, 3)
        with torch.inference_mode():
            torch.testing.assert_close(fast.features(z, labels), eager.features(z, labels), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", SMALL)
def test_every_candidate_is_checked_and_only_accurate_paths_are_timed(name):
    """Each path this CPU can build (fp32 ones, and bf16 whatever the CPU) is tried, or said why not; the
    timed ones, the chosen one included, meet the bound on fresh inputs at several batch sizes.
    Contract: bounded."""
    served = _served(name)
    choice = served.measure(_inputs(name, 1))
    assert set(choice.errors) | set(choice.rejected) | {"eager"} == set(serving.candidates(torch.device("cpu")))
    for path in choice.times_ms:
        assert path == "eager" or serving.within_bound(tuple(choice.errors[path])), (path, choice.errors[path])
    assert choice.path in choice.times_ms
    for batch in (1, 5):
        inputs = _inputs(name, batch)
        with torch.inference_mode():  # each image alone, as served (a Pix2Pix normalises with its own statistics)
            reference = torch.cat([served.eager(*(None if t is None else t[i:i + 1] for t in inputs))
                                   for i in range(batch)])
        ours = served(*inputs, precision=choice.path)
        mean, worst = serving.image_error(reference, ours.float())
        assert mean <= serving.BOUND_MEAN and worst <= serving.BOUND_MAX, (choice.path, mean, worst)


def test_bf16_path_keeps_the_first_and_last_layers_in_fp32():
    eager = gan.load_generator("dcgan-faces")
    bf16 = serving.build_bf16(eager)
    layers = serving._compute_layers(bf16)
    assert layers[0].weight.dtype == torch.float32 and layers[-1].weight.dtype == torch.float32
    assert all(m.weight.dtype == torch.bfloat16 for m in layers[1:-1])
    assert eager.main[0].weight.dtype == torch.float32  # the served eager model is untouched
    z = latent.seeded_latents(5, 16, 100)
    with torch.inference_mode():
        out = bf16(z, None)
        mean, worst = serving.image_error(eager(z, None), out.float())
    assert out.dtype == torch.float32  # the last layer gives fp32 images
    assert 0 < mean <= serving.BOUND_MEAN, mean  # bf16 rounding shows, but only a little on average


# ---------------------------------------------------------------------------- the choice, from timing tables


def _two_passes(times: dict[str, float]) -> dict[str, list[list[float]]]:
    """A timing table as two passes that agree."""
    return {p: [[t, t], [t, t]] for p, t in times.items()}


def test_choose_takes_the_fastest_path_within_the_bound():
    times = _two_passes({"eager": 10.0, "fused": 4.0, "bf16": 2.0, "channels_last": 7.0})
    errors = {"fused": [0.01, 1], "bf16": [0.3, 9], "channels_last": [0.0, 0]}
    choice = serving.choose(times, errors)
    assert choice.path == "fused"  # bf16 is faster, but 9 levels off
    assert "bf16" in choice.rejected and "9 levels" in choice.rejected["bf16"]
    assert "2.50x" in choice.why
    assert serving.choose(times, {**errors, "bf16": [0.3, 3]}).path == "bf16"  # 3 levels on the probe is within
    assert serving.choose(times, {**errors, "bf16": [0.3, 4]}).path == "fused"  # 4 leaves no headroom
    assert serving.choose(times, {**errors, "bf16": [0.45, 2]}).path == "fused"  # nor a mean of 0.45


def test_weigh_keeps_the_batch_1_winner_unless_another_path_is_faster_over_both_sizes():
    """Each path's batch-1 time and its time for 64 images in pieces of its own checked shapes, relative to
    eager's: the smallest product wins, by MARGIN over the batch-1 winner."""
    alone = {"eager": 10.0, "fused": 4.0, "onnxruntime": 5.0}
    # fused's rows match only alone: 64 images in 64 pieces, slower than eager's one batch
    assert serving.weigh(alone, {"eager": 200.0, "fused": 300.0, "onnxruntime": 150.0}, "fused") == "onnxruntime"
    # close to each other (0.4 x 0.8 against 0.5 x 0.7): the batch-1 winner stays
    assert serving.weigh(alone, {"eager": 200.0, "fused": 160.0, "onnxruntime": 140.0}, "fused") == "fused"
    # eager not weighed (the budget ran out): nothing to compare with
    assert serving.weigh(alone, {"fused": 300.0, "onnxruntime": 150.0}, "fused") == "fused"
    # bf16 slower alone than eager, though far faster on 64 (the smaller product): a lone image would wait longer
    assert serving.weigh({**alone, "bf16": 12.0}, {"eager": 200.0, "fused": 190.0, "bf16": 50.0}, "fused") == "fused"
    # eager pads its lone image (20 ms as served): fused, no faster than eager alone, batches and is served
    assert serving.weigh({"eager": 20.0, "fused": 10.0}, {"eager": 200.0, "fused": 150.0}, "eager") == "fused"


@needs_fused
def test_a_path_that_wins_alone_but_cannot_batch_gives_way_to_one_that_can(monkeypatch):
    """Timings made up per path whatever the batch (fused 1 ms, eager 3 ms, any other 2 ms) and fused's rows
    made to match only alone: fused wins at batch 1, but 64 images in 64 pieces lose to a path that computes
    them in its own checked shapes. The path served then keeps its own shapes, and says why."""
    fake = {"fused": 1e-3, "eager": 3e-3}
    monkeypatch.setattr(serving, "timing_hook", lambda label, path, s: fake.get(path, 2e-3))
    real = serving.Served._batch_sizes

    def sizes(self, fn, inputs, flops):
        if fn is self._built.get("fused"):
            yield
            return [1]
        return (yield from real(self, fn, inputs, flops))

    monkeypatch.setattr(serving.Served, "_batch_sizes", sizes)
    served = _served("mnist-dcgan")
    choice = served.measure(_inputs("mnist-dcgan", 1))
    assert choice.path not in ("fused", "eager"), choice.why
    assert choice.many_ms["fused"] > choice.many_ms["eager"] > choice.many_ms[choice.path], choice.many_ms
    assert max(choice.sizes) > 1 and f"for {serving.MANY} images" in choice.why, choice


@needs_fused
@pytest.mark.parametrize("fused_alone", [0.95, 1.25])
def test_eager_padding_a_lone_image_counts_against_it_and_a_path_a_little_faster_alone_is_weighed(monkeypatch,
                                                                                                  fused_alone):
    """Made-up timings that grow with the batch (sqrt(batch) ms for eager, 0.95x or 1.25x that for fused, 5x for
    any other path), eager's rows made to agree only from batch 4 on (an MLP's, here) and fused's at every shape.
    Fused is 5% faster alone, or 25% slower, so not a batch-1 winner; but eager serves one image padded to 4,
    which costs it 2 ms, so fused is weighed and served. Before, eager was kept and a lone image cost twice
    eager's time; and then a path more than 10% slower than eager's unpadded image was not weighed (mnist-gan's
    fused path on one thread here: as fast as eager alone, its timed runs slowed by the time limit's hooks)."""
    cost = {"eager": 1e-3, "fused": fused_alone * 1e-3}
    real_timed, real_sizes = serving.Served._timed, serving.Served._batch_sizes

    def timed(self, path, fn, inputs, until=None):
        seconds, _, out = real_timed(self, path, fn, inputs, until)
        return seconds, cost.get(path, 5e-3) * inputs[0].shape[0] ** 0.5, out

    def sizes(self, fn, inputs, flops):
        if fn is self.eager:
            yield
            return [4, 8, 16, 64]
        return (yield from real_sizes(self, fn, inputs, flops))

    monkeypatch.setattr(serving.Served, "_timed", timed)
    monkeypatch.setattr(serving.Served, "_batch_sizes", sizes)
    served = _served("mnist-gan")
    # not ONNX Runtime: its first build in a process (the export and the import) takes most of the 1 s budget
    choice = served.measure(_inputs("mnist-gan", 1), paths=["eager", "fused", "bf16"])
    assert choice.path == "fused" and "for one image" in choice.why, (choice.why, choice.rejected.get("fused"))
    assert set(choice.many_ms) == {"eager", "fused"}, choice.many_ms


def test_choose_never_picks_a_path_measured_slower_than_eager_fp32():
    slower = _two_passes({"eager": 1.0, "fused": 1.5, "bf16": 3.0})
    assert serving.choose(slower, {"fused": [0, 1], "bf16": [0, 1]}).path == "eager"
    tie = serving.choose(_two_passes({"eager": 1.0, "fused": 0.95}), {"fused": [0, 0]})  # within the margin
    assert tie.path == "eager" and "no path" in tie.why
    with pytest.raises(ValueError):
        serving.choose(_two_passes({"fused": 1.0}), {"fused": [0, 0]})


def test_choose_keeps_eager_unless_a_path_wins_every_pass():
    """One lucky pass (the machine was quiet for it) does not make a path win: it must beat eager by the
    margin in both, or eager fp32 is kept. So a choice does not flip on timing noise."""
    errors = {"fused": [0.0, 0]}
    lucky = {"eager": [[10.0, 10.0], [10.0, 10.0]], "fused": [[3.0, 3.0], [9.5, 9.5]]}
    assert serving.choose(lucky, errors).path == "eager"
    steady = {"eager": [[10.0, 12.0], [10.0, 9.0]], "fused": [[7.0, 8.0], [7.5, 7.0]]}
    assert serving.choose(steady, errors).path == "fused"
    half_timed = {"eager": [[10.0], [10.0]], "fused": [[3.0]]}  # timed in the first pass only
    assert serving.choose(half_timed, errors).path == "eager"


def test_choose_on_a_gpu_timing_table_picks_the_captured_graph():
    """The batch-1 figures of the H200 issue: a captured bf16 graph beats eager by ~5x."""
    times = _two_passes({"eager": 0.45, "channels_last": 0.47, "bf16-autocast": 0.6, "cuda-graph": 0.12,
                         "cuda-graph-bf16": 0.095})
    errors = {"channels_last": [0, 0], "bf16-autocast": [0.1, 2], "cuda-graph": [0, 0], "cuda-graph-bf16": [0.2, 2]}
    assert serving.choose(times, errors).path == "cuda-graph-bf16"
    errors["cuda-graph-bf16"] = [0.2, 21]
    assert serving.choose(times, errors).path == "cuda-graph"


def test_candidates_per_device(monkeypatch):
    monkeypatch.delenv("FORGER_COMPILE", raising=False)
    cuda = serving.candidates(torch.device("cuda"))
    assert {"eager", "bf16", "cuda-graph", "cuda-graph-bf16"} <= set(cuda) and "fused" not in cuda
    cpu = serving.candidates(torch.device("cpu"))
    assert not {"cuda-graph", "cuda-graph-bf16", "compile"} & set(cpu)
    monkeypatch.setenv("FORGER_COMPILE", "1")
    assert "compile" in serving.candidates(torch.device("cpu"))


def test_cuda_graph_runner_captures_once_per_signature_and_keeps_a_bounded_number():
    """The CUDA graph logic on the CPU: the capture is replaced by running fn into static buffers."""
    captured = []

    def fake_capture(inputs):  # what a CUDA graph does: fixed input buffers, a fixed output buffer
        static = [None if t is None else t.clone() for t in inputs]
        out = torch.empty(0)

        def replay():
            out.resize_(0)
            out.set_(torch.tanh(static[0]) * 2)

        captured.append(tuple(static[0].shape))
        return static, out, replay

    graphs = serving.CudaGraphs(torch.tanh, max_graphs=2, capture=fake_capture)
    a, b = torch.randn(1, 4), torch.randn(1, 4)
    ya, yb = graphs(a), graphs(b)
    assert captured == [(1, 4)]  # one capture, two replays with the new input copied in
    torch.testing.assert_close(ya, torch.tanh(a) * 2)
    torch.testing.assert_close(yb, torch.tanh(b) * 2)
    assert ya.data_ptr() != yb.data_ptr()  # outputs are copies, not the static buffer
    graphs(torch.randn(3, 4)), graphs(torch.randn(5, 4)), graphs(torch.randn(1, 4))
    assert captured == [(1, 4), (3, 4), (5, 4), (1, 4)] and len(graphs.graphs) == 2  # LRU: (1, 4) was dropped


def test_forger_device(monkeypatch):
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    assert hardware.serving_device() == torch.device("cpu")
    monkeypatch.setenv("FORGER_DEVICE", "tpu")
    with pytest.raises(ValueError, match="FORGER_DEVICE"):
        hardware.serving_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("FORGER_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="not available"):
        hardware.serving_device()
    monkeypatch.setenv("FORGER_DEVICE", "auto")
    assert hardware.serving_device().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hardware.serving_device().type == "cuda"


# ---------------------------------------------------------------------------- serving, end to end


def test_the_choice_is_measured_once_saved_and_reused_after_a_restart(serving_cache, monkeypatch):
    first = _served("mnist-dcgan")
    z, labels = _inputs("mnist-dcgan", 1)
    choice = first.choice((z, labels))
    assert choice.source == "measured" and serving_cache.exists()
    saved = json.loads(serving_cache.read_text())
    key = first.disk_key((get_spec("mnist-dcgan").latent_dim,))
    assert saved[key]["path"] == choice.path and torch.__version__ in key and hardware.cpu_name() in key
    z8, labels8 = _inputs("mnist-dcgan", 8)
    assert first.choice((z8, labels8)) is choice  # one choice for every batch size: no second measurement

    def no_timing(*_):
        raise AssertionError("a cached choice was measured again")

    monkeypatch.setattr(serving.Served, "measuring", no_timing)
    again = _served("mnist-dcgan").choice((z, labels))  # "after a restart": a new Served, same machine
    assert again.source == "disk" and again.path == choice.path


def test_a_choice_saved_before_batch_shapes_were_checked_is_measured_again(serving_cache):
    """A serving cache written by an older Forger has no batch shapes: read back as it was, every image of a
    batch was computed alone (gan.sample of 64 mnist-gan digits ran 0.13x as fast as eager on a machine that
    had used the older version). Such an entry is measured again, and the new one has its shapes."""
    served = _served("mnist-dcgan")
    z, labels = _inputs("mnist-dcgan", 1)
    measured = served.choice((z, labels))
    key = served.disk_key((get_spec("mnist-dcgan").latent_dim,))
    saved = json.loads(serving_cache.read_text())
    assert {"sizes", "threads"} <= saved[key].keys()
    old = {k: v for k, v in saved[key].items() if k not in ("sizes", "threads")}  # the older format
    serving_cache.write_text(json.dumps({**saved, key: old}))
    again = _served("mnist-dcgan").choice((z, labels))
    assert again.source == "measured" and again.threads == torch.get_num_threads()
    assert again.sizes == measured.sizes or again.path != measured.path  # a path of its own, timed again
    assert "sizes" in json.loads(serving_cache.read_text())[key]


def test_remembered_batch_shapes_are_checked_again_and_unused_under_another_thread_count(serving_cache):
    """The batch shapes that give a lone image's bits depend on the kernels (ISA settings) and the thread split,
    so a remembered list is checked again after a restart, and a process that changes its thread count computes
    each image alone."""
    served = _served("mnist-dcgan")
    z, labels = _inputs("mnist-dcgan", 1)
    measured = served.choice((z, labels))
    key = served.disk_key((get_spec("mnist-dcgan").latent_dim,))
    saved = json.loads(serving_cache.read_text())
    saved[key]["sizes"] = [3, 5]  # shapes the check never keeps
    serving_cache.write_text(json.dumps(saved))
    again = _served("mnist-dcgan").choice((z, labels))
    assert again.source == "disk" and again.sizes == measured.sizes and again.threads == torch.get_num_threads()
    assert served.batch_sizes((z, labels), measured.path) == measured.sizes
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        assert served.batch_sizes((z, labels), measured.path) == [1]
    finally:
        torch.set_num_threads(threads)


def test_a_cached_path_that_no_longer_meets_the_bound_is_measured_again(serving_cache, monkeypatch):
    served = _served("mnist-dcgan")
    key = served.disk_key((get_spec("mnist-dcgan").latent_dim,))
    serving_cache.parent.mkdir(parents=True)
    serving_cache.write_text(json.dumps({key: {"path": "channels_last", "why": "old", "times_ms": {}}}))
    real_build = serving.build

    def broken(path, model, device):  # e.g. retrained weights: the cached path is now off
        fn = real_build(path, model, device)
        return (lambda *x: fn(*x) * 0.5) if path == "channels_last" else fn

    monkeypatch.setattr(serving, "build", broken)
    choice = served.choice(_inputs("mnist-dcgan", 1))
    assert choice.source == "measured" and choice.path != "channels_last"
    assert "channels_last" in choice.rejected


def test_forger_precision_and_the_api_override_the_measurement(serving_cache, monkeypatch, tmp_path):
    spec = get_spec("mnist-dcgan")
    eager = _fresh("mnist-dcgan")
    weights.save_pretrained(eager, tmp_path / spec.name, name=spec.name, family=spec.family, generator=spec.generator)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)

    def no_measuring(*_):
        raise AssertionError("a forced precision was measured")

    monkeypatch.setattr(serving.Served, "measuring", no_measuring)
    x = _inputs(spec.name, 6)
    with torch.no_grad():  # plain PyTorch, each image alone (as served: gan.serving)
        reference = torch.cat([eager(x[0][i:i + 1], x[1][i:i + 1]) for i in range(6)])
    monkeypatch.setenv("FORGER_PRECISION", "fp32")
    assert torch.equal(gan.generate(spec.name, *x), reference)  # exactly plain PyTorch
    bf16 = gan.generate(spec.name, *x, precision="bf16")  # the API's setting beats the environment
    assert not torch.equal(bf16, reference) and serving.image_error(reference, bf16)[0] < 1
    assert set(serving.serving_generator(spec.name, None)._built) == {"eager", "bf16"}
    with pytest.raises(ValueError, match="precision"):
        gan.generate(spec.name, *x, precision="fp8")


def test_auto_serving_stays_within_the_bound_of_eager_fp32(serving_cache):
    for name in ("dcgan-faces", "mnist-dcgan", "mnist-gan"):
        spec = get_spec(name)
        for n in (1, 9):
            z = latent.seeded_latents(11, n, spec.latent_dim)
            labels = torch.arange(n) % 10 if spec.conditional else None
            with torch.no_grad():
                reference = gan.load_generator(name)(z, labels)
            mean, worst = serving.image_error(reference, gan.generate(name, z, labels))
            assert mean <= serving.BOUND_MEAN and worst <= serving.BOUND_MAX, (name, n, mean, worst)


@pytest.mark.skipif(not os.environ.get("FORGER_TEST_FAVOUR"), reason="only in a steered run (docs/testing.md)")
def test_a_steered_run_serves_and_trains_on_the_favoured_path(monkeypatch):
    """FORGER_TEST_FAVOUR (tests/conftest.py) really steers the choice: else a steered run proves nothing.
    (The steering, not the budget, is under test: the budget is lifted, and ONNX Runtime, whose export on this
    test's fresh cache spent all of dcgan-faces' budget on a slow CPU, is left out unless it is the favoured one.)"""
    from gan.train import precision

    favour = os.environ["FORGER_TEST_FAVOUR"]
    if favour.startswith("random"):
        pytest.skip("random steering favours a different path per model")
    favoured = {"bf16", "bf16-autocast"} if favour == "bf16" else {favour}
    monkeypatch.setattr(serving, "MIN_BUDGET_S", 30.0)
    paths = [p for p in serving.candidates(torch.device("cpu")) if p != "onnxruntime" or p in favoured]
    choice = _served("dcgan-faces").measure(_inputs("dcgan-faces", 1), paths)
    usable = {p for p in favoured if p == "eager" or serving.within_bound(tuple(choice.errors.get(p, (9, 99))))}
    assert usable, (f"no favoured path meets the bound on dcgan-faces: {choice.errors}, {choice.rejected} (a path cut "
                    "for real on its first run is too slow on this CPU to be steered: .ci/run measures that first)")
    assert choice.path in usable, choice.why
    work = lambda: torch.ones(64).sum()  # noqa: E731
    seconds = precision.time_steps({"fp32": work, "bf16": work}, torch.device("cpu"), repeats=1)
    assert (seconds["bf16"] < seconds["fp32"]) == (favour == "bf16"), seconds


def test_one_model_is_measured_once_when_many_users_ask_at_once(serving_cache, monkeypatch):
    """Four request threads at once: each is answered (eager fp32 until the choice is made), and the
    model is measured once, in the background."""
    calls = []
    real = serving.Served.measuring

    def counted(self, inputs, paths=None):
        calls.append(self.name)
        return (yield from real(self, inputs, paths))

    monkeypatch.setattr(serving.Served, "measuring", counted)
    threads = [threading.Thread(target=gan.sample, args=("mnist-gan",), kwargs={"seed": i}) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert serving.wait_for_background(120)
    assert calls == ["mnist-gan"]
    assert serving.serving_generator("mnist-gan", None).choices  # made, and kept


def test_loading_one_model_never_waits_for_another(serving_cache, monkeypatch):
    """A model whose weights take long to arrive (a download) does not hold up another model."""
    release = threading.Event()
    real_load = gan.load_generator

    def load(name, **kwargs):
        if name == "mnist-dcgan":
            release.wait(30)
        return real_load(name, **kwargs)

    monkeypatch.setattr(gan, "load_generator", load)
    slow = threading.Thread(target=gan.sample, args=("mnist-dcgan",))
    slow.start()
    try:
        done = threading.Event()
        fast = threading.Thread(target=lambda: (gan.sample("mnist-gan"), done.set()))
        fast.start()
        assert done.wait(60), "mnist-gan waited for mnist-dcgan's load"
    finally:
        release.set()
        slow.join()


def test_same_seed_gives_the_same_image_on_the_served_path(serving_cache, monkeypatch, tmp_path):
    spec = get_spec("cifar10-gan")
    weights.save_pretrained(_fresh("cifar10-gan"), tmp_path / "cifar10-gan", name=spec.name, family=spec.family,
                            generator=spec.generator)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    first = gan.sample("cifar10-gan", seed=7, n=2, edits=[0.5, -1.0])
    again = gan.sample("cifar10-gan", seed=7, n=2, edits=[0.5, -1.0])
    assert [np.asarray(i).tolist() for i in first] == [np.asarray(i).tolist() for i in again]


def test_info_says_which_path_serves_and_why(serving_cache, capsys):
    from gan.__main__ import main

    assert main(["info", "mnist-gan"]) == 0
    out = capsys.readouterr().out
    choice = gan.serving_choice("mnist-gan")
    assert "serving" in out and choice.path in out and "eager fp32" in out


# ---------------------------------------------------------------------------- the fused kernels


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (6, 3), (4, 5)])
def test_winograd_matrices_compute_a_correlation(m, r):
    at, g, bt = runtime.winograd_matrices(m, r)
    rng = np.random.default_rng(0)
    d, w = torch.from_numpy(rng.standard_normal(m + r - 1)), torch.from_numpy(rng.standard_normal(r))
    expected = torch.stack([(w * d[i:i + r]).sum() for i in range(m)])
    torch.testing.assert_close(at @ ((g @ w) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,pad,reflect,m", [(3, 1, False, 6), (3, 1, True, 6), (5, 2, False, 4), (3, 0, False, 4)])
def test_winograd_conv_matches_conv2d(monkeypatch, k, pad, reflect, m):
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, k, padding=0 if reflect else pad)
    x = torch.randn(3, 64, 13, 11)  # sizes that are no multiple of the tile
    monkeypatch.setattr(runtime.WinogradConv, "CHUNK_BYTES", 1)  # one image per chunk: the chunk loop runs
    w = runtime.WinogradConv(conv, m=m, pad=pad if reflect else None, reflect=reflect,
                             act=("leaky_relu", [0.2]))
    with torch.inference_mode():
        expected = nn.functional.leaky_relu(conv(nn.functional.pad(x, (pad,) * 4, mode="reflect") if reflect
                                                 else x), 0.2)
        torch.testing.assert_close(w(x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layer", [nn.Conv2d(128, 3, 7, padding=3), nn.ConvTranspose2d(64, 1, 4, 2, 1),
                                   nn.ConvTranspose2d(32, 3, 3, 2, 1, output_padding=1)])
def test_fold_conv_matches_the_layer(layer):
    torch.manual_seed(0)
    x = torch.randn(2, layer.in_channels, 9, 7)
    with torch.inference_mode():
        torch.testing.assert_close(runtime.FoldConv(layer, ("tanh", []))(x), torch.tanh(layer(x)),
                                   rtol=1e-4, atol=1e-5)


def test_instance_norm_rewrite_handles_one_and_several_images():
    norm = nn.InstanceNorm2d(16)
    fast = runtime.InstanceStatsNorm(norm, per_image=True, act=("relu", []))
    for n in (1, 3):
        x = torch.randn(n, 16, 9, 9).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            torch.testing.assert_close(fast(x), torch.relu(norm(x)), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- one compute thread


def _in_thread(fn):
    """``fn()`` on a fresh thread (as a server's request thread); its result, or the exception it raised."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as e:  # noqa: BLE001 - handed back to the test
            out["error"] = e

    t = threading.Thread(target=run, name="request-thread")
    t.start()
    t.join(60)
    return out


def _forward_threads(name: str) -> list[str]:
    """Record the thread of every forward pass of ``name``'s eager fp32 model from now on."""
    seen: list[str] = []
    serving.serving_generator(name, None).eager.register_forward_hook(
        lambda *_: seen.append(threading.current_thread().name))
    return seen


def test_noise_calls_from_request_threads_run_on_the_one_compute_thread(serving_cache, monkeypatch):
    monkeypatch.delenv("FORGER_COMPUTE_THREAD", raising=False)
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    seen = _forward_threads("mnist-gan")
    direct = gan.sample("mnist-gan", seed=3, n=2, precision="fp32")  # the main thread: its own thread
    assert seen == ["MainThread"] * 2  # each image computed alone
    for call in (lambda: gan.sample("mnist-gan", seed=3, n=2, precision="fp32"),
                 lambda: gan.interpolate("mnist-gan", 1, 2, steps=3, precision="fp32"),
                 lambda: gan.generate("mnist-gan", torch.zeros(1, 100), precision="fp32")):
        out = _in_thread(call)
        assert "error" not in out, out.get("error")
    assert len(seen) == 2 + 2 + 3 + 1 and all(t.startswith(serving.COMPUTE_THREAD_NAME) for t in seen[2:]), seen
    # the same images, whichever thread made them
    again = _in_thread(lambda: gan.sample("mnist-gan", seed=3, n=2, precision="fp32"))["value"]
    assert [np.asarray(a).tolist() for a in again] == [np.asarray(a).tolist() for a in direct]


def test_errors_on_the_compute_thread_reach_the_caller_and_it_keeps_serving(serving_cache, monkeypatch):
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    out = _in_thread(lambda: gan.generate("mnist-gan", torch.full((1, 100), float("nan"))))
    assert isinstance(out.get("error"), ValueError) and "finite" in str(out["error"])
    out = _in_thread(lambda: gan.sample("no-such-model"))
    assert isinstance(out.get("error"), gan.UnknownModelError)
    assert len(_in_thread(lambda: gan.sample("mnist-gan", n=3))["value"]) == 3


def test_compute_thread_can_be_turned_off_and_never_waits_on_itself(monkeypatch):
    monkeypatch.setenv("FORGER_COMPUTE_THREAD", "0")
    assert _in_thread(lambda: serving.compute_thread(lambda: threading.current_thread().name))["value"] \
        == "request-thread"
    monkeypatch.setenv("FORGER_COMPUTE_THREAD", "1")
    nested = _in_thread(lambda: serving.compute_thread(
        lambda: serving.compute_thread(lambda: threading.current_thread().name)))  # would deadlock if it queued
    assert nested["value"].startswith(serving.COMPUTE_THREAD_NAME)


def test_a_request_thread_loads_its_model_on_a_thread_that_ends_with_the_load(serving_cache, monkeypatch):
    """A thread that runs torch ops keeps an OpenMP team while it lives: loading must not leave one on the
    request's (pooled, long-lived) thread, nor hold up the compute thread with a download."""
    monkeypatch.delenv("FORGER_COMPUTE_THREAD", raising=False)
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    loads: list[str] = []
    real = gan.load_generator

    def recording(*args, **kwargs):
        loads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(gan, "load_generator", recording)
    out = _in_thread(lambda: gan.sample("mnist-dcgan", seed=1, n=2, label=3))
    assert len(out["value"]) == 2
    assert loads == ["forger-load mnist-dcgan"]
    assert not any(t.name.startswith("forger-load") for t in threading.enumerate())


# ---------------------------------------------------------------------------- a bounded choice, off the click


class _SlowLayers(nn.Module):
    """The model with every layer made slow (``delay`` s each), counting the layers that ran: a path that is
    pathologically slow on this CPU, as bf16 convolutions are where oneDNN has no bf16 kernels."""

    def __init__(self, model: nn.Module, delay: float) -> None:
        super().__init__()
        self.model, self.ran = model, []
        for leaf in [m for m in model.modules() if next(m.children(), None) is None]:
            leaf.register_forward_pre_hook(lambda *_: (self.ran.append(1), time.sleep(delay)) and None)

    def forward(self, *inputs):
        return self.model(*inputs)


def test_a_pathologically_slow_path_is_cut_short_after_one_layer_and_bf16_autocast_is_not_tried(monkeypatch):
    """bf16 made 0.3 s a layer (eager takes well under a millisecond a layer): its first run is cut at the
    next layer boundary, so it costs one slow layer, not a whole forward pass; bf16-autocast, the same
    arithmetic, is then not tried at all."""
    real_build = serving.build
    slow: dict[str, _SlowLayers] = {}
    served = _served("mnist-gan")

    def build(path, model, device):
        # this model's paths only: a choice left running on the compute thread by an earlier test builds too
        if path in ("bf16", "bf16-autocast") and model is served.eager:
            slow[path] = _SlowLayers(copy.deepcopy(model), 0.3)
            return slow[path]
        return real_build(path, model, device)

    monkeypatch.setattr(serving, "build", build)
    monkeypatch.setattr(serving, "BF16_SLOWER", float("inf"))  # tried whatever this CPU's bf16 matmul costs
    # not ONNX Runtime: its export, cold on a fresh cache, can spend the whole budget of a light model
    choice = served.measure(_inputs("mnist-gan", 1), [p for p in serving.candidates(served.device) if p != "onnxruntime"])
    assert "cut short" in choice.rejected["bf16"] and len(slow["bf16"].ran) == 1, (choice.rejected, slow)
    assert "not tried" in choice.rejected["bf16-autocast"] and "bf16-autocast" not in slow
    assert choice.path != "bf16"


def test_a_path_slow_on_every_image_is_cut_on_its_first_image_alone_before_the_check_runs_all_16(monkeypatch):
    """A candidate's first run is one image alone, a step of its own, under the accuracy check's limit; then the
    check's 16 images: a path that takes 1 s an image (bf16 took 2.3 s for dcgan-faces' 16 images in one step
    here, which a request waited for; 1 s is over the limit on a busy machine too) is cut during that first
    image, and never runs 16 at once."""
    real_build = serving.build
    slow: dict[str, _SlowLayers] = {}
    runs: list[tuple[str, int]] = []
    served = _served("mnist-dcgan")

    def build(path, model, device):
        if path == "channels_last" and model is served.eager:
            slow[path] = _SlowLayers(copy.deepcopy(model), 0.0)
            slow[path].register_forward_pre_hook(lambda m, args: time.sleep(1.0 * args[0].shape[0]))
            return slow[path]
        return real_build(path, model, device)

    real_timed = serving.Served._timed

    def timed(self, path, fn, inputs, until=None):
        if self is served:  # not a choice an earlier test left running on the compute thread
            runs.append((path, inputs[0].shape[0]))
        return real_timed(self, path, fn, inputs, until)

    monkeypatch.setattr(serving, "build", build)
    monkeypatch.setattr(serving.Served, "_timed", timed)
    choice = served.measure(_inputs("mnist-dcgan", 1), ["eager", "fused", "channels_last"])  # (not ONNX Runtime: above)
    assert ("eager", 16) in runs  # the reference: eager on the check's 16 images
    assert [n for p, n in runs if p == "channels_last"] == [1], runs  # one image, then cut
    assert "first run (cut short)" in choice.rejected["channels_last"]
    assert len(slow["channels_last"].ran) == 1  # cut at its first layer: the 1 s came before it
    assert choice.errors and "channels_last" not in choice.errors
    for path in choice.errors:  # the others: one image alone, then the 16 checked against eager's
        ran = [n for p, n in runs if p == path]
        assert ran[:2] == [1, 16], (path, runs)


def _three_steps_queued() -> tuple[serving._ComputeThread, list[float], float]:
    """A fresh compute thread with background work of three steps queued: (thread, the times the steps ran,
    when it was queued)."""
    thread = serving._ComputeThread()
    stepped: list[float] = []

    def steps():
        for _ in range(3):
            stepped.append(time.monotonic())
            yield

    queued = time.monotonic()
    thread.background(steps())
    return thread, stepped, queued


def test_background_work_waits_for_a_quiet_second_after_the_last_request(monkeypatch):
    """A user's clicks come in bursts (a slider dragged, a page's first image then a tab's): the compute thread
    runs a path choice's steps only once ``QUIET_S`` has passed since the last request ended, or since the work
    was queued, so no click of a burst waits on a step; and it does run them then."""
    monkeypatch.setattr(serving, "QUIET_S", 0.4)
    thread, stepped, queued = _three_steps_queued()
    ends = []
    for _ in range(5):  # a burst: a request every 0.1 s for 0.5 s, each a short job
        thread.submit(time.sleep, 0.01).result()
        ends.append(time.monotonic())
        time.sleep(0.1)
    assert thread.wait_idle(30)
    assert len(stepped) == 3, stepped
    assert stepped[0] >= max(ends[-1], queued) + serving.QUIET_S - 0.01, (stepped[0] - ends[-1])


def test_background_work_that_never_gets_a_quiet_second_runs_between_requests_once_starved(monkeypatch):
    """A server whose requests never leave a quiet second still gets its path chosen: once the work has waited
    ``STARVED_S``, its steps run between requests (each request still goes first)."""
    monkeypatch.setattr(serving, "QUIET_S", 60.0)
    monkeypatch.setattr(serving, "STARVED_S", 0.5)
    thread, stepped, queued = _three_steps_queued()
    while len(stepped) < 3 and time.monotonic() < queued + 30:  # a request every 0.05 s, never a quiet second
        thread.submit(time.sleep, 0.01).result()
        time.sleep(0.05)
    assert len(stepped) == 3 and stepped[0] >= queued + serving.STARVED_S - 0.01, (stepped, queued)


def test_bf16_is_not_tried_where_a_bf16_matmul_is_far_slower_than_fp32_and_a_cut_layer_spends_no_budget(
        monkeypatch):
    """Where bf16 arithmetic is slow (a bf16 matmul 40x fp32's on an AVX2-only EPYC, one bf16 layer of cifar10-gan
    over a second), the bf16 paths are not tried at all; and where one is tried and cut, the layer it ran past its
    limit is not charged to the budget (docs/testing.md counts it outside), so the paths after it are still timed."""
    served = _served("mnist-dcgan")
    monkeypatch.setattr(serving, "bf16_slowdown", lambda threads: 40.0)
    choice = served.measure(_inputs("mnist-dcgan", 1), ["eager", "fused", "bf16", "bf16-autocast"])
    assert all(choice.rejected[p].startswith("not tried: a bf16 matmul took 40x") for p in ("bf16", "bf16-autocast"))
    monkeypatch.setattr(serving, "bf16_slowdown", lambda threads: 1.0)
    monkeypatch.setattr(serving, "MIN_BUDGET_S", 0.5)
    monkeypatch.setattr(serving, "BUDGET", 1)
    real_build = serving.build
    monkeypatch.setattr(serving, "build", lambda path, model, device: _SlowLayers(copy.deepcopy(model), 2.0)
                        if path == "bf16" and model is served.eager else real_build(path, model, device))
    choice = served.measure(_inputs("mnist-dcgan", 1), ["eager", "bf16", "fused"])  # 2 s of bf16 layer: over budget
    assert "cut short" in choice.rejected["bf16"] and choice.cost_ms > 2000, choice
    assert "fused" in choice.times_ms and "budget" not in choice.rejected.get("fused", ""), choice.rejected


def test_the_choice_stops_at_its_budget_and_keeps_the_best_measured_or_eager(monkeypatch):
    """With a budget of 2 eager forward passes, the first candidate's checks spend it: the others are not
    measured, and no path wins without two timed passes, so eager fp32 serves. The cost is reported in
    units of eager's own forward pass."""
    monkeypatch.setattr(serving, "BUDGET", 2)
    monkeypatch.setattr(serving, "MIN_BUDGET_S", 0.0)
    choice = _served("dcgan-faces").measure(_inputs("dcgan-faces", 1))
    skipped = [p for p, why in choice.rejected.items() if "budget" in why]
    assert skipped and choice.path == "eager", choice
    assert choice.eager_ms > 0 and choice.cost_ms > 0


NOISE = ["mnist-gan", "mnist-dcgan", "dcgan-faces", "cifar10-gan"]


@pytest.fixture
def cifar_weights(monkeypatch, tmp_path):
    """cifar10-gan ships no weights (no CIFAR-10 here): seeded random ones, as a user gets after training."""
    real = weights.WEIGHTS_DIR
    spec = get_spec("cifar10-gan")
    weights.save_pretrained(_fresh("cifar10-gan"), tmp_path / "cifar10-gan", name=spec.name, family=spec.family,
                            generator=spec.generator)
    for name in NOISE[:3]:  # the bundled ones, as they are
        (tmp_path / name).symlink_to(real / name)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)


def test_same_seed_same_pixels_whatever_n_on_a_cold_cache_with_the_timings_made_to_flip(serving_cache, cifar_weights,
                                                                                        monkeypatch):
    """The issue's check: on a cold cache, ``gan.sample(m, seed, n=1)[0]`` equals ``gan.sample(m, seed, n=4)[0]``
    bit for bit for every noise model, with each path's timings scaled by a factor drawn per run (so the
    choice flips from run to run). Contract: exact on one machine (one path per model, each image alone)."""
    chosen: dict[str, set[str]] = {name: set() for name in NOISE}
    for draw in range(3):
        rng = np.random.default_rng(draw)
        factors: dict[tuple[str, str], float] = {}
        monkeypatch.setattr(serving, "timing_hook", lambda label, path, s: s * factors.setdefault(
            (label, path), float(rng.choice([0.1, 1.0, 10.0]))))
        gan.clear_serving_cache()
        serving_cache.unlink(missing_ok=True)
        for name in NOISE:
            one = gan.sample(name, seed=5, n=1)[0]
            four = gan.sample(name, seed=5, n=4)
            assert np.array_equal(np.asarray(one), np.asarray(four[0])), (name, draw)
            assert not np.array_equal(np.asarray(four[0]), np.asarray(four[1]))
            chosen[name].add(gan.serving_choice(name).path)
    assert any(len(paths) > 1 for paths in chosen.values()), chosen  # the perturbation really flipped choices


class _BatchDependent(nn.Module):
    """Rows that change with the batch size the way kernels' roundings do: by ``offset(batch)``."""

    def __init__(self, offset) -> None:
        super().__init__()
        self.offset, self.lin = offset, nn.Linear(4, 4)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return z[:, :4] * 0.5 + self.offset(z.shape[0])


@pytest.mark.parametrize("offset,sizes", [
    (lambda b: 0.0, [1, 2, 4, 8, 16, 64]),  # exact arithmetic: every shape gives the lone image's bits
    (lambda b: 1e-6 * b, [1]),  # every shape its own rounding: each image alone
    (lambda b: 0.0 if b >= 4 else 1e-6 * b, [4, 8, 16, 64]),  # like an MLP here: a lone image padded to 4
    (lambda b: 0.0 if b in (1, 2, 16) else 1e-6, [4, 8, 64]),  # padding to 4 lets 64 images go at once
    (lambda b: 0.0 if b in (1, 2, 16) else 1e-6 * b, [1, 2, 16]),
])
def test_a_batch_is_computed_only_in_shapes_checked_to_give_the_lone_images_bits(offset, sizes):
    """``Served._batch_sizes`` compares, bit for bit, every probe image computed in each batch shape with the same
    image computed at the lone shape, and keeps only the shapes that agree."""
    served = serving.Served(_BatchDependent(offset), torch.device("cpu"), "test-batches",
                            serving.probe_for(get_spec("mnist-gan")))
    found = serving.drain(served._batch_sizes(served.eager, _inputs("mnist-gan", 1), flops=1000))
    assert found == sizes


@pytest.mark.parametrize("n,sizes,expected", [(1, [1], [1]), (5, [1], [1] * 5), (70, [1, 2, 64], [64, 2, 2, 2]),
                                              (1, [4, 8, 16, 64], [4]), (70, [4, 8, 16, 64], [64, 4, 4]),
                                              (21, [1, 2, 4, 8, 16], [16, 4, 1])])
def test_pieces_take_the_largest_checked_shapes_and_pad_only_to_the_smallest(n, sizes, expected):
    assert serving.pieces(n, sizes) == expected


def test_every_image_of_a_batch_is_the_lone_images_bits_on_the_chosen_path(serving_cache, cifar_weights):
    """Whatever shapes this machine's kernels allow (``Choice.sizes``), a batch of 70 (a 64-batch, a rest, a padded
    tail) gives each image exactly as computed alone. Contract: exact on one machine."""
    for name in NOISE:
        z, labels = _inputs(name, 70)
        served = serving.serving_generator(name, None)
        served.choice((z[:1], None if labels is None else labels[:1]))
        batch = served(z, labels)
        for i in (0, 3, 4, 5, 63, 64, 68, 69):
            alone = served(z[i:i + 1], None if labels is None else labels[i:i + 1])
            assert torch.equal(alone[0], batch[i]), (name, i, gan.serving_choice(name).sizes)


def test_a_server_thread_is_served_at_once_and_the_choice_is_made_between_requests(serving_cache, monkeypatch):
    """Off the click: a request thread never waits for the measurement. Until the choice is made the model is
    served by eager fp32 (the same pixels as precision='fp32'); the measurement runs on the compute thread a
    forward pass at a time, and a request that comes meanwhile goes first. Then the chosen path serves."""
    monkeypatch.delenv("FORGER_COMPUTE_THREAD", raising=False)
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    steps = []
    real = serving.Served.measuring

    def long(self, inputs, paths=None):  # 100 steps of 30 ms before the real measurement: a long choice
        for _ in range(100):
            steps.append(1)
            time.sleep(0.03)
            yield
        return (yield from real(self, inputs, paths))

    monkeypatch.setattr(serving.Served, "measuring", long)
    first = _in_thread(lambda: gan.sample("mnist-dcgan", seed=2, n=2))
    served = serving.serving_generator("mnist-dcgan", None)
    assert "value" in first and not served.choices and served._pending  # answered; the choice is still to come
    second = _in_thread(lambda: gan.sample("mnist-dcgan", seed=3, n=1))  # goes before the measurement's steps
    assert "value" in second and len(steps) < 100, len(steps)
    fp32 = gan.sample("mnist-dcgan", seed=2, n=2, precision="fp32")  # until then: eager fp32's pixels
    assert [np.asarray(a).tolist() for a in first["value"]] == [np.asarray(a).tolist() for a in fp32]
    assert serving.wait_for_background(120)
    assert served.choices and not served._pending and len(steps) == 100


def test_a_request_never_waits_for_a_path_being_built(serving_cache, monkeypatch):
    """Building a path can take seconds (the ONNX export of dcgan-faces took 2.3 s, and a request that came
    meanwhile waited for all of it): paths are built on a thread of their own while the measurement yields, so
    a request that comes during a 3 s build is answered before the build ends."""
    monkeypatch.delenv("FORGER_COMPUTE_THREAD", raising=False)
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    real_build, building, built = serving.build, threading.Event(), threading.Event()

    def slow_build(path, model, device):
        if path != "eager" and not building.is_set():  # the first candidate: 3 s
            building.set()
            time.sleep(3.0)
            built.set()
        return real_build(path, model, device)

    monkeypatch.setattr(serving, "build", slow_build)
    assert "value" in _in_thread(lambda: gan.sample("mnist-dcgan", seed=2, n=1))  # starts the choice
    assert building.wait(30)
    start = time.perf_counter()
    during = _in_thread(lambda: gan.sample("mnist-dcgan", seed=3, n=1))
    assert "value" in during and not built.is_set(), time.perf_counter() - start
    assert serving.wait_for_background(120) and serving.serving_generator("mnist-dcgan", None).choices


def test_prepare_makes_the_choice_in_the_background(serving_cache):
    """What the app calls at start for its default model: load now, choose on the compute thread."""
    gan.prepare("mnist-gan")
    assert serving.wait_for_background(120)
    served = serving.serving_generator("mnist-gan", None)
    assert served.choices and gan.serving_choice("mnist-gan").source == "measured"
    assert json.loads(serving_cache.read_text())  # and remembered on disk
