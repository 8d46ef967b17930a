"""The fast serving path (gan.runtime) gives the images of plain fp32 PyTorch.

Correctness only, nothing here depends on timing (speed lives in benchmarks/). Tolerances are
the ones measured in benchmarks/RESULTS.md: the rewritten fp32 path differs from eager fp32 by
at most 1 level of 255 on a few pixels (rounding of folded BatchNorm and Winograd); bf16 autocast by a
few levels (max 6, mean 0.7 measured).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import gan
from gan import latent, runtime, weights
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


@pytest.fixture
def fast_fp32(monkeypatch):
    """The rewritten fp32 path, whatever this machine would choose."""
    monkeypatch.setenv("FORGER_PRECISION", "auto")
    monkeypatch.setattr(runtime, "bf16_is_fast", lambda device: False)
    if runtime.mode("cpu") != "fp32":
        pytest.skip("oneDNN (mkldnn) is not available in this torch build")


@pytest.mark.parametrize("name", SMALL)
def test_fast_fp32_path_gives_the_eager_images_within_one_level(fast_fp32, name):
    eager = _fresh(name)
    fast = runtime.prepare(copy.deepcopy(eager))
    assert any(type(m).__module__ == "gan.runtime" for m in fast.modules()), "nothing was rewritten"
    for n in (1, 5):
        x = _inputs(name, n)
        with torch.inference_mode():
            a, b = _pixels(eager(*x)), _pixels(fast(*x))
        diff = np.abs(a - b)
        assert diff.max() <= 1 and diff.mean() <= 0.01, (name, n, diff.max(), diff.mean())


def test_fast_path_keeps_features_and_attributes(fast_fp32):
    for name in ("dcgan-faces", "mnist-dcgan"):
        eager = _fresh(name)
        fast = runtime.prepare(copy.deepcopy(eager))
        assert fast.latent_dim == eager.latent_dim and len(fast.main) == len(eager.main)
        z, labels = _inputs(name, 3)
        with torch.inference_mode():
            torch.testing.assert_close(fast.features(z, labels), eager.features(z, labels), rtol=1e-4, atol=1e-5)


def test_same_seed_gives_the_same_image_on_the_fast_path(fast_fp32, monkeypatch, tmp_path):
    spec = get_spec("cifar10-gan")
    weights.save_pretrained(_fresh("cifar10-gan"), tmp_path / "cifar10-gan", name=spec.name, family=spec.family,
                            generator=spec.generator)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    gan._cached.cache_clear()
    try:
        first = gan.sample("cifar10-gan", seed=7, n=2, edits=[0.5, -1.0])
        again = gan.sample("cifar10-gan", seed=7, n=2, edits=[0.5, -1.0])
        assert [np.asarray(i).tolist() for i in first] == [np.asarray(i).tolist() for i in again]
        assert any(type(m).__name__ == "WinogradConv" for m in gan._serving_generator("cifar10-gan", None).modules())
    finally:
        gan._cached.cache_clear()


def test_forger_precision_fp32_gives_exactly_the_eager_fp32_result(monkeypatch, tmp_path):
    monkeypatch.setenv("FORGER_PRECISION", "fp32")
    assert runtime.mode("cpu") == "eager" and not runtime.use_bf16("cpu")
    spec = get_spec("mnist-dcgan")
    eager = _fresh("mnist-dcgan")
    weights.save_pretrained(eager, tmp_path / spec.name, name=spec.name, family=spec.family, generator=spec.generator)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    gan._cached.cache_clear()
    try:
        ours = gan.generate(spec.name, *_inputs(spec.name, 6))
        assert all(type(m).__module__ != "gan.runtime" for m in gan._serving_generator(spec.name, None).modules())
    finally:
        gan._cached.cache_clear()
    with torch.no_grad():
        reference = eager(*_inputs(spec.name, 6))
    assert torch.equal(ours, reference)


@pytest.mark.parametrize("name", ["dcgan-faces", "pix2pix-sketch2digit"])
def test_bf16_path_stays_visually_the_same(monkeypatch, name):
    monkeypatch.setenv("FORGER_PRECISION", "bf16")
    assert runtime.mode("cpu") == "bf16"
    eager = gan.load_generator(name) if name == "dcgan-faces" else _fresh(name)
    fast = runtime.prepare(copy.deepcopy(eager))
    x = _inputs(name, 8)
    with torch.inference_mode():
        a = _pixels(eager(*x))
        with runtime.autocast("cpu"):
            b = _pixels(fast(*x).float())
    diff = np.abs(a - b)
    assert diff.max() <= 16 and diff.mean() <= 1.5, (diff.max(), diff.mean())


def test_mode_is_bf16_only_where_bf16_is_fast(monkeypatch):
    monkeypatch.delenv("FORGER_PRECISION", raising=False)
    monkeypatch.setattr(runtime, "bf16_is_fast", lambda device: True)
    assert runtime.mode("cpu") == "bf16" and runtime.use_bf16("cpu")
    monkeypatch.setattr(runtime, "bf16_is_fast", lambda device: False)
    assert runtime.mode("cpu") in ("fp32", "eager") and not runtime.use_bf16("cpu")
    monkeypatch.setenv("FORGER_PRECISION", "bf16")
    assert runtime.mode("cpu") == "bf16"


def test_avx512_bf16_without_amx_is_not_fast(monkeypatch):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    runtime.cpu_has_amx.cache_clear()
    try:
        assert runtime.cpu_has_native_bf16() and not runtime.cpu_has_amx() and not runtime.bf16_is_fast("cpu")
    finally:
        runtime.cpu_has_amx.cache_clear()


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
