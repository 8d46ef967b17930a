"""The Gradio app: its tab functions as plain functions (bad uploads of every kind, zip-slip and zip
bombs, session isolation, stop mid-training), then the real app on 127.0.0.1 driven through
gradio_client, calling every api_name it exposes."""
from __future__ import annotations

import os
import resource
import socket
import stat
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
import gan
from forger_app import display, judging, pickers, sampling, sessions, training, uploads, zerogpu, zips
from forger_app.sessions import Session
from forger_app.zips import UnsafeZipError

EXPECTED_API = {
    "/select_sample_model", "/sample", "/sample_live", "/sample_settled", "/random_seed", "/reset_sliders", "/variations",
    "/project", "/latent_download", "/latent_upload",
    "/select_interpolate_model", "/interpolate",
    "/select_translate_model", "/translate", "/translate_sketch", "/translate_video",
    "/select_train_model", "/select_train_data", "/train", "/stop_training", "/push_to_hub",
    "/hand_add", "/hand_upload", "/hand_clear", "/finetune",
    "/refresh_models",
    "/select_expert_model", "/expert_judge", "/expert_judge_sketch", "/refresh_expert_models", "/ask_expert", "/ask_expert_translation",
    "/game_start", "/game_real", "/game_fake",
}
NO_EDITS = [0.0] * sampling.MAX_SLIDERS
# the handlers toast their messages with gr.Warning, which outside a request is a UserWarning
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")


@pytest.fixture(autouse=True)
def private_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGER_APP_RUNS", str(tmp_path / "app-runs"))


@pytest.fixture(scope="module")
def translator(tmp_path_factory) -> tuple[Session, str]:
    """A session holding a (randomly initialised) pix2pix-sketch2digit, as if trained in it: a
    translator whose weights are always there, whatever weights/ holds."""
    spec = gan.registry.get_spec("pix2pix-sketch2digit")
    root = tmp_path_factory.mktemp("translator")
    session = Session(root=root)
    run = root / "run-001-pix2pix-sketch2digit"
    torch.manual_seed(0)
    gen = gan.load_generator("pix2pix-sketch2digit", pretrained=False)
    folder = gan.weights.save_pretrained(gen, run / "weights" / spec.name, name=spec.name, family=spec.family,
                                         generator=spec.generator)
    entry = session.add_trained(run, folder, steps=0)
    return session, entry.key


def _upload(path: Path | str) -> str:
    """A copy of ``path`` where Gradio puts uploads: handlers read nothing else."""
    import shutil
    import uuid

    folder = uploads.upload_root() / "forger-tests" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return shutil.copy(path, folder / Path(path).name)


def _forget_loaded_models() -> None:
    """Empty gan's serving cache (models loaded from weights/ by earlier tests)."""
    gan.clear_serving_cache()


@pytest.fixture
def no_bundled_weights(tmp_path, monkeypatch):
    """weights/ looks empty (the digit models' weights are being trained right now and may appear)."""
    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setattr(gan.weights, "WEIGHTS_DIR", empty)
    _forget_loaded_models()
    yield
    _forget_loaded_models()


# ---------------------------------------------------------------------------- image files of every kind


def huge_png(path: Path, width: int, height: int) -> Path:
    """A valid, all-black 1-bit PNG of width x height written directly (a few hundred KB, in well under a second)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    block = 1000
    idat = b"".join(comp.compress(row * min(block, height - i)) for i in range(0, height, block)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def exif_rotated_jpeg(path: Path) -> Path:
    """A 40x20 (landscape) JPEG whose EXIF says 'rotate 90°': it is shown, and must be read, as 20x40."""
    img = Image.new("RGB", (40, 20), (250, 250, 250))
    img.paste((0, 0, 0), (5, 5, 35, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, format="JPEG", exif=exif)
    return path


def make_uploads(folder: Path) -> dict[str, Path]:
    """Uploads that must translate (name -> file)."""
    folder.mkdir(parents=True, exist_ok=True)
    stroke = np.zeros((30, 40), np.uint8)
    stroke[10:20, 5:35] = 255
    files: dict[str, Path] = {}
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (5, 10, 35, 20))
    rgba.save(files.setdefault("rgba", folder / "rgba.png"))
    Image.fromarray(255 - stroke, "L").save(files.setdefault("grayscale", folder / "gray.png"))
    Image.fromarray(255 - stroke, "L").convert("CMYK").save(files.setdefault("cmyk", folder / "cmyk.jpg"))
    Image.fromarray((stroke.astype(np.uint16) * 257), "I;16").save(files.setdefault("16-bit", folder / "16bit.png"))
    exif_rotated_jpeg(files.setdefault("exif-rotated", folder / "rotated.jpg"))
    frames = [Image.fromarray(np.roll(255 - stroke, i * 3, axis=1), "L").convert("P") for i in range(4)]
    frames[0].save(files.setdefault("animated-gif", folder / "anim.gif"), save_all=True, append_images=frames[1:],
                   duration=50, loop=0)
    Image.new("RGB", (1, 1), (255, 255, 255)).save(files.setdefault("1x1", folder / "one.png"))
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    pal.paste(1, (8, 8, 24, 24))
    pal.info["transparency"] = 0
    pal.save(files.setdefault("palette-transparent", folder / "pal.png"), transparency=0)
    return files


def make_bad_uploads(folder: Path) -> dict[str, tuple[Path, str]]:
    """Uploads that must be refused with a clear message (name -> (file, words the message has))."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "notes.png"
    text.write_text("this is not an image, whatever its name says\n")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    good = folder / "good.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(good)
    truncated = folder / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    return {
        "not-an-image": (text, "not a readable image"),
        "empty-file": (empty, "not a readable image"),
        "truncated-png": (truncated, "image"),
        "20000x20000": (huge_png(folder / "huge.png", 20000, 20000), "too large"),
        "12000x12000": (huge_png(folder / "big.png", 12000, 12000), "megapixels"),
    }


# ---------------------------------------------------------------------------- cold start


def test_importing_the_app_loads_no_model():
    """Models load lazily, on first use: importing app.py (what a Space does first) loads none."""
    import subprocess
    import sys

    root = Path(app.__file__).resolve().parent
    code = ("import time; t = time.perf_counter(); import app, gan; from gan import serving; "
            "print(time.perf_counter() - t, len(serving._served), serving.directions.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    seconds, generators, directions = float(out[0]), int(out[1]), int(out[2])
    assert generators == 0 and directions == 0
    assert seconds < 120, f"importing the app took {seconds:.1f} s"  # ~6 s here; a margin for a loaded machine


# ---------------------------------------------------------------------------- Sample / Interpolate as plain functions


def test_sample_tab_renders_an_image_and_a_png_and_sliders_change_it():
    image, png, status = app.sample_image("dcgan-faces", 3, 1.0, None, *NO_EDITS, None)
    assert image is not None and Path(png).exists() and "dcgan-faces" in status
    assert Image.open(png).size == (64, 64) and min(image.size) >= display.DISPLAY_SIDE
    edited, _, _ = app.sample_image("dcgan-faces", 3, 1.0, None, 2.0, *NO_EDITS[1:], None)
    assert np.abs(np.asarray(edited, np.int16) - np.asarray(image, np.int16)).mean() > 1.0


def test_sample_model_change_shows_one_slider_per_latent_dim_or_the_ganspace_directions():
    out = app.sample_model_changed("cifar10-gan", 0, 1.0, None)
    sliders = out[2:2 + sampling.MAX_SLIDERS]
    assert [s["visible"] for s in sliders] == [True] * 32 and sliders[5]["label"] == "z[5]"
    out = app.sample_model_changed("dcgan-faces", 0, 1.0, None)
    sliders = out[2:2 + sampling.MAX_SLIDERS]
    assert sum(s["visible"] for s in sliders) == sampling.GANSPACE_K == gan.slider_directions("dcgan-faces").shape[0]
    assert "GANSpace" in sliders[0]["label"] and out[1]["visible"] is False  # no digit picker
    assert app.sample_model_changed("mnist-dcgan", 0, 1.0, None)[1]["visible"] is True


def test_sample_of_a_model_without_weights_says_how_to_get_them(no_bundled_weights):
    image, png, status = app.sample_image("cifar10-gan", 0, 1.0, None, *NO_EDITS, None)
    assert image is None and png is None
    assert "Weights not available" in status and "Train" in status and "python -m gan train cifar10-gan" in status
    assert "Traceback" not in status
    assert "no weights — train it" in dict((v, k) for k, v in pickers.model_choices("noise"))["mnist-gan"]


def test_sample_grid_random_seed_and_reset():
    grid, png, status = app.sample_grid("dcgan-faces", 1, 0.8, None, 4, *NO_EDITS, None)
    assert Image.open(png).size == (2 * 64 + 3 * 2, 2 * 64 + 3 * 2)
    seed, image, _, _ = app.random_sample("dcgan-faces", 1.0, None, *NO_EDITS, None)
    assert 0 <= seed <= 999_999 and image is not None
    out = app.reset_sliders("dcgan-faces", 1, 1.0, None, None)
    assert out[:sampling.MAX_SLIDERS] == (0,) * sampling.MAX_SLIDERS and out[sampling.MAX_SLIDERS] is not None


def test_bad_sample_values_give_messages():
    assert "seed" in app.sample_image("dcgan-faces", -5, 1.0, None, *NO_EDITS, None)[2]
    assert "unknown model" in app.sample_image("dcgan-facez", 0, 1.0, None, *NO_EDITS, None)[2]
    assert "not a noise" in app.sample_image("pix2pix-sketch2digit", 0, 1.0, None, *NO_EDITS, None)[2]


def test_interpolate_tab_gives_a_strip_and_a_looping_gif():
    strip, gif, gif_file, status = app.interpolate_tab("dcgan-faces", 1, 2, None, None, 5, "lerp", None)
    assert gif == gif_file and strip is not None
    with Image.open(gif) as g:
        assert g.n_frames == 5 + 3 and g.info.get("loop") == 0  # forth and back
    assert "frames" in app.interpolate_tab("dcgan-faces", 1, 2, None, None, 500, "slerp", None)[3]
    assert "slerp or lerp" in app.interpolate_tab("dcgan-faces", 1, 2, None, None, 4, "cubic", None)[3]


# ---------------------------------------------------------------------------- Translate: uploads of every kind


def test_translate_accepts_every_image_kind(tmp_path, translator):
    session, key = translator
    for kind, path in make_uploads(tmp_path / "ok").items():
        out, status = app.translate_tab(key, _upload(path), session)
        assert out is not None, f"{kind}: {status}"
        assert "⚠️" not in status
        if kind == "exif-rotated":
            assert out[1].height > out[1].width, "the EXIF rotation must be applied"  # (input, output)
        if kind == "rgba":
            assert out[1].width > out[1].height
    # Gradio hands the handler its file payload (the event skips Gradio's own decoding)
    out, _ = app.translate_tab(key, {"path": _upload(make_uploads(tmp_path / "p")["grayscale"]), "meta": {}}, session)
    assert out is not None


def test_translate_refuses_broken_and_huge_files_with_a_clear_message_cheaply(tmp_path, translator):
    session, key = translator
    for kind, (path, words) in make_bad_uploads(tmp_path).items():
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        out, status = app.translate_tab(key, _upload(path), session)
        took = time.perf_counter() - started
        grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
        assert out is None, kind
        assert status.startswith("⚠️") and words in status, f"{kind}: {status}"
        assert "Traceback" not in status
        # refused from the header: decoding 12000x12000 would take seconds and 144+ MB
        assert took < 30 and grew_mb < 200, f"{kind}: {took:.1f} s, +{grew_mb:.0f} MB"
    assert "no image" in app.translate_tab(key, None, session)[1]


def test_translate_model_without_weights_says_how_to_get_them(no_bundled_weights):
    out, status = app.translate_tab("cyclegan-mnist2digits", _upload(Path(app.EXAMPLES) / "mnist_3.png"), None)
    assert out is None
    assert "Weights not available for `cyclegan-mnist2digits`" in status
    assert "python -m gan train cyclegan-mnist2digits" in status and "Traceback" not in status
    status, sketch, out, *_ = app.translate_model_changed("pix2pix-sketch2digit", None)
    assert out is None
    assert "Weights not available" in status and sketch["visible"] is True
    # no sketchpad: hidden, not removed (it keeps its drawing and its brush for the next model that takes one)
    assert app.translate_model_changed("cyclegan-mnist2digits", None)[1]["visible"] == "hidden"


def test_translate_sketch_uses_the_drawing(tmp_path, translator):
    session, key = translator
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    canvas.paste((0, 0, 0, 255), (120, 40, 150, 240))
    canvas.save(tmp_path / "composite.png")
    out, status = app.translate_sketch(key, {"background": None, "layers": [],
                                             "composite": {"path": _upload(tmp_path / "composite.png")}}, session)
    assert out is not None, status
    # the empty canvas the sketchpad opens on (and sends when shown or cleared): the output and status stay
    uploads.blank_sketch().save(tmp_path / "blank.png")
    assert app.translate_sketch(key, {"composite": {"path": _upload(tmp_path / "blank.png")}}, session) == (
        gr.skip(), gr.skip())


# ---------------------------------------------------------------------------- Expert: the discriminator, questioned


def _drawing(tmp_path: Path, box: tuple[int, int, int, int] = (120, 40, 150, 240)) -> dict:
    """A sketchpad value as the browser sends it: a transparent canvas with a black stroke."""
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    canvas.paste((0, 0, 0, 255), box)
    canvas.save(tmp_path / "drawing.png")
    return {"background": None, "layers": [], "composite": {"path": _upload(tmp_path / "drawing.png")}}


def test_the_expert_lists_the_models_with_a_discriminator():
    names = [v for _, v in judging.expert_choices()]
    assert names == [n for n in gan.list_models() if (gan.weights.WEIGHTS_DIR / n / "discriminator.safetensors").exists()]
    assert "dcgan-faces" not in names and "mnist-dcgan" in names  # dcgan-faces ships without one
    assert judging.default_expert() == "mnist-dcgan"  # a conditional digit forger: the richest view
    game = [v for _, v in judging.expert_choices(game=True)]
    assert game and all(gan.registry.get_spec(n).task == "noise" for n in game)


def test_the_expert_judges_an_uploaded_digit():
    digit = _upload(Path(app.EXAMPLES) / "mnist_3.png")
    verdict, heatmap, bars = app.expert_judge("mnist-dcgan", digit, None)
    assert "P(real)" in verdict and "more real than" in verdict and "⚠️" not in verdict
    assert "judged as a **3**" in verdict  # the class the digit shows (gan.judge's own default is rarely it)
    assert heatmap is None  # not a PatchGAN
    assert list(bars["class"]) == [str(i) for i in range(10)] and bars["p_real"].between(0, 1).all()
    expected = gan.judge("mnist-dcgan", Image.open(digit), label=3)[0]
    assert f"P(real) = {100 * expected.probability:.0f}%" in verdict and expected.sentence in verdict
    verdict, heatmap, bars = app.expert_judge("mnist-gan", {"path": digit, "meta": {}}, None)  # Gradio's payload
    assert "more real than" in verdict and heatmap is None and bars is None  # unconditional: no chart


def test_a_patchgan_expert_gives_a_heatmap_of_the_uploads_size(tmp_path):
    wide = Image.open(Path(app.EXAMPLES) / "sketch_2.png").convert("L").resize((90, 60))
    wide.save(tmp_path / "wide.png")
    for model, path in (("pix2pix-sketch2digit", tmp_path / "wide.png"),
                        ("cyclegan-digits2mnist", Path(app.EXAMPLES) / "mnist_8.png")):
        verdict, heatmap, bars = app.expert_judge(model, _upload(path), None)
        assert "P(real)" in verdict and "heatmap" in verdict, verdict
        assert heatmap is not None and heatmap.size == Image.open(path).size and heatmap.mode == "RGB"
    assert "judges a pair" in app.expert_judge("pix2pix-sketch2digit", _upload(tmp_path / "wide.png"), None)[0]
    assert len(bars) == 10  # CycleGAN's expert here is conditioned on the digit


def test_the_expert_judges_a_drawing(tmp_path):
    verdict, heatmap, bars = app.expert_judge_sketch("mnist-dcgan", _drawing(tmp_path), None)
    assert "P(real)" in verdict and bars is not None, verdict
    verdict, heatmap, _ = app.expert_judge_sketch("pix2pix-sketch2digit", _drawing(tmp_path), None)
    assert heatmap is not None and heatmap.size == (280, 280)
    uploads.blank_sketch().save(tmp_path / "blank.png")  # the empty canvas: the last verdict stays
    assert app.expert_judge_sketch("mnist-dcgan", {"composite": {"path": _upload(tmp_path / "blank.png")}},
                                   None) == (gr.skip(),) * 3


def test_a_model_without_a_discriminator_says_so_plainly(tmp_path):
    digit = _upload(Path(app.EXAMPLES) / "mnist_3.png")
    verdict, heatmap, bars = app.expert_judge("dcgan-faces", digit, None)
    assert heatmap is None and bars is None
    assert "dcgan-faces ships without a discriminator" in verdict and "no real images" in verdict
    assert "Train tab" in verdict and "Traceback" not in verdict and "Weights not available" not in verdict
    assert str(gan.weights.WEIGHTS_DIR) not in verdict  # no server path
    status, sketch, *_ = app.expert_model_changed("dcgan-faces", None)
    assert "ships without a discriminator" in status


def test_ask_the_expert_of_a_model_without_one_says_so_in_place_and_names_those_that_have_one():
    """Beside a dcgan-faces sample the Expert tab is not opened on a message: the Sample tab stays, its status
    says why and which models have an expert; no toast (a warning), and the Expert tab is left as it was."""
    image, _, _ = app.sample_image("dcgan-faces", 1, 1.0, None, *NO_EDITS, None)
    with pytest.MonkeyPatch.context() as mp:
        toasts = []
        mp.setattr(gr, "Warning", lambda message, *a, **k: toasts.append(message))
        *switch_and_expert, here = app.ask_expert("dcgan-faces", image, None)
    assert all(u == {"__type__": "update"} for u in switch_and_expert)  # no tab switch, the Expert tab untouched
    assert "dcgan-faces ships without a discriminator" in here and not toasts
    assert "mnist-dcgan" in here and "pix2pix-sketch2digit" not in here  # the noise models that have one
    *_, here = app.ask_expert("mnist-dcgan", None, None)
    assert here.startswith("Make an image")


def test_the_expert_reads_only_uploads():
    for path in ("/etc/hostname", str(Path(app.EXAMPLES) / "mnist_3.png"), {"path": "/etc/passwd"}):
        verdict, heatmap, bars = app.expert_judge("mnist-gan", path, None)
        assert heatmap is None and "not uploaded" in verdict, verdict
        assert "hostname" not in verdict and "passwd" not in verdict and "mnist_3" not in verdict
    assert "no image" in app.expert_judge("mnist-gan", None, None)[0]
    assert "unknown model" in app.expert_judge("mnist-gam", _upload(Path(app.EXAMPLES) / "mnist_3.png"), None)[0]


def test_the_expert_model_shows_its_views():
    status, sketch, heatmap, bars, verdict = app.expert_model_changed("pix2pix-sketch2digit", None)
    assert "discriminator" in status and sketch["visible"] and heatmap["visible"] and not bars["visible"]
    assert verdict == ""  # the previous model's verdict is cleared
    status, sketch, heatmap, bars, verdict = app.expert_model_changed("mnist-dcgan", None)
    assert sketch["visible"] and not heatmap["visible"] and bars["visible"]


def test_ask_the_expert_judges_the_sample_image_with_the_same_model():
    image, _, _ = app.sample_image("mnist-dcgan", 5, 1.0, 7, *NO_EDITS, None)
    tabs, model, status, sketch, shown, verdict, heatmap, bars, here = app.ask_expert("mnist-dcgan", image, None)
    assert tabs.selected == "expert" and model["value"] == "mnist-dcgan" and "mnist-dcgan" in status
    assert here == {"__type__": "update"}  # the Sample tab's status stays as it is
    assert "P(real)" in verdict and "more real than" in verdict and bars["visible"] and not heatmap["visible"]
    # the displayed (enlarged) image is judged as the forger's own 28x28 pixels
    own = gan.sample("mnist-dcgan", seed=5, label=7)[0]
    expected = gan.judge("mnist-dcgan", [own])[0]
    assert f"P(real) = {100 * expected.probability:.0f}%" in verdict and expected.sentence in verdict


def test_fool_the_expert_five_rounds_end_with_both_scores():
    game, image, text = app.game_start("mnist-dcgan", 5, 11, None)
    assert "Round 1 of 5" in text and image.size[0] >= display.DISPLAY_SIDE - 4
    again = app.game_start("mnist-dcgan", 5, 11, None)[0]  # the same game for the same seed
    assert again.real == game.real and again.expert_p == game.expert_p
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again.images, game.images))
    assert 1 <= sum(game.real) <= 4  # a mix: real held-out digits and the forger's fakes
    other = app.game_start("mnist-dcgan", 5, 12, None)[0]
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(other.images, game.images))
    answers = [truth if i < 3 else not truth for i, truth in enumerate(game.real)]  # right 3 times, then wrong
    for i, real in enumerate(answers):
        assert f"Round {i + 1} of 5" in text
        game, image, text = (app.game_real if real else app.game_fake)(game)
    expert = sum((p >= 0.5) == truth for p, truth in zip(game.expert_p, game.real))  # the stated rule
    assert game.done and game.score() == (3, expert)
    assert f"You: 3 / 5 · Expert: {expert} / 5" in text and text.count("✅") == 3 + expert
    assert "at least a 50% chance" in text  # the rule is stated
    assert image.width > 4 * image.height  # all five images, in order, beside the table
    game, image, text = app.game_real(game)  # one answer too many
    assert "over" in text and game.score() == (3, expert)
    assert "Start a game first" in app.game_fake(None)[2]


def test_the_game_refuses_what_it_cannot_play():
    assert "does not forge digits" in app.game_start("pix2pix-sketch2digit", 5, 1, None)[2]
    assert "ships without a discriminator" in app.game_start("dcgan-faces", 5, 1, None)[2]
    assert "rounds" in app.game_start("mnist-gan", 500, 1, None)[2]
    assert "game number" in app.game_start("mnist-gan", 5, -1, None)[2]
    game, _, text = app.game_start("mnist-gan", 3, None, None)  # no seed: a random game
    assert game.rounds == 3 and "Round 1 of 3" in text


# ---------------------------------------------------------------------------- zips


def _zip(path: Path, members: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _patch_declared_size(path: Path, size: int) -> Path:
    """Rewrite the uncompressed size of the (single) member in the zip's central directory."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x01\x02")
    data[at + 24:at + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))
    return path


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "/abs/evil.png", "C:/evil.png",
                                  "..\\evil.png", "\\\\server\\share\\evil.png"])
def test_zip_slip_is_refused_before_anything_is_written(tmp_path, name):
    target = tmp_path / "session" / "data"
    archive = _zip(tmp_path / "slip.zip", {"ok/a.png": _png_bytes(), name: b"x"})
    with pytest.raises(UnsafeZipError, match="absolute|'\\.\\.'"):
        zips.safe_extract_zip(archive, target)
    assert not target.exists() or not any(target.rglob("*"))
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "session" / "evil.png").exists()


def test_zip_with_a_symlink_is_refused(tmp_path):
    archive = _zip(tmp_path / "link.zip", {"a.png": _png_bytes()}, symlinks=("b.png",))
    with pytest.raises(UnsafeZipError, match="symbolic link"):
        zips.safe_extract_zip(archive, tmp_path / "out")


def test_zip_bombs_are_refused_before_extracting(tmp_path):
    target = tmp_path / "out"
    # declared size over the default cap (256 MiB): refused from the directory alone
    huge = _patch_declared_size(_zip(tmp_path / "declared.zip", {"a.png": b"\0" * 1000}), 0xFFFF_FF00)
    with pytest.raises(UnsafeZipError, match="limit|inflates"):
        zips.check_zip(huge)
    # 4 MiB of zeros compress to a few KiB: no image data inflates 100:1, refused from the directory alone
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.png": b"\0" * (4 << 20)})
    assert bomb.stat().st_size < 20_000
    with pytest.raises(UnsafeZipError, match="inflates"):
        zips.safe_extract_zip(bomb, target)
    assert not target.exists()
    # random bytes (no compression) over a 1 MiB cap
    noise = _zip(tmp_path / "noise.zip", {"noise.png": np.random.default_rng(0).bytes(2 << 20)})
    with pytest.raises(UnsafeZipError, match="MiB"):
        zips.safe_extract_zip(noise, target, max_bytes=1 << 20)
    assert not target.exists()
    # too many files
    many = _zip(tmp_path / "many.zip", {f"{i}.png": b"" for i in range(11)})
    with pytest.raises(UnsafeZipError, match="entries"):
        zips.safe_extract_zip(many, target, max_files=10)
    # a member that lies about its size (declares 100 bytes, holds 1 MiB) is stopped while copying
    liar = _patch_declared_size(_zip(tmp_path / "liar.zip", {"a.png": b"\0" * (1 << 20)}), 100)
    with pytest.raises(UnsafeZipError):
        zips.safe_extract_zip(liar, target)
    assert not target.exists() or sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) <= 100
    # not a zip at all
    (tmp_path / "fake.zip").write_text("hello")
    with pytest.raises(UnsafeZipError, match="not a readable zip"):
        zips.safe_extract_zip(tmp_path / "fake.zip", target)


def test_a_good_zip_extracts_to_its_top_folder(tmp_path):
    archive = _zip(tmp_path / "good.zip", {"faces/a.png": _png_bytes(), "faces/sub/b.png": _png_bytes()})
    root = zips.safe_extract_zip(archive, tmp_path / "out")
    assert root == tmp_path / "out" / "faces" and (root / "sub" / "b.png").exists()


# ---------------------------------------------------------------------------- sessions and training


def test_sessions_are_isolated(translator):
    session_a, key = translator
    session_b = Session()
    assert session_a.root != session_b.root and session_b.root.parent == sessions.runs_root()
    assert key in [v for _, v in pickers.model_choices("translate", session_a)]
    assert key not in [v for _, v in pickers.model_choices("translate", session_b)]
    assert key not in [v for _, v in pickers.model_choices("translate", None)]
    with pytest.raises(ValueError, match="other sessions"):
        session_b.resolve(key)
    out, status = app.translate_tab(key, _upload(Path(app.EXAMPLES) / "sketch_2.png"), session_b)
    assert out is None and "other sessions" in status
    out, status = app.translate_tab(key, _upload(Path(app.EXAMPLES) / "sketch_2.png"), None)
    assert out is None and "other sessions" in status
    assert app.stop_training(session_b).startswith("No training run")
    assert "only weights trained in this session" in app.push_weights(key, "me/x", "tok", False, session_b)
    session_b.close()
    assert not session_b.root.exists() and session_a.root.exists()


def _drain(gen, on_progress=None):
    last = None
    for i, out in enumerate(gen):
        last = out
        if on_progress is not None and i >= 1:
            on_progress(out)
            on_progress = None
    return last


def test_train_stop_mid_run_leaves_a_loadable_checkpoint_and_session_weights():
    session = Session()
    stopped = []

    def stop_now(_):
        stopped.append(app.stop_training(session))

    last = _drain(app.train_tab("mnist-gan", "mnist-offline", "", None, 5000, None, 16, None, session), stop_now)
    assert stopped and stopped[0].startswith("Stopping")
    (state, grid, plot, progress, status, weights_zip, sample_dd, interp_dd, translate_dd, runs_dd, expert_plot,
     diversity_plot, diversity) = last
    assert set(expert_plot["loss"]) == {"D(real)", "D(fake)"} and not set(plot["loss"]) & {"D(real)", "D(fake)"}
    assert len(diversity_plot) > 0 and "as varied as real images" in diversity  # the collapse alarm's figure
    assert expert_plot["value"].between(0, 1).all()
    assert state is session and "✅" in status and "stopped at step" in status
    assert not session.running
    entry = next(iter(session.trained.values()))
    assert entry.name == "mnist-gan" and runs_dd["value"] == entry.key
    assert entry.key in [v for _, v in sample_dd["choices"]] and entry.key in [v for _, v in interp_dd["choices"]]
    # the checkpoint loads and stopped early; the weights load and sample in the app
    from gan.train import load_checkpoint

    checkpoint = load_checkpoint(entry.run / "checkpoint.pt")
    assert 0 < checkpoint["step"] < 5000
    assert gan.load_generator("mnist-gan", weights=entry.weights) is not None
    image, _, status = app.sample_image(entry.key, 0, 1.0, None, *NO_EDITS, session)
    assert image is not None, status
    with zipfile.ZipFile(weights_zip) as zf:
        assert "mnist-gan/model.safetensors" in zf.namelist()
    assert grid is not None and len(plot) > 0 and "done" in progress


def test_your_handwriting_is_drawn_or_uploaded_then_sample_draws_every_digit_in_it(tmp_path, monkeypatch):
    """The Train tab's handwriting section end to end in the handlers: digits drawn (light strokes made dark on
    light) and uploaded, each labelled; refusals with a reason; a short fine-tune; its model in Sample."""
    from gan.evaluate.style import synthetic_hand
    from gan.train import finetune

    monkeypatch.setattr(finetune, "STEPS", 3)
    session = Session()
    state, gallery, status = app.hand_add(_drawing(tmp_path), None, session)
    assert "choose which digit" in status and not session.hand
    state, gallery, status = app.hand_add({"background": None, "layers": [], "composite": None}, "7", session)
    assert "draw a digit" in status
    state, gallery, status = app.hand_add(_drawing(tmp_path), "1", session)
    assert state is session and len(gallery) == 1 and "9 more" in status
    x = session.hand[0][0][0]
    assert x.max() > 0.9 and x[0].max() < -0.9  # a dark stroke on a light canvas becomes MNIST's light on black
    images, labels = synthetic_hand(1)
    for digit, image in zip(labels.tolist(), images):
        path = tmp_path / f"{digit}.png"
        Image.fromarray(((image[0] + 1) * 127.5).round().byte().numpy()).save(path)
        state, gallery, status = app.hand_upload([_upload(path)], str(digit), session)
    assert len(session.hand) == 11 and "Ready" in status and "1 ×2" in status
    state, gallery, status = app.hand_upload([str(tmp_path / "0.png")], "0", session)  # not an upload: refused
    assert "not uploaded to this app" in status and len(session.hand) == 11
    last = _drain(app.finetune_tab(session))
    (state, grid, plot, progress, status, weights_zip, sample_dd, interp_dd, translate_dd, runs_dd, expert_plot,
     diversity_plot, diversity) = last
    assert "✅" in status and "your handwriting" in status and not session.running, status
    entry = next(iter(session.trained.values()))
    assert entry.key in [v for _, v in sample_dd["choices"]] and "as varied as real images" in diversity
    for digit in range(10):  # every digit, from the weights of this hand
        image, _, status = app.sample_image(entry.key, 0, 1.0, digit, *NO_EDITS, session)
        assert image is not None, status
    state, gallery, status = app.hand_clear(session)
    assert gallery == [] and not session.hand


def _train_one_step(session: Session) -> str:
    """A real 1-step mnist-gan run (about 32 MiB on disk) in ``session``: its final status."""
    return _drain(app.train_tab("mnist-gan", "mnist-offline", "", None, 1, None, 16, None, session))[4]


def test_training_runs_on_disk_have_a_quota_the_oldest_finished_go_first_and_users_are_told(monkeypatch):
    monkeypatch.setattr(sessions, "RUN_ROOM_BYTES", 8 << 20)
    monkeypatch.setattr(sessions, "MAX_SESSION_RUNS_BYTES", 36 << 20)  # room for one short run per session
    monkeypatch.setattr(sessions, "MAX_RUNS_BYTES", 70 << 20)  # ... and for two in all
    first, second = Session(), Session()
    assert "✅" in _train_one_step(first) and "deleted" not in _train_one_step(second)
    used = sum(sessions.folder_bytes(p) for p in sessions.runs_root().glob("session-*/run-*"))
    assert 2 * (20 << 20) < used <= sessions.MAX_RUNS_BYTES  # each run holds its checkpoint and weights
    (old_key, old), = first.trained.items()
    # the first session's next run would pass its own quota: its older run goes, and it is told
    status = _train_one_step(first)
    assert "✅" in status and f"your {old.run.name} (" in status and "the oldest finished runs were deleted" in status
    assert not old.run.exists() and old_key not in first.trained and len(first.trained) == 1
    image, png, message = app.sample_image(old_key, 0, 1.0, None, *NO_EDITS, first)
    assert image is None and "was deleted to make room for newer training runs" in message
    # a third session's run passes the quota of all sessions: the oldest finished run (the second session's) goes
    (second_key, second_entry), = second.trained.items()
    third = Session()
    status = _train_one_step(third)
    assert "an older run of another session (" in status and not second_entry.run.exists()
    assert "deleted to make room" in app.sample_image(second_key, 0, 1.0, None, *NO_EDITS, second)[2]
    assert next(iter(first.trained.values())).run.exists()  # newer than the second session's: kept
    runs = sessions.runs_root().glob("session-*/run-*")
    assert sum(sessions.folder_bytes(p) for p in runs) <= sessions.MAX_RUNS_BYTES


def test_a_run_in_progress_is_never_deleted_for_room(monkeypatch):
    monkeypatch.setattr(sessions, "RUN_ROOM_BYTES", 8 << 20)
    monkeypatch.setattr(sessions, "MAX_RUNS_BYTES", 8 << 20)  # one run, started in an empty runs folder
    busy, other = Session(), Session()
    running = app.train_tab("mnist-gan", "mnist-offline", "", None, 5000, None, 16, None, busy)
    for out in running:  # until its first sample grid: its checkpoint-sized files are being written
        if out[1] is not None and not isinstance(out[1], dict):
            break
    try:
        status = _train_one_step(other)
        assert "training runs in progress; try again when they finish" in status and busy.run.exists()
    finally:
        busy.stop.set()
        _drain(running)
    status = _train_one_step(other)  # finished now: the busy session's run makes room
    assert "✅" in status and "an older run of another session" in status and not busy.trained


def test_train_refuses_bad_requests_with_messages(tmp_path):
    session = Session()
    cases = [
        (("mnist-gan", "folder", str(tmp_path / "missing"), None, 10, None, None, None), "folders must be under"),
        (("mnist-gan", "folder", "data/missing", None, 10, None, None, None), "no folder"),
        (("mnist-gan", "folder", "", None, 10, None, None, None), "folder"),
        (("mnist-gan", "zip", "", None, 10, None, None, None), "upload a zip"),
        (("mnist-gan", "mnist-offline", "", None, 10**9, None, None, None), "steps"),
        (("mnist-gan", "mnist-offline", "", None, 10, None, -3, None), "batch size"),
        (("mnist-gan", "mnist-offline", "", None, 10, None, 2.5, None), "batch size"),
        (("mnist-gan", "mnist-offline", "", None, 10, None, None, 5.0), "learning rate"),
        (("pix2pix-sketch2digit", "mnist-offline", "", None, 10, None, None, None), "mnist-offline"),
        (("mnist-gan", "mnist-offline", "", None, None, None, None, None), "steps or of minutes"),
        (("mnist-gan", "mnist-offline", "", None, None, float("nan"), None, None), "minutes"),
        (("mnist-gan", "mnist-offline", "", None, None, 10**6, None, None), "minutes"),
    ]
    slip = _zip(tmp_path / "slip.zip", {"../x.png": b"x"})
    cases.append((("mnist-gan", "zip", "", _upload(slip), 10, None, None, None), "'..'"))
    cases.append((("mnist-gan", "zip", "", str(slip), 10, None, None, None), "not uploaded to this app"))
    for args, words in cases:
        last = _drain(app.train_tab(*args, session))
        assert last[4].startswith("⚠️") and words in last[4], (args, last[4])
    assert not session.running and not session.trained


def test_folder_paths_come_from_an_allow_list(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    monkeypatch.delenv("FORGER_DATA_ROOTS", raising=False)
    monkeypatch.delenv("FORGER_ANY_FOLDER", raising=False)
    for outside in ("/", str(tmp_path / "mine"), tempfile.gettempdir()):  # the default: ./data only
        with pytest.raises(ValueError, match="upload a zip") as refused:
            training.data_folder(outside)
        assert str(tmp_path) not in str(refused.value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "faces").mkdir(parents=True)
    assert training.data_folder("data/faces") == (tmp_path / "data" / "faces").resolve()
    monkeypatch.setenv("FORGER_ANY_FOLDER", "1")  # opt-in, for one's own machine
    assert training.data_folder(str(tmp_path / "mine")) == (tmp_path / "mine").resolve()
    monkeypatch.setenv("SPACE_ID", "someone/forger")  # never on a Space
    with pytest.raises(ValueError, match="upload a zip"):
        training.data_folder(str(tmp_path / "mine"))
    monkeypatch.setenv("FORGER_DATA_ROOTS", str(tmp_path / "mine"))
    assert training.data_folder(str(tmp_path / "mine")) == (tmp_path / "mine").resolve()
    with pytest.raises(ValueError, match="must be under"):
        training.data_folder(str(tmp_path / "mine" / ".." / ".."))


def test_push_uses_the_users_token_and_never_leaks_it(monkeypatch, translator):
    session, key = translator
    calls = []

    def fake_push(folder, repo_id, token=None, private=False):
        calls.append((folder, repo_id, token, private))
        return f"https://huggingface.co/{repo_id}"

    monkeypatch.setattr(gan.weights, "push_to_hub", fake_push)
    assert "write token" in app.push_weights(key, "me/model", "", False, session)
    assert "repo id" in app.push_weights(key, "not a repo", "hf_x", False, session)
    assert "✅" in app.push_weights(key, "me/model", "hf_secret", True, session)
    assert calls == [(session.trained[key].weights, "me/model", "hf_secret", True)]

    def fail(*a, **k):
        raise RuntimeError("401 for token hf_secret")

    monkeypatch.setattr(gan.weights, "push_to_hub", fail)
    message = app.push_weights(key, "me/model", "hf_secret", False, session)
    assert "401" in message and "hf_secret" not in message


# ------------------------------------------------------------------ the real app on 127.0.0.1, via gradio_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


def test_every_api_name_works_through_gradio_client(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == EXPECTED_API
    assert not api["unnamed_endpoints"]
    called = set()

    def call(name, *args):
        called.add(name)
        return client.predict(*args, api_name=name)

    # Sample
    status, digit, *rest = call("/select_sample_model", "mnist-dcgan", 0, 1.0)
    assert len(rest) == sampling.MAX_SLIDERS + 2
    dcgan_png = rest[-1]  # asked about in the Expert tab below
    image, png, status = call("/sample", "dcgan-faces", 3, 1.0, 0, *NO_EDITS)
    before = Image.open(png).copy()
    live = call("/sample_live", "dcgan-faces", 3, 1.0, 0, 2.5, *NO_EDITS[1:])  # while dragging: the image alone
    assert Image.open(live).size == (64, 64)  # at the model's own size; the page enlarges it
    assert np.abs(np.asarray(Image.open(live), np.int16) - np.asarray(before, np.int16)).mean() > 1
    image, png, status = call("/sample_settled", "dcgan-faces", 3, 1.0, 0, 2.5, *NO_EDITS[1:])  # released
    assert np.asarray(Image.open(png), np.int16).tolist() == np.asarray(Image.open(live), np.int16).tolist()
    seed, image, png, status = call("/random_seed", "dcgan-faces", 1.0, 0, *NO_EDITS)
    assert isinstance(seed, (int, float)) and Path(png).exists()
    out = call("/reset_sliders", "dcgan-faces", 3, 1.0, 0)
    n = sampling.MAX_SLIDERS
    assert list(out[:n]) == [0] * n and Path(out[n + 1]).exists()
    grid, grid_png, status = call("/variations", "dcgan-faces", 3, 1.0, 0, 4, *NO_EDITS)
    assert Image.open(grid_png).size == (134, 134)
    # Start from my image: an uploaded digit is projected, its reconstruction shown beside it
    pair, digit, *sliders, image, png, status = call("/project", "mnist-dcgan",
                                                     handle_file(str(app.EXAMPLES / "mnist_3.png")), None, 0, 1.0)
    assert "your image" in status and Path(png).exists() and Image.open(pair[0]).size == Image.open(pair[1]).size
    # the latent of the image shown, downloaded (.npy and .json), then uploaded back: the same image
    image, png, status = call("/sample", "mnist-dcgan", 3, 0.8, 7, 0.5, *NO_EDITS[1:])
    files, _ = call("/latent_download", "mnist-dcgan", 3, 0.8, 7, 0.5, *NO_EDITS[1:])
    *_, back, status = call("/latent_upload", [handle_file(f) for f in files], "mnist-dcgan", 3, 0)
    diff = np.abs(np.asarray(Image.open(back), np.int16) - np.asarray(Image.open(png), np.int16))
    assert "your latent" in status and diff.mean() <= 0.5 and diff.max() <= 4  # bounded: the server may change path
    # Interpolate
    status, digit_a, digit_b = call("/select_interpolate_model", "dcgan-faces")
    strip, gif, gif_file, status = call("/interpolate", "dcgan-faces", 1, 2, 0, 1, 4, "slerp")
    assert Image.open(gif_file).n_frames == 6
    strip, gif, gif_file, status = call("/interpolate", "mnist-dcgan", 1, 2, 0, 1, 3, "slerp",
                                        handle_file(str(app.EXAMPLES / "mnist_3.png")), None)  # image A, seed B
    assert Image.open(gif_file).n_frames == 4 and "A: your image" in status
    # Translate: a clear message for a model without weights, for a non-image and for a 20000x20000 PNG
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan.weights, "WEIGHTS_DIR", tmp_path / "nothing")
        _forget_loaded_models()
        # (the sketchpad box: page only); then resolution, mode and seed, hidden and back to their defaults
        status, out, *options = call("/select_translate_model", "cyclegan-mnist2digits")
        assert [(o["visible"], o["value"]) for o in options] == [(False, "model"), (False, "deterministic"), (False, 0)]
        assert out is None  # the previous model's output is cleared
        assert "Weights not available" in status
        out, status = call("/translate", "cyclegan-mnist2digits", handle_file(str(app.EXAMPLES / "mnist_3.png")))
        assert out is None and "Weights not available for `cyclegan-mnist2digits`" in status
        out, status = call("/translate_sketch", "pix2pix-sketch2digit", {
            "background": None, "layers": [], "composite": handle_file(str(app.EXAMPLES / "sketch_2.png"))})
        assert out is None and "Weights not available" in status
    _forget_loaded_models()
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    out, status = call("/translate", "pix2pix-sketch2digit", handle_file(str(bad)))
    assert out is None and "not a readable image" in status
    out, status = call("/translate", "pix2pix-sketch2digit", handle_file(str(huge_png(tmp_path / "h.png", 20000,
                                                                                       20000))))
    assert out is None and "too large" in status
    # at full resolution, in a real request: the progress bar over the tiles (289 tiles of 32 px here)
    out, status = call("/translate", "pix2pix-sketch2digit", handle_file(str(app.EXAMPLES / "sketch_2.png")), "full")
    assert "⚠️" not in status and Image.open(out[0]).size == Image.open(out[1]).size == (280, 280)  # input, output
    frames = [Image.new("L", (40, 30), 255 - 60 * i) for i in range(3)]  # different frames: GIF merges equal ones
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    video, status = call("/translate_video", "pix2pix-sketch2digit", handle_file(str(tmp_path / "clip.gif")),
                         "full", "paper", 3)
    assert "3 frames translated" in status and Path(video["video"] if isinstance(video, dict) else video).exists()
    # Train: start, stop mid-run from the same session, the weights appear in this session only
    data, status = call("/select_train_model", "cifar10-gan")
    assert data == "cifar10"
    folder, zip_box = call("/select_train_data", "zip")
    assert "/stop_training" not in called
    job = client.submit("mnist-gan", "mnist-offline", "", None, 5000, None, 16, None, api_name="/train")
    called.add("/train")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("step" in str(o[2]) and "step 0 " not in str(o[2])
                                                  for o in job.outputs()):
        time.sleep(0.2)
    assert call("/stop_training").startswith("Stopping")
    grid, plot, progress, status, weights_zip, sample_dd, interp_dd, translate_dd, runs_dd, expert_plot, *alarm = \
        job.result(timeout=120)
    run_key = runs_dd["value"] if isinstance(runs_dd, dict) else runs_dd
    assert "stopped at step" in status and run_key.startswith("run:") and Path(weights_zip).exists()
    image, png, status = call("/sample_settled", run_key, 0, 1.0, 0, *NO_EDITS)
    assert png is not None, status
    assert "write token" in call("/push_to_hub", run_key, "me/model", "", False)
    sample_dd, interp_dd, translate_dd, image, png, status = call("/refresh_models")
    # Expert: its model lists now hold the discriminator this session trained
    expert_dd, game_dd = call("/refresh_expert_models")
    assert run_key in [v for _, v in expert_dd["choices"]] and run_key in [v for _, v in game_dd["choices"]]
    assert "dcgan-faces" not in [v for _, v in expert_dd["choices"]]
    status, heatmap, bars, verdict = call("/select_expert_model", "cyclegan-digits2mnist")
    assert "discriminator" in status and heatmap["visible"] and verdict == ""
    digit = handle_file(str(app.EXAMPLES / "mnist_3.png"))
    verdict, heatmap, bars = call("/expert_judge", "cyclegan-digits2mnist", digit)
    assert "more real than" in verdict and Image.open(heatmap).size == (28, 28) and bars is not None
    verdict, heatmap, bars = call("/expert_judge", run_key, digit)  # the expert trained in this session
    assert "P(real)" in verdict and heatmap is None, verdict
    # a model without an expert is not on the list: the boundary says which are (the handler says why: below)
    with pytest.raises(AppError, match="Whose expert must be one of the listed choices: 'mnist-gan'"):
        call("/expert_judge", "dcgan-faces", digit)
    verdict, heatmap, bars = call("/expert_judge_sketch", "mnist-dcgan", {
        "background": None, "layers": [], "composite": handle_file(str(app.EXAMPLES / "sketch_7.png"))})
    assert "P(real)" in verdict and bars is not None
    model, status, shown, verdict, heatmap, bars, here = call("/ask_expert", "mnist-dcgan", handle_file(dcgan_png))
    assert model["value"] == "mnist-dcgan" and "P(real)" in verdict and Path(shown).exists()
    sketch_file = handle_file(str(app.EXAMPLES / "sketch_2.png"))
    model, status, shown, verdict, heatmap, bars, here = call("/ask_expert_translation", "pix2pix-sketch2digit",
                                                              sketch_file, None, None)
    assert model["value"] == "pix2pix-sketch2digit" and "P(real)" in verdict
    image, text = call("/game_start", "mnist-gan", 5, 3)
    assert "Round 1 of 5" in text
    for i in range(5):
        image, text = call("/game_real" if i % 2 else "/game_fake")
    assert "You: " in text and "Expert: " in text and text.count("| fake |") + text.count("| real |") == 5
    # a second user (another client, another session) cannot use the first one's trained model
    other = Client(server, verbose=False)
    try:
        result = other.predict(run_key, 0, 1.0, 0, *NO_EDITS, api_name="/sample_settled")
        assert result[1] is None and "other sessions" in result[2]
    except AppError as e:  # the boundary refuses a value that is not among this session's choices
        assert "must be one of the listed choices" in str(e)
    assert other.predict(api_name="/stop_training").startswith("No training run")
    # Your handwriting: a drawn digit and an uploaded one join the session's hand; too few to learn from; cleared
    _drawing(tmp_path)  # writes drawing.png
    drawn = {"background": None, "layers": [], "composite": handle_file(str(tmp_path / "drawing.png"))}
    gallery, hand_status = call("/hand_add", drawn, "1")
    assert len(gallery) == 1 and "1 digit of yours (1 ×1)" in hand_status
    gallery, hand_status = call("/hand_upload", [handle_file(str(app.EXAMPLES / "mnist_3.png"))], "3")
    assert len(gallery) == 2 and "3 ×1" in hand_status
    *_, finetune_status, _, _, _, _, _, _, _, _ = call("/finetune")
    assert "give at least 10 digits" in finetune_status
    gallery, hand_status = call("/hand_clear")
    assert gallery == [] and "No digits yet" in hand_status
    assert called == EXPECTED_API


# ---------------------------------------------------------------------------- Hugging Face ZeroGPU


def test_model_calls_run_under_spaces_gpu_when_the_spaces_package_is_importable(monkeypatch):
    import sys
    import types

    decorated = []
    fake = types.ModuleType("spaces")

    def gpu(func):
        decorated.append(func)
        return lambda *a, **k: ("on the GPU", func(*a, **k))

    fake.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert zerogpu.zero_gpu(zerogpu._call)(max, 1, 2) == ("on the GPU", 2) and decorated == [zerogpu._call]
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: `import spaces` fails
    assert zerogpu.zero_gpu(zerogpu._call) is zerogpu._call

    seen = []
    monkeypatch.setattr(zerogpu, "on_gpu", lambda func, *a, **k: (seen.append(func), func(*a, **k))[1])
    assert sampling.render_sample("mnist-gan", 1)[0].size == (28, 28) and seen == [gan.sample]
    app.interpolate_tab("mnist-gan", 1, 2, None, None, 3, "slerp", None)
    assert seen[-1] is gan.interpolate


# ---------------------------------------------------------------------------- hostile API clients


def _raw_call(server: str, api_name: str, data: list) -> tuple[str, str]:
    """Call an event over Gradio's HTTP API with a payload as a hostile client writes it (no upload):
    (the last event's kind, its data as text)."""
    import httpx

    base = server.rstrip("/") + "/gradio_api/call/" + api_name
    event = httpx.post(base, json={"data": data}, timeout=30).json()["event_id"]
    with httpx.stream("GET", f"{base}/{event}", timeout=60) as response:
        lines = list(response.iter_lines())
    kinds = [line[6:].strip() for line in lines if line.startswith("event:")]
    datas = [line[5:].strip() for line in lines if line.startswith("data:")]
    return kinds[-1], datas[-1]


def test_the_api_reads_only_uploads_and_never_shows_server_paths(server, tmp_path):
    """The red-team cases: a raw server path, a FIFO, and error text as a filesystem oracle."""
    fifo = uploads.upload_root() / "forger-tests" / "fifo.png"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if not fifo.exists():
        os.mkfifo(fifo)
    cases = {"/etc/hostname": "not uploaded", "/etc": "not uploaded", "/no/such/file.png": "not uploaded",
             str(Path(app.EXAMPLES) / "mnist_3.png"): "not uploaded", str(fifo): "not a regular file",
             str(uploads.upload_root() / "forger-tests" / "gone.png"): "gone"}
    for path, words in cases.items():
        started = time.monotonic()
        kind, reply = _raw_call(server, "translate", ["cyclegan-mnist2digits",
                                                      {"path": path, "meta": {"_type": "gradio.FileData"}},
                                                      "model", "deterministic", 0])
        # the boundary (forger_app/boundary.py) refuses a file payload naming anything but an upload, with a message
        assert kind == "error" and words in reply, (path, reply)
        assert time.monotonic() - started < 30  # the FIFO never held the worker
        for secret in ("/etc", "hostname", "/no/such", str(uploads.upload_root()), "Is a directory", "No such file",
                       "mnist_3"):
            assert secret not in reply, (path, reply)
    # and the handler itself, whatever the transport, for the paths Gradio would let through
    for path in ("/etc/hostname", str(Path(app.EXAMPLES) / "mnist_3.png")):
        out, status = app.translate_tab("cyclegan-mnist2digits", {"path": path}, None)
        assert out is None and "not uploaded" in status and "hostname" not in status and "mnist_3" not in status


def test_numbers_that_are_not_numbers_get_a_message(server):
    for seed in (-5, 99_999_999_999):
        kind, reply = _raw_call(server, "sample", ["dcgan-faces", seed, 1.0, 0, *NO_EDITS])
        assert kind == "complete" and "seed must be a whole number" in reply, (seed, reply)
    image, png, status = app.sample_image("dcgan-faces", float("nan"), 1.0, 0, *NO_EDITS, None)
    assert image is None and "seed must be" in status
    # a string, a NaN or an infinity where a number belongs: a message naming the field, before the handler
    cases = [("sample", ["dcgan-faces", "abc", 1.0, 0, *NO_EDITS], "Seed must be a whole number, got the text 'abc'"),
             ("sample", ["dcgan-faces", 1, "x", 0, *NO_EDITS], "Truncation must be a number from 0 to 2"),
             ("sample", ["dcgan-faces", 1, 1.0, 0, "inf", *NO_EDITS[1:]], "must be a number from -3 to 3, got the text"),
             ("interpolate", ["mnist-dcgan", "one", 2, None, None, 10, "slerp", None, None],
              "Seed A must be a whole number")]
    for api_name, data, words in cases:
        kind, reply = _raw_call(server, api_name, data)
        assert kind == "error" and words in reply and "upstream" not in reply, (api_name, data, reply)
    kind, reply = _raw_call(server, "sample", ["dcgan-faces", "7", "0.5", 0, *NO_EDITS])  # numeric strings: fine
    assert kind == "complete", reply


def test_a_slider_move_does_one_registry_lookup_and_probes_no_weight_source(monkeypatch):
    app.sample_image("dcgan-faces", 3, 1.0, None, 1.0, *NO_EDITS[1:], None)  # loads it, finds its directions
    lookups, probes = [], []

    class Counting(dict):
        def __getitem__(self, key):
            lookups.append(key)
            return super().__getitem__(key)

    monkeypatch.setattr(gan.registry, "REGISTRY", Counting(gan.registry.REGISTRY))
    monkeypatch.setattr(gan.weights, "is_cached", lambda source: probes.append(source) or False)
    image, png, status = app.sample_image("dcgan-faces", 3, 1.0, None, 0.5, *NO_EDITS[1:], None)
    assert image is not None and "dcgan-faces" in status
    assert lookups == ["dcgan-faces"] and probes == []


def test_ask_the_expert_about_a_translation():
    """Beside Translate's output: a CycleGAN's expert judges the output, a Pix2Pix expert the pair
    (the input and its translation)."""
    digit = _upload(Path(app.EXAMPLES) / "mnist_3.png")
    out, status = app.translate_tab("cyclegan-mnist2digits", digit, None)
    assert out is not None, status
    res = app.ask_expert_translation("cyclegan-mnist2digits", digit, None, out, None)
    verdict, heat = res[5], res[6]
    assert "P(real)" in verdict and heat["value"] is not None
    sketch = _upload(Path(app.EXAMPLES) / "sketch_2.png")
    res = app.ask_expert_translation("pix2pix-sketch2digit", sketch, None, None, None)
    assert "P(real)" in res[5] and res[6]["value"] is not None
    expected = gan.judge("pix2pix-sketch2digit", uploads.open_upload(sketch))[0]
    assert f"{100 * expected.probability:.0f}%" in res[5]
    assert "Translate an image first" in app.ask_expert_translation("cyclegan-mnist2digits", None, None, None,
                                                                    None)[-1]
    # an upload and a drawing: the upload is judged, and the Expert tab says so
    drawing = {"composite": Image.open(Path(app.EXAMPLES) / "sketch_7.png")}
    res = app.ask_expert_translation("pix2pix-sketch2digit", sketch, drawing, None, None)
    assert "uploaded image was judged" in res[2] and f"{100 * expected.probability:.0f}%" in res[5]


def test_each_tabs_default_model_can_do_all_the_tab_offers_offline():
    """The first screen leads somewhere: the default sample model (Sample and Interpolate) and the default
    translator have their weights and their expert here, so sampling, "Start from my image", translating and
    "Ask the expert" all answer; and the Sample tab's digit picker and sketchpad show for it from the start."""
    for task in ("noise", "translate"):
        name = app.default_model(task)
        assert pickers.availability(name) == "offline" and judging.has_discriminator(name), name
    noise = app.default_model("noise")
    image, _, status = app.sample_image(noise, 0, 1.0, 0, *NO_EDITS, None)
    res = app.ask_expert(noise, image, None)
    assert res[0].selected == "expert" and "P(real)" in res[5]
    projected = app.project_image(noise, _upload(Path(app.EXAMPLES) / "mnist_3.png"), None, 0, 1.0, None)
    assert "your image" in projected[-1], projected[-1]
    spec = gan.registry.get_spec(noise)
    page = {c.elem_id: c for c in app.demo.blocks.values() if getattr(c, "elem_id", None)}
    assert page["sample-digit"].visible == spec.conditional and pickers.draws_digits(spec)
    translator = app.default_model("translate")
    out, status = app.translate_tab(translator, _upload(Path(app.EXAMPLES) / "sketch_2.png"), None)
    assert out is not None, status
    assert "P(real)" in app.ask_expert_translation(translator, _upload(Path(app.EXAMPLES) / "sketch_2.png"), None,
                                                   out, None)[5]
    assert app.default_model("noise") in [v for _, v in judging.expert_choices()] and judging.default_expert()


def test_start_from_my_image_offers_a_drawing_to_digit_models_only_and_says_which_of_two_it_used():
    """A face model is not invited to draw a digit (its sketchpad is hidden, and a drawing left on it is never
    read: it was turned into a dark face); an upload and a drawing together: the upload is used, and the status
    says so and how to use the drawing instead."""
    assert app.sample_model_changed("dcgan-faces", 0, 1.0, None)[-1]["visible"] == "hidden"
    assert app.sample_model_changed("mnist-dcgan", 0, 1.0, None)[-1]["visible"] is True
    drawing = {"composite": Image.open(Path(app.EXAMPLES) / "sketch_7.png").convert("RGB")}
    status = app.project_image("dcgan-faces", None, drawing, 0, 1.0, None)[-1]
    assert "no image: upload one" in status and "draw" not in status
    upload = _upload(Path(app.EXAMPLES) / "mnist_3.png")
    both = app.project_image("mnist-dcgan", upload, drawing, 0, 1.0, None)
    alone = app.project_image("mnist-dcgan", upload, None, 0, 1.0, None)
    assert "the uploaded image was used" in both[-1] and "remove the upload" in both[-1]
    assert "uploaded image was used" not in alone[-1]
    assert both[0].z == alone[0].z  # the upload's latent, not the drawing's


def test_full_resolution_in_the_app_says_at_which_size_it_ran_when_not_the_one_asked():
    """A 2000x1500 drawing at full resolution through pix2pix-sketch2digit (32 px: 11,532 tiles) comes at the
    size ``plan`` gives (at most MAX_TILES tiles), and the status says so; a digit CycleGAN, which cannot tile,
    translates at its own size and says that it is the largest it can do, rather than refusing."""
    drawing = Image.new("L", (2000, 1500), 255)
    drawing.paste(0, (900, 300, 1000, 1200))  # a "1"
    drawing.save(path := Path(tempfile.mkdtemp()) / "big.png")
    upload = _upload(path)
    how = gan.translation.plan("pix2pix-sketch2digit", 2000, 1500, "full")
    out, status = app.translate_tab("pix2pix-sketch2digit", upload, None, "full")
    assert out[0].size == out[1].size == how.size and how.passes <= gan.translation.MAX_TILES and how.note in status
    assert "11532 tiles" in status and "⚠️" not in status
    out, status = app.translate_tab("cyclegan-digits2mnist", upload, None, "full")
    assert out is not None and "the largest it can do" in status and "⚠️" not in status, status


def test_the_progress_bar_gets_a_few_updates_a_second_however_many_tiles():
    """A full-resolution translation reported every tile to the page (11,532 messages for one image); the app
    passes on at most one update per PROGRESS_EVERY_S, and always the last. The bound is taken from the time
    the calls really took here."""
    from forger_app import handlers

    shown = []
    report = handlers._tiles(lambda fraction, desc: shown.append(desc))
    started = time.monotonic()
    for done in range(1, 20_001):
        report(done, 20_000)
    elapsed = time.monotonic() - started
    assert shown[0] == "translating: tile 1 of 20000" and shown[-1] == "translating: tile 20000 of 20000"
    assert len(shown) <= 2 + elapsed / handlers.PROGRESS_EVERY_S, (len(shown), elapsed)


def test_before_its_page_is_served_the_app_loads_every_offline_noise_model_and_makes_an_image(monkeypatch,
                                                                                                tmp_path):
    """What `python app.py` does before it serves the page (issue 30: no first click waits for torch's import,
    a load or a first run's kernel builds): each noise model with weights here is loaded, the default first,
    and one image of it computed on the compute thread in eager fp32, the path served until the choice is made.
    No choice is started: it waits for the page (``prepare_models``)."""
    from forger_app import handlers
    from gan import serving

    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FORGER_COMPUTE_THREAD", raising=False)
    monkeypatch.setenv("FORGER_DEVICE", "cpu")
    gan.clear_serving_cache()
    ran: list[tuple[str, str]] = []
    real = gan.load_generator

    def loading(name, **kwargs):
        model = real(name, **kwargs)
        model.register_forward_hook(lambda *_: ran.append((name, threading.current_thread().name)))
        return model

    monkeypatch.setattr(gan, "load_generator", loading)
    handlers.warm_models()
    offline = [n for n in pickers.noise_models() if pickers.availability(n) == "offline"]
    assert [name for name, _ in ran] == handlers.offline_noise_models() and sorted(offline) == sorted(
        name for name, _ in ran) and ran[0][0] == handlers.default_model("noise"), ran
    assert all(thread.startswith(serving.COMPUTE_THREAD_NAME) for _, thread in ran), ran
    for name in offline:
        served = serving.serving_generator(name, None)
        assert not served.choices and not served._pending, name  # nothing measured yet
    # on ZeroGPU a GPU is attached only inside a call: the models are loaded, and no image is made before one
    gan.clear_serving_cache()
    ran.clear()
    monkeypatch.setattr(zerogpu, "on_gpu", lambda fn, *args, **kwargs: fn(*args, **kwargs))
    assert zerogpu.active()
    handlers.warm_models()
    assert not ran and all(gan.is_served(name) for name in offline)
    gan.clear_serving_cache()


def test_the_app_prepares_every_offline_noise_model_at_launch(monkeypatch, tmp_path):
    """What `python app.py` starts beside the server: each noise model with weights here is loaded, the
    default first, and its serving path chosen in the background, so no first click waits for either."""
    from forger_app import handlers
    from gan import serving

    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "cache"))
    gan.clear_serving_cache()
    order = []
    real = gan.prepare
    monkeypatch.setattr(gan, "prepare", lambda name, **kw: (order.append(name), real(name, **kw)))
    handlers.prepare_models()
    offline = [n for n in pickers.noise_models() if pickers.availability(n) == "offline"]
    assert order[0] == handlers.default_model("noise") and sorted(order) == sorted(offline)
    assert serving.wait_for_background(300)
    for name in offline:
        assert gan.is_served(name) and serving.serving_generator(name, None).choices, name
    gan.clear_serving_cache()
