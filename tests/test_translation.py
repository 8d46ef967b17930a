"""Translation at full resolution, the Pix2Pix modes of the official code, folders and videos from the CLI,
and export to ONNX / TorchScript checked in onnxruntime.

The official 256x256 CycleGAN and Pix2Pix weights cannot be downloaded here, so these tests build the
official architectures (or narrower ones of the same layout) with random weights: enough for sizes,
equalities, memory and seams. The bundled digit translators carry real trained weights.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

import gan
from gan import translation
from gan.images import prepare_input
from gan.models import pix2pix

ROOT = Path(__file__).resolve().parent.parent
CYCLE, UNET = "cyclegan-horse2zebra", "pix2pix-facades_label2photo"  # official layouts (random weights here)


def _smooth_photo(width: int, height: int, seed: int = 1, noise: float = 0.03) -> Image.Image:
    """A smooth, photo-like RGB image (bicubic-upsampled random colours, plus fine noise)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 6, 9, generator=g)
    x = F.interpolate(small, size=(height, width), mode="bicubic", align_corners=False)
    x = x + noise * torch.randn(x.shape, generator=g)
    return gan.to_images(x.clamp(0, 1) * 2 - 1)[0]


def _narrow(name: str, tmp: Path, **generator) -> Path:
    """A weights folder for ``name`` with a narrower generator of the same layout, randomly initialised."""
    spec = gan.registry.get_spec(name)
    kwargs = {**spec.generator, **generator}
    torch.manual_seed(0)
    model = gan.models.family_module(spec.family).Generator(**kwargs)
    return gan.weights.save_pretrained(model, tmp / name, name=name, family=spec.family, generator=kwargs)


@pytest.fixture(scope="module")
def narrow_cyclegan(tmp_path_factory) -> Path:
    return _narrow(CYCLE, tmp_path_factory.mktemp("cyclegan"), ngf=8, n_blocks=2)


@pytest.fixture(scope="module")
def narrow_unet(tmp_path_factory) -> Path:
    return _narrow(UNET, tmp_path_factory.mktemp("unet"), ngf=8)


# ---------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("size", [(300, 200), (1600, 1200), (2048, 1536)])
def test_preprocess_equals_the_official_get_transform_at_every_size(size):
    transforms = pytest.importorskip("torchvision.transforms")
    photo = _smooth_photo(*size)
    official = transforms.Compose([transforms.Resize([256, 256], transforms.InterpolationMode.BICUBIC),
                                   transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    ours = gan.preprocess(CYCLE, photo)
    assert torch.equal(ours, official(photo))
    if size[1] >= 1536:  # the old resize (reducing_gap=3.0) differed here; this test would have caught it
        old = np.asarray(photo.resize((256, 256), Image.Resampling.BICUBIC, reducing_gap=3.0), np.float32)
        assert np.abs(old / 127.5 - 1 - ours.permute(1, 2, 0).numpy()).max() > 0.01


# ---------------------------------------------------------------------------- CycleGAN at full resolution


def test_resnet_low_memory_forward_equals_the_plain_forward():
    torch.manual_seed(0)
    g = gan.load_generator(CYCLE, pretrained=False)
    x = torch.rand(1, 3, 68, 92) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(translation.resnet_forward_lowmem(g, x), g(x), atol=1e-5)


def test_cyclegan_full_resolution_is_the_network_on_the_whole_image(narrow_cyclegan):
    photo = _smooth_photo(132, 100)  # 132x100: both multiples of 4, so no padding
    out = gan.translate(CYCLE, photo, weights=narrow_cyclegan, resolution="full")
    model = gan.load_generator(CYCLE, weights=narrow_cyclegan)
    with torch.inference_mode():
        want = gan.to_images(model(prepare_input(gan.registry.get_spec(CYCLE), photo, photo.size)[None]))[0]
    assert out.size == (132, 100)
    assert np.abs(np.asarray(out, np.int16) - np.asarray(want, np.int16)).max() <= 1
    odd = gan.translate(CYCLE, _smooth_photo(131, 97), weights=narrow_cyclegan, resolution="full")
    assert odd.size == (131, 97)  # padded to a multiple of 4, cropped back
    assert gan.translate(CYCLE, photo, weights=narrow_cyclegan, resolution=64).size == (64, 48)


def test_a_3000x2000_photo_comes_out_at_3000x2000_within_3_gb(narrow_cyclegan, narrow_unet, tmp_path):
    """In a fresh process, so that the peak RSS is this translation's (narrow nets of the official layouts:
    the official widths are measured in benchmarks/translate.py)."""
    photo = tmp_path / "photo.png"
    _smooth_photo(3000, 2000).save(photo)
    script = textwrap.dedent(f"""
        import json, sys
        import torch
        import gan
        torch.set_num_threads(1)  # the shared CI machine: one thread measures the same memory, and runs steadier
        # VmHWM is this process's own peak RSS; ru_maxrss would keep the pytest parent's (several GB) across exec
        peak_gb = lambda: int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 2**20
        sizes = [gan.translate({CYCLE!r}, {str(photo)!r}, weights={str(narrow_cyclegan)!r}, resolution="full").size,
                 gan.translate({UNET!r}, {str(photo)!r}, weights={str(narrow_unet)!r}, resolution="full").size]
        print(json.dumps({{"sizes": sizes, "rss_gb": peak_gb()}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sizes"] == [[3000, 2000], [3000, 2000]]
    assert result["rss_gb"] <= 3.0


# ---------------------------------------------------------------------------- Pix2Pix in tiles


def _seam_ratio(y: torch.Tensor, tile: int, overlap: int) -> float:
    """Mean |gradient| across the lines where tiles end, over the mean |gradient| everywhere else."""
    h, w = y.shape[-2:]
    ends = lambda n: sorted({e for s in translation.tile_starts(n, tile, overlap) for e in (s, s + tile) if 0 < e < n})  # noqa: E731
    gx = (y[..., :, 1:] - y[..., :, :-1]).abs().mean(dim=(0, 1, 2))  # gx[c - 1]: between columns c - 1 and c
    gy = (y[..., 1:, :] - y[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    at_x, at_y = torch.zeros_like(gx, dtype=torch.bool), torch.zeros_like(gy, dtype=torch.bool)
    at_x[[c - 1 for c in ends(w)]] = True
    at_y[[r - 1 for r in ends(h)]] = True
    return (torch.cat([gx[at_x], gy[at_y]]).mean() / torch.cat([gx[~at_x], gy[~at_y]]).mean()).item()


def test_unet_tiles_blend_without_seams():
    """A random U-Net's transposed convolutions paint a checkerboard that hides any seam, so its
    upsampling kernels are set bilinear (random channel mixing): a smooth output, where a seam shows.
    Tiles laid edge to edge then give a gradient across their borders many times the rest; feathered
    tiles stay within 10%. (With fine noise in the input the ratio is about 1.2, but the network run on
    the whole image shows 1.14 on the same lines: its own stride grid, not a seam; see the README.)"""
    torch.manual_seed(0)
    unet = pix2pix.Generator(ngf=16)
    k = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        for m in unet.modules():
            if isinstance(m, nn.ConvTranspose2d):
                m.weight.copy_(torch.randn(m.in_channels, m.out_channels, 1, 1) / m.in_channels ** 0.5
                               * (k[:, None] * k[None, :]))
    x = prepare_input(gan.registry.get_spec(UNET), _smooth_photo(768, 512, noise=0.0), (768, 512))[None]
    with torch.inference_mode():
        unet.eval()
        edge_to_edge = _seam_ratio(translation.run_tiled(unet, x, 256, overlap=0, margin=0), 256, 0)
        feathered = _seam_ratio(translation.run_tiled(unet, x, 256), 256, 128)
    assert edge_to_edge > 3.0
    assert feathered <= 1.10


def test_pix2pix_full_resolution_reports_progress_and_keeps_the_size(narrow_unet):
    seen = []
    out = gan.translate(UNET, _smooth_photo(600, 300), weights=narrow_unet, resolution="full",
                        progress=lambda done, total: seen.append((done, total)))
    assert out.size == (600, 300)
    assert seen[-1][0] == seen[-1][1] == len(seen) == 4 * 2  # tiles of 256, half-overlapping: at x 0, 128, 256, 344


def _sketch(width: int, height: int) -> Image.Image:
    """A drawing as the sketchpad gives one: a dark outline of a 0 on white paper."""
    img = Image.new("L", (width, height), 255)
    ImageDraw.Draw(img).ellipse((width * 0.3, height * 0.15, width * 0.7, height * 0.85), outline=0,
                                width=max(2, width // 40))
    return img


def test_a_small_pix2pix_at_full_resolution_is_scaled_down_first_to_at_most_max_tiles():
    """pix2pix-sketch2digit is a 32-pixel model: a 2000x1500 image at full resolution made 11,532 tiles of it
    (154 s in the app, one progress update each). It runs at the largest size of the image's aspect ratio that
    takes at most MAX_TILES tiles, and ``plan`` says so before the work."""
    name, side = "pix2pix-sketch2digit", gan.registry.get_spec("pix2pix-sketch2digit").preprocess.size
    assert translation.tile_count(2000, 1500, side) == 11_532  # the work it made
    how = translation.plan(name, 2000, 1500, "full")
    w, h = how.size
    assert how.passes == translation.tile_count(w, h, side) <= translation.MAX_TILES
    assert w < 2000 and abs(w / h - 2000 / 1500) < 0.02  # scaled down, the aspect ratio kept
    assert translation.tile_count(w + 1, round(1500 * (w + 1) / 2000), side) > translation.MAX_TILES  # the largest
    assert "11532 tiles" in how.note and f"translated at {w}x{h}" in how.note
    seen = []
    out = gan.translate(name, _sketch(2000, 1500), resolution="full",
                        progress=lambda done, total: seen.append((done, total)))
    assert out.size == (w, h) and seen[-1] == (how.passes, how.passes) == (len(seen), len(seen))
    # a number (the long side) is bounded the same way; a size that fits is kept as asked, with no note
    assert translation.plan(name, 2000, 1500, 1024).passes <= translation.MAX_TILES
    assert translation.plan(name, 120, 90, "full") == translation.Plan((120, 90), translation.tile_count(120, 90, side))
    # the official 256-pixel models, too: a 4000x3000 photo would be 713 tiles (a 3000x2000 one, 345, runs as asked:
    # test_a_3000x2000_photo_comes_out_at_3000x2000_within_3_gb)
    big = translation.plan(UNET, 4000, 3000, "full")
    assert big.passes <= translation.MAX_TILES < translation.tile_count(4000, 3000, 256) and "713 tiles" in big.note


def test_a_model_that_frames_each_digit_falls_back_to_its_own_size_and_says_so():
    """The digit CycleGANs frame each digit as MNIST does (28x28): they cannot tile, and asked for more they
    translate at their own size, the largest they can do (they refused before). Exact promise: the same path,
    fp32, in this process."""
    name = "cyclegan-digits2mnist"
    sketch = _sketch(300, 200)
    own = gan.translate(name, sketch, precision="fp32")
    for resolution in ("full", 1024):
        how = translation.plan(name, *sketch.size, resolution)
        assert how.size is None and how.passes == 1 and "the largest it can do" in how.note
        out = gan.translate(name, sketch, resolution=resolution, precision="fp32")
        assert np.array_equal(np.asarray(out), np.asarray(own))


# ---------------------------------------------------------------------------- Pix2Pix modes


class _OfficialUnetBlock(nn.Module):
    """The official UnetSkipConnectionBlock with norm_layer=nn.BatchNorm2d (so use_bias=False) and plain
    nn.Dropout, written from junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 use_dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner_nc)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            model += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class _OfficialUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, use_dropout):
        super().__init__()
        block = _OfficialUnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = _OfficialUnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
        block = _OfficialUnetBlock(ngf * 4, ngf * 8, submodule=block)
        block = _OfficialUnetBlock(ngf * 2, ngf * 4, submodule=block)
        block = _OfficialUnetBlock(ngf, ngf * 2, submodule=block)
        self.model = _OfficialUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x):
        return self.model(x)


@pytest.fixture(scope="module")
def trained_like_unet(tmp_path_factory) -> tuple[Path, nn.Module]:
    """A narrow official-layout U-Net with random weights and random running statistics (as a trained
    one has), saved as a weights folder, and the official network holding the same weights."""
    spec = gan.registry.get_spec(UNET)
    kwargs = {**spec.generator, "ngf": 8}
    torch.manual_seed(0)
    ours = pix2pix.Generator(**kwargs)
    with torch.no_grad():
        for m in ours.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    official = _OfficialUnetGenerator(**kwargs)
    official.load_state_dict(ours.state_dict())  # same keys: the official checkpoints load unchanged
    folder = gan.weights.save_pretrained(ours, tmp_path_factory.mktemp("modes") / UNET, name=UNET,
                                         family="pix2pix", generator=kwargs)
    return folder, official


def _official_out(official: nn.Module, photo: Image.Image) -> np.ndarray:
    x = gan.preprocess(UNET, photo)[None]
    with torch.no_grad():
        return np.asarray(gan.to_images(official(x))[0], np.int16)


def test_eval_mode_equals_the_official_unet_in_eval_mode(trained_like_unet):
    folder, official = trained_like_unet
    photo = _smooth_photo(256, 256)
    # fp32: the modes are compared with the official network, not with the paths the runtime may pick
    ours = np.asarray(gan.translate(UNET, photo, weights=folder, mode="eval", precision="fp32"), np.int16)
    assert np.abs(ours - _official_out(official.eval(), photo)).max() <= 1
    deterministic = np.asarray(gan.translate(UNET, photo, weights=folder, precision="fp32"), np.int16)
    assert np.abs(ours - deterministic).mean() > 5  # running statistics are not the image's: the modes differ


def test_paper_mode_is_reproducible_and_without_dropout_equals_the_deterministic_output(trained_like_unet):
    folder, official = trained_like_unet
    photo = _smooth_photo(256, 256)
    a, b, c = (np.asarray(gan.translate(UNET, photo, weights=folder, mode="paper", seed=s), np.int16) for s in (5, 5, 6))
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 1  # another seed, other dropout masks
    deterministic = np.asarray(gan.translate(UNET, photo, weights=folder, precision="fp32"), np.int16)
    # the official network in train mode (test.py without --eval) with its dropout switched off
    official = copy.deepcopy(official).train()
    for m in official.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    assert np.abs(deterministic - _official_out(official, photo)).max() <= 1
    # and ours in mode 'paper' with dropout off is the deterministic output
    model = gan.load_generator(UNET, weights=folder)
    paper = pix2pix.with_mode(model, "paper", seed=5)
    for m in paper.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    x = gan.preprocess(UNET, photo)[None]
    with torch.inference_mode():
        assert torch.equal(paper(x), model(x))


def test_modes_and_resolutions_are_checked():
    with pytest.raises(ValueError, match="mode must be one of"):
        gan.translate(UNET, _smooth_photo(64, 64), mode="train")
    with pytest.raises(ValueError, match="resolution must be"):
        gan.translate(UNET, _smooth_photo(64, 64), resolution="huge")
    with pytest.raises(ValueError, match="resolution must be"):
        gan.translate(UNET, _smooth_photo(64, 64), resolution=10**6)


# ---------------------------------------------------------------------------- export


def _one_per_family() -> list[str]:
    """The smallest registered generator of each family."""
    best: dict[str, gan.registry.ModelSpec] = {}
    for spec in gan.registry.list_specs():
        if spec.family not in best or spec.image_size < best[spec.family].image_size:
            best[spec.family] = spec
    return [s.name for s in best.values()]


@pytest.mark.parametrize("name", _one_per_family())
def test_onnx_export_of_every_family_equals_pytorch_in_onnxruntime(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from gan import export

    spec = gan.registry.get_spec(name)
    path, diff = gan.export_model(name, tmp_path / "g.onnx", pretrained=gan.model_info(name)["offline"])
    assert diff is not None and diff <= 1e-4
    check = export.signature(spec).check
    if spec.task == "translate":
        assert check[0].shape[2] != check[0].shape[3]  # checked at a non-square size, with another batch
    assert check[0].shape[0] != export.signature(spec).example[0].shape[0]


def test_torchscript_export_and_pix2pix_eval_export_equal_pytorch(trained_like_unet, tmp_path):
    pytest.importorskip("onnxruntime")
    from gan import export

    spec = gan.registry.get_spec(UNET)
    model = gan.load_generator(UNET, weights=trained_like_unet[0])
    for fmt, mode in (("onnx", "eval"), ("torchscript", "deterministic")):
        _, diff = export.export(model, spec, tmp_path / f"g.{fmt}", fmt, mode=mode)
        assert diff <= 1e-4
    x = export.signature(spec).check[0]
    with torch.no_grad():
        want = trained_like_unet[1].eval()(x).numpy()  # the official network in eval mode
    assert np.abs(export.run_exported(tmp_path / "g.onnx", x) - want).max() <= 1e-4


# ---------------------------------------------------------------------------- folders and videos


def _frames(n: int) -> list[Image.Image]:
    frames = []
    for i in range(n):
        a = np.full((64, 96, 3), 255, np.uint8)
        a[20:44, 10 + 6 * i: 18 + 6 * i] = 0
        frames.append(Image.fromarray(a))
    return frames


def test_cli_translates_a_10_frame_video_and_a_20_image_folder(tmp_path, capsys):
    import imageio.v3 as iio  # requirements.txt brings imageio and imageio-ffmpeg: no skip when missing

    from gan.__main__ import main

    frames = _frames(10)
    iio.imwrite(tmp_path / "clip.mp4", np.stack([np.asarray(f) for f in frames]), plugin="FFMPEG", fps=10,
                macro_block_size=1)
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (tmp_path / "in").mkdir()
    for i in range(20):
        frames[i % 10].save(tmp_path / "in" / f"{i:02d}.png")
    name = "pix2pix-sketch2digit"
    assert main(["translate", name, str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out.mp4")]) == 0
    assert main(["translate", name, str(tmp_path / "clip.gif"), "-o", str(tmp_path / "out.gif"),
                 "--resolution", "full", "--mode", "paper", "--seed", "1"]) == 0
    assert main(["translate", name, str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    assert iio.imread(tmp_path / "out.mp4", plugin="FFMPEG").shape == (10, 64, 96, 3)
    with Image.open(tmp_path / "out.gif") as gif:
        assert (gif.n_frames, gif.size) == (10, (96, 64))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i:02d}.png" for i in range(20)]
    assert "wrote 20 images" in capsys.readouterr().out


def test_video_limits_are_checked_from_the_header(tmp_path, monkeypatch):
    frames = _frames(5)
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    monkeypatch.setattr(gan.checks, "MAX_VIDEO_FRAMES", 4)
    with pytest.raises(ValueError, match="the limit is 4"):
        gan.translate_video("pix2pix-sketch2digit", tmp_path / "clip.gif", tmp_path / "out.gif")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="not a readable video"):
        gan.translate_video("pix2pix-sketch2digit", tmp_path / "broken.mp4", tmp_path / "out.mp4")


def test_app_translates_an_uploaded_video_and_reads_nothing_but_uploads(tmp_path, monkeypatch):
    import shutil
    import uuid

    import app
    from forger_app import uploads

    monkeypatch.setenv("FORGER_APP_RUNS", str(tmp_path / "runs"))
    frames = _frames(6)
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    upload = uploads.upload_root() / "forger-tests" / uuid.uuid4().hex
    upload.mkdir(parents=True)
    shutil.copy(tmp_path / "clip.gif", upload / "clip.gif")
    name = "pix2pix-sketch2digit"
    out, status = app.translate_video_tab(name, {"video": {"path": str(upload / "clip.gif")}, "subtitles": None})
    assert out is not None and "6 frames translated" in status
    import imageio.v3 as iio

    assert iio.imread(out, plugin="FFMPEG").shape == (6, 64, 96, 3)
    out, status = app.translate_video_tab(name, {"video": {"path": str(tmp_path / "clip.gif")}})
    assert out is None and "not uploaded" in status and str(tmp_path) not in status
    import forger_app.handlers

    monkeypatch.setattr(forger_app.handlers, "APP_VIDEO_FRAMES", 4)  # the app's own, lower limit on frames
    out, status = app.translate_video_tab(name, {"video": {"path": str(upload / "clip.gif")}})
    assert out is None and "the limit is 4" in status
