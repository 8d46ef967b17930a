"""The public API: sample, interpolate, translate, sliders, and the CLI, on real weights and fresh models."""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from gan import weights
from gan.registry import REGISTRY, Source, get_spec
from conftest import ROOT


def test_same_seed_gives_the_same_face_and_row_i_does_not_depend_on_n():
    a = gan.sample("dcgan-faces", seed=3, n=4)
    b = gan.sample("dcgan-faces", seed=3, n=1)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))


@pytest.mark.parametrize("n", [1, 3, 64])
def test_generate_returns_an_ordinary_tensor_that_a_caller_may_change_or_differentiate(n):
    """Served paths run under inference mode; what ``gan.generate`` returns is not an inference tensor (which
    refuses in-place changes and autograd outside that mode), whether the batch was one piece or several."""
    x = gan.generate("mnist-gan", gan.latent.seeded_latents(0, n, 100))
    assert x.shape == (n, 1, 28, 28) and not x.is_inference()
    x.mul_(0.5)
    assert (x.requires_grad_() * 2).sum().backward() is None and x.grad is not None


def test_truncation_zero_collapses_to_the_mean_face():
    a, b = gan.sample("dcgan-faces", seed=1, n=2, truncation=0.0)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_slider_edits_move_along_gan_space_directions():
    dirs = gan.slider_directions("dcgan-faces")
    assert dirs.shape == (10, 100)
    torch.testing.assert_close(dirs.norm(dim=1), torch.ones(10))
    base = np.asarray(gan.sample("dcgan-faces", seed=5)[0], dtype=float)
    moved = np.asarray(gan.sample("dcgan-faces", seed=5, edits=[3.0])[0], dtype=float)
    assert np.abs(base - moved).mean() > 5  # each slider visibly changes something
    same = np.asarray(gan.sample("dcgan-faces", seed=5, edits=[0.0] * 10)[0], dtype=float)
    assert np.array_equal(base, same)


def test_slider_i_moves_the_latent_along_direction_i_only_and_by_its_value(monkeypatch):
    """Watch the latent the generator is given: slider i adds t along direction i (sign included), nothing
    else; and an edit gives the image of the moved latent itself."""
    dirs = gan.slider_directions("dcgan-faces")
    z = gan.latent.seeded_latents(5, 1, 100)
    given, generate = [], gan.serving.run_generator

    def watching(spec, z, *args, **kwargs):  # what sample hands the served generator
        given.append(z.clone())
        return generate(spec, z, *args, **kwargs)

    monkeypatch.setattr(gan.serving, "run_generator", watching)
    gan.sample("dcgan-faces", z=z, precision="fp32")
    assert torch.equal(given[0], z)
    for i in (0, 3):
        along = []
        for t in (-2.0, 1.0, 3.0):
            edits = [0.0] * 10
            edits[i] = t
            gan.sample("dcgan-faces", z=z, edits=edits, precision="fp32")
            moved = given[-1][0] - z[0]
            along.append(float(moved @ dirs[i]))
            assert (moved - along[-1] * dirs[i]).abs().max() < 1e-5  # nothing across direction i
        assert along == pytest.approx([-2.0, 1.0, 3.0], abs=1e-5)  # grows with the slider, sign and all
    edited = gan.sample("dcgan-faces", z=z, edits=[2.0], precision="fp32")[0]
    by_hand = gan.sample("dcgan-faces", z=z + 2.0 * dirs[0], precision="fp32")[0]
    assert np.array_equal(np.asarray(edited), np.asarray(by_hand))


def test_slider_directions_are_the_principal_components_of_the_generators_features():
    """An independent PCA (numpy SVD of the features of other latents) against the directions: moving z along
    direction i moves the features along principal axis i, which random directions do not."""
    dirs = gan.slider_directions("dcgan-faces")
    g = gan.load_generator("dcgan-faces")
    z = gan.latent.seeded_latents(1, 300, 100)  # not the latents the directions were computed from
    with torch.no_grad():
        feats = g.features(z).double().numpy()  # (300, 8192)
    axes = np.linalg.svd(feats - feats.mean(0), full_matrices=False)[2]  # rows: principal axes, largest first

    def alignment(d: torch.Tensor, axis: np.ndarray) -> float:
        with torch.no_grad():  # how the features move, on average, when every z moves along d
            move = (g.features(z + d) - g.features(z - d)).double().mean(0).numpy()
        return abs(move @ axis) / np.linalg.norm(move)

    assert alignment(dirs[0], axes[0]) > 0.85 and alignment(dirs[1], axes[1]) > 0.85  # here: 0.97, 0.94
    random = torch.nn.functional.normalize(torch.randn(20, 100, generator=torch.Generator().manual_seed(0)), dim=1)
    assert np.mean([alignment(d, axes[0]) for d in random]) < 0.5  # here: 0.33


def test_slider_directions_are_the_same_in_every_process_whatever_the_global_rng():
    """GANSpace's PCA drew its random matrix from the global RNG, so each process had directions of its own: a
    share link's slider values, or a saved latent's edits, meant another image after a restart. The directions
    now depend on the generator alone: the same under any global seed, and in a fresh process pinned to this
    one's thread count (1, or 3 in CI's matrix: the exact promise of docs/testing.md holds at one thread count)."""
    g = gan.load_generator("mnist-dcgan")
    torch.manual_seed(1)
    first = gan.latent.pca_directions(g, k=10)
    torch.manual_seed(2)
    torch.randn(7)
    assert torch.equal(first, gan.latent.pca_directions(g, k=10))
    code = (f"import torch; torch.set_num_threads({torch.get_num_threads()}); torch.manual_seed(123); import gan; "
            "print(gan.slider_directions('mnist-dcgan').tolist())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    other = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1]))  # a list of lists of floats, as printed
    assert torch.equal(other, gan.slider_directions("mnist-dcgan"))


def test_small_latents_get_one_slider_per_raw_dimension():
    assert torch.equal(gan.slider_directions("cifar10-gan"), torch.eye(32))


def test_interpolation_starts_and_ends_at_the_two_seeds():
    frames = gan.interpolate("dcgan-faces", 1, 2, steps=5, mode="lerp")
    assert len(frames) == 5
    ends = gan.sample("dcgan-faces", seed=1)[0], gan.sample("dcgan-faces", seed=2)[0]
    assert np.abs(np.asarray(frames[0], float) - np.asarray(ends[0], float)).max() <= 1
    assert np.abs(np.asarray(frames[-1], float) - np.asarray(ends[1], float)).max() <= 1
    with pytest.raises(ValueError, match="slerp"):
        gan.interpolate("dcgan-faces", 1, 2, mode="cubic")
    with pytest.raises(ValueError, match="not conditional"):
        gan.interpolate("dcgan-faces", 1, 2, label_a=3)


def test_slerp_keeps_latent_norms_typical():
    a, b = gan.latent.seeded_latents(1, 2, 100)
    path = gan.latent.interpolation_path(a, b, 9, "slerp")
    assert (path.norm(dim=1) > 0.9 * min(a.norm(), b.norm())).all()
    lerp_mid = gan.latent.interpolation_path(a, b, 9, "lerp")[4]
    assert lerp_mid.norm() < path[4].norm()


def _translator_with_fresh_weights(monkeypatch, tmp_path, name: str) -> None:
    """Point `name` at freshly initialised weights saved in our format (no pretrained weights needed)."""
    spec = get_spec(name)
    torch.manual_seed(0)
    g = gan.load_generator(name, pretrained=False)
    weights.save_pretrained(g, tmp_path / name, name=name, family=spec.family, generator=spec.generator)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    gan.clear_serving_cache()
    # served from a cache of this test's own: the model of these weights must not serve a later test (in
    # another order, under pytest-xdist, test_mcp's reference translation came from it)
    monkeypatch.setattr(gan.serving, "_served", collections.OrderedDict())


@pytest.mark.parametrize("mode,size", [("RGBA", (40, 30)), ("L", (17, 64)), ("CMYK", (50, 50)), ("I;16", (32, 32)),
                                       ("P", (8, 8)), ("1", (1, 1)), ("F", (20, 20)), ("LA", (30, 30))])
def test_translate_accepts_any_mode_and_size_and_keeps_the_aspect_ratio(monkeypatch, tmp_path, mode, size):
    _translator_with_fresh_weights(monkeypatch, tmp_path, "cyclegan-digits2mnist")
    out = gan.translate("cyclegan-digits2mnist", Image.new(mode, size))
    w, h = size
    assert out.mode == "L"
    assert max(out.size) >= 28 and abs(out.size[0] / out.size[1] - w / h) < 0.1


RGB256 = "cyclegan-horse2zebra"  # RGB, 256 x 256, no crop: a 256 x 256 upload reaches the model unresampled


def _levels(name: str, image) -> torch.Tensor:
    """The model input of ``image`` as 0..255 levels, (C, S, S)."""
    pre = get_spec(name).preprocess
    return ((gan.preprocess(name, image) * pre.std + pre.mean) * 255).round()


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_uploads_are_composited_on_white_paper(mode):
    colour = (200, 40, 0) if mode == "RGBA" else (90,)
    pixels = np.zeros((256, 256, len(colour) + 1), np.uint8)
    pixels[..., :-1] = colour
    pixels[:, 128:192, -1] = 255  # opaque
    pixels[:, 192:, -1] = 128  # half transparent; the left half stays fully transparent
    x = _levels(RGB256, Image.fromarray(pixels, mode))
    rgb = torch.tensor([float(c) for c in colour * (3 // len(colour))])
    assert (x[:, :, :128] == 255).all()  # transparent: white, whatever colour hides behind
    assert torch.equal(x[:, 0, 128], rgb)  # opaque: the colour itself
    assert (x[:, 0, 200] - (255 + (rgb - 255) * 128 / 255)).abs().max() <= 1  # half: halfway to white


def test_16_bit_uploads_are_scaled_to_the_full_range(tmp_path):
    ramp = np.repeat((np.arange(256, dtype=np.uint16) * 257)[None], 256, 0)  # 0 .. 65535 from left to right
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")  # a 16-bit greyscale PNG
    assert Image.open(tmp_path / "ramp16.png").mode in ("I;16", "I")
    x = _levels(RGB256, tmp_path / "ramp16.png")
    for channel in x:
        assert torch.equal(channel[0], torch.arange(256.0))  # 65535 -> 255, 257 k -> k: linear, nothing clipped


def test_exif_rotated_upload_equals_the_hand_rotated_image(tmp_path):
    pixels = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 256, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to display", as a phone held upright writes it
    pixels.save(tmp_path / "phone.png", exif=exif)
    upright = pixels.transpose(Image.Transpose.ROTATE_270)  # 90 degrees clockwise, by hand
    assert torch.equal(gan.preprocess(RGB256, tmp_path / "phone.png"), gan.preprocess(RGB256, upright))
    assert not torch.equal(gan.preprocess(RGB256, upright), gan.preprocess(RGB256, upright.rotate(180)))


def test_translate_applies_exif_rotation_and_first_frame_of_animations(monkeypatch, tmp_path):
    _translator_with_fresh_weights(monkeypatch, tmp_path, "cyclegan-digits2mnist")
    img = Image.new("RGB", (60, 30))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert gan.translate("cyclegan-digits2mnist", tmp_path / "rot.jpg").size == (30, 60)
    frames = [Image.new("L", (28, 28), c) for c in (0, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert gan.translate("cyclegan-digits2mnist", tmp_path / "anim.gif").size == (28, 28)


def test_translate_rejects_non_images_with_a_clear_value_error(monkeypatch, tmp_path):
    _translator_with_fresh_weights(monkeypatch, tmp_path, "cyclegan-digits2mnist")
    (tmp_path / "notes.png").write_text("not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        gan.translate("cyclegan-digits2mnist", tmp_path / "notes.png")
    with pytest.raises(ValueError, match="expected an image"):
        gan.translate("cyclegan-digits2mnist", 42)
    with pytest.raises(ValueError, match="use gan.sample"):
        gan.translate("dcgan-faces", Image.new("RGB", (8, 8)))


def test_translator_without_weights_explains_how_to_get_them(monkeypatch):
    monkeypatch.setitem(REGISTRY, "cyclegan-style_monet",
                        dataclasses.replace(get_spec("cyclegan-style_monet"), sources=(Source("bundled", "nope"),)))
    with pytest.raises(gan.WeightsUnavailableError, match="python -m gan train cyclegan-style_monet"):
        gan.translate("cyclegan-style_monet", Image.new("RGB", (64, 64)))


def test_light_background_drawings_are_inverted_like_mnist(monkeypatch, tmp_path):
    _translator_with_fresh_weights(monkeypatch, tmp_path, "pix2pix-sketch2digit")
    dark_on_light = Image.new("L", (64, 64), 255)
    dark_on_light.paste(0, (20, 10, 40, 54))
    light_on_dark = Image.new("L", (64, 64), 0)
    light_on_dark.paste(255, (20, 10, 40, 54))
    a = np.asarray(gan.translate("pix2pix-sketch2digit", dark_on_light), float)
    b = np.asarray(gan.translate("pix2pix-sketch2digit", light_on_dark), float)
    assert np.abs(a - b).max() <= 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the tests' own thread count (conftest), so pixels can match
    return subprocess.run([sys.executable, "-m", "gan", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)  # seconds here; generous for a loaded 2-core machine


def test_cli_list_shows_every_model_and_offline_availability():
    r = _cli("list")
    assert r.returncode == 0, r.stderr
    for name in REGISTRY:
        assert name in r.stdout
    line = next(l for l in r.stdout.splitlines() if l.startswith("dcgan-faces "))
    assert " yes " in line


def test_cli_sample_writes_a_real_face(tmp_path):
    r = _cli("sample", "dcgan-faces", "--seed", "3", "--precision", "fp32", "-o", str(tmp_path / "face.png"))
    assert r.returncode == 0, r.stderr
    face = Image.open(tmp_path / "face.png")
    assert face.size == (64, 64)  # one thread and eager fp32 on both sides: the same arithmetic, the same pixels
    assert np.array_equal(np.asarray(face), np.asarray(gan.sample("dcgan-faces", seed=3, precision="fp32")[0]))


def test_cli_errors_are_one_clear_line_not_a_traceback():
    r = _cli("sample", "dcgan-facez")
    assert r.returncode == 1
    assert "did you mean 'dcgan-faces'" in r.stderr and "Traceback" not in r.stderr


def test_digit_translators_frame_a_drawing_wherever_it_is_on_the_canvas():
    digit, _ = gan.data.mnist_offline("heldout")
    ink = Image.fromarray(255 - digit[0].numpy(), "L")  # dark ink on white paper, as drawn
    small = Image.new("L", (300, 200), 255)
    small.paste(ink.resize((56, 56)), (220, 10))  # a small digit in the top-right corner
    large = ink.resize((280, 280))
    x_small, x_large = gan.preprocess("cyclegan-digits2mnist", small), gan.preprocess("cyclegan-digits2mnist", large)
    assert x_small.shape == x_large.shape == (1, 28, 28)
    assert (x_small - x_large).abs().mean() < 0.1  # the same framed digit (up to resampling)
    unframed = gan.preprocess("pix2pix-sketch2digit", small)  # no fit: the canvas is resized as it is
    assert unframed.shape == (1, 32, 32)
