"""Share links and the latent as a file (forger_app/links.py, forger_app/latents.py), through the app's own
functions: every value of a link is hostile and is ignored, with a plain note, when it fails its check; a link
restores the settings and the image gan.sample gives for them; a latent downloaded then uploaded draws the same
image, and ``python -m gan sample --latent`` reads the download as ``project`` writes one; hostile .npy and .json
uploads get a message. The browser side (a link opened, "Copy link", the image sliders) is test_browser_links.py.

Images are compared with serving pinned to eager fp32 (``FORGER_PRECISION=fp32``): the exact promise of
docs/testing.md, the same latent on the same path gives the same pixels."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from test_app import _upload

import app
import gan
from forger_app import boundary, display, downloads, latents, links, sampling
from forger_app.sampling import MAX_SLIDERS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")  # gr.Warning outside a request

DIGITS = "mnist-dcgan"  # conditional, GANSpace sliders
FACES = "dcgan-faces"  # unconditional
UNCLEAR = re.compile(r"Traceback|Error\b|object has no attribute|invalid literal|could not convert|"
                     r"/(tmp|work|home|etc)/|magic string|allow_pickle|Object arrays|cannot reshape|descr|Expecting",
                     re.IGNORECASE)  # Python's and numpy's own words, a server path


@pytest.fixture(autouse=True)
def fp32(monkeypatch, tmp_path):
    monkeypatch.setenv("FORGER_PRECISION", "fp32")
    monkeypatch.setenv("FORGER_APP_RUNS", str(tmp_path / "runs"))


def _pixels(img: Image.Image, side: int | None = None) -> np.ndarray:
    """The image's own pixels (a display copy shrunk back to the model's size)."""
    if side is not None:
        img = display.shrink_enlarged(img, side)
    return np.asarray(img, dtype=np.int16)


def _request(**params: str) -> gr.Request:
    return gr.Request(query_params=params)  # as Gradio's queue hands a request over to an event


def _edits(*values: float) -> list[float]:
    return [*values, *[0.0] * (MAX_SLIDERS - len(values))]


# ---------------------------------------------------------------------------- links


def test_the_links_bounds_are_the_tabs_own_controls():
    """A value inside a link's bounds is one the page's controls hold (else the boundary would refuse it on the
    next event); the tabs' keys are their controls, in order."""
    assert (app.sample["truncation"].minimum, app.sample["truncation"].maximum) == links.TRUNCATION
    assert all((s.minimum, s.maximum) == links.EDIT for s in app.sample["sliders"])
    assert len(app.sample["sliders"]) == MAX_SLIDERS
    assert (app.interp["frames"].minimum, app.interp["frames"].maximum) == links.FRAMES
    assert [v for _, v in app.interp["mode"].choices] == list(links.MODES)
    assert set(links.INTERPOLATE_KEYS[1:]) <= set(app.interp)


def test_a_page_without_a_link_changes_nothing():
    for params in ({}, {"__theme": "dark"}, {"view": "api"}):
        assert links.parse(params) is None
        out = links.open_sample_link(_request(**params), DIGITS, 0, 1.0, 0, *_edits(), None)
        assert len(out) == 4 + MAX_SLIDERS + 4 and all(o == gr.skip() for o in out)
        out = links.open_interpolate_link(_request(**params), DIGITS, 1, 2, 0, 1, 10, "slerp", None)
        assert len(out) == 12 and all(o == gr.skip() for o in out)
    assert links.open_sample_link(None, DIGITS, 0, 1.0, 0, *_edits(), None)[0] == gr.skip()  # an API call


HOSTILE = [
    ({"model": "<script>alert(1)</script>"}, "model"),
    ({"model": "cyclegan-horse2zebra"}, "model"),  # registered, but a translator
    ({"model": "mnist-dcgan "}, None),  # spaces around a value are not part of it
    ({"seed": "-1"}, "seed"), ({"seed": "3.5"}, "seed"), ({"seed": "1e3"}, "seed"), ({"seed": "abc"}, "seed"),
    ({"seed": str(2**32)}, "seed"), ({"seed": "٣"}, "seed"), ({"seed": ""}, "seed"), ({"seed": "9" * 700}, "seed"),
    ({"truncation": "nan"}, "truncation"), ({"truncation": "inf"}, "truncation"), ({"truncation": "-0.1"}, "truncation"),
    ({"truncation": "2.01"}, "truncation"), ({"truncation": "1_0"}, "truncation"), ({"truncation": "0x1"}, "truncation"),
    ({"digit": "10"}, "digit"), ({"digit": "-1"}, "digit"), ({"digit": "7.0"}, "digit"),
    ({"sliders": "nan"}, "sliders"), ({"sliders": "1e309"}, "sliders"), ({"sliders": "0,,1"}, "sliders"),
    ({"sliders": "3.5"}, "sliders"), ({"sliders": ",".join(["0"] * 33)}, "sliders"),
    ({"sliders": ",".join(["0.1"] * 11)}, "sliders"),  # the model shows 10 sliders
    ({"tab": "train"}, "tab"),
    ({"tab": "interpolate", "seed_a": "x"}, "seed_a"), ({"tab": "interpolate", "frames": "33"}, "frames"),
    ({"tab": "interpolate", "frames": "1"}, "frames"), ({"tab": "interpolate", "mode": "zigzag"}, "mode"),
    ({"tab": "interpolate", "digit_b": "99"}, "digit_b"),
]


@pytest.mark.parametrize(("params", "key"), HOSTILE, ids=[str(p)[:60] for p, _ in HOSTILE])
def test_a_hostile_link_value_is_ignored_with_a_plain_note(params, key):
    link = links.parse(params, default_model=DIGITS)
    assert link is not None
    if key is None:
        assert not link.notes
        return
    assert link.model in gan.list_models(task="noise")
    if key != "model" and key != "tab":
        assert getattr(link, key) is None
    assert len(link.notes) == 1 and f"`{key}`" in link.notes[0] and "ignored" in link.notes[0]
    hostile = [v for v in params.values() if len(v) > 2]
    assert not any(v in link.note() for v in hostile)  # the note names the parameter, never echoes its value
    assert not UNCLEAR.search(link.note())


def test_a_digit_for_a_model_without_classes_is_dropped_silently():
    """"Copy link" writes the digit picker's value whatever the model: a faces link carries digit=0."""
    link = links.parse({"model": FACES, "digit": "0", "tab": "interpolate", "digit_a": "3"})
    assert link.model == FACES and link.digit is None and link.digit_a is None and not link.notes


def test_a_link_built_by_query_reads_back_as_the_same_settings():
    q = links.query("sample", model=DIGITS, seed=3, truncation=0.8, digit=7,
                    sliders=[0, 0.5, 0.15000000000000002, -2.95, 0, 0])
    assert ",0.15000000000000002,-2.95" in q and q.count(",") == 3  # trailing zeros dropped, floats exact
    link = links.parse(dict(parse_qsl(urlsplit(q).query)))
    assert (link.tab, link.model, link.seed, link.truncation, link.digit) == ("sample", DIGITS, 3, 0.8, 7)
    assert link.sliders == _edits(0, 0.5, 0.15000000000000002, -2.95) and not link.notes


def test_a_sample_link_restores_its_settings_and_the_image_gan_sample_gives():
    params = dict(tab="sample", model=DIGITS, seed="3", digit="7", truncation="0.8", sliders="0,0.5,-1.25")
    out = links.open_sample_link(_request(**params), FACES, 0, 1.0, 0, *_edits(2.0), None)  # the page: faces
    model, seed, truncation, digit, *rest = out
    sliders, (image, png, status, sketch) = rest[:MAX_SLIDERS], rest[MAX_SLIDERS:]
    assert sketch["visible"] is True  # a digit model: "…or draw a digit"
    assert model["value"] == DIGITS and seed == 3 and truncation == 0.8
    assert digit["value"] == 7 and digit["visible"] and len(digit["choices"]) == 10
    assert [s["value"] for s in sliders] == _edits(0, 0.5, -1.25)
    assert [s["visible"] for s in sliders] == [True] * 10 + [False] * (MAX_SLIDERS - 10)
    expected = gan.sample(DIGITS, seed=3, truncation=0.8, label=7, edits=_edits(0, 0.5, -1.25)[:10])[0]
    assert (_pixels(image, 28) == _pixels(expected)).all()
    assert (_pixels(Image.open(png)) == _pixels(expected)).all()
    assert "From the link" not in status  # every value was used

    # a hostile value beside good ones: the good ones are used, the bad one is said
    out = links.open_sample_link(_request(model=FACES, seed="5", truncation="nan"), DIGITS, 0, 0.7, 4, *_edits(),
                                 None)
    assert out[0]["value"] == FACES and out[1] == 5 and out[2] == 0.7 and not out[3]["visible"]
    expected = gan.sample(FACES, seed=5, truncation=0.7)[0]
    assert (_pixels(out[-4], 64) == _pixels(expected)).all()
    assert "`truncation` must be a number from 0 to 2; ignored." in out[-2]
    assert out[-1]["visible"] == "hidden"  # a face model is not invited to draw a digit


def test_an_interpolate_link_opens_its_tab_with_the_animation_gan_interpolate_gives():
    params = dict(tab="interpolate", model=DIGITS, seed_a="4", seed_b="9", digit_a="3", digit_b="8", frames="5",
                  mode="lerp")
    tabs, model, seed_a, seed_b, digit_a, digit_b, frames, mode, strip, gif, gif_file, status = \
        links.open_interpolate_link(_request(**params), FACES, 1, 2, 0, 1, 10, "slerp", None)
    assert tabs.selected == "interpolate" and model["value"] == DIGITS
    assert (seed_a, seed_b, digit_a["value"], digit_b["value"], frames, mode) == (4, 9, 3, 8, 5, "lerp")
    frames_ = gan.interpolate(DIGITS, 4, 9, steps=5, mode="lerp", label_a=3, label_b=8)
    expected = display.enlarge(display.make_grid(frames_, columns=5), 128 * 5)
    assert (_pixels(strip) == _pixels(expected)).all()
    assert Image.open(gif_file).n_frames == 2 * 5 - 2 and "From the link" not in status


# ---------------------------------------------------------------------------- the latent as a file


def _download(model: str, seed: int, truncation: float, digit: int | None, edits: list[float], start=None) -> list:
    files, status = latents.latent_download(model, seed, truncation, digit, *edits, None, start)
    assert status == gr.skip(), status
    return files


def _upload_latent(files: list, model: str, seed: int, digit: int | None = 0) -> tuple:
    return latents.latent_upload([_upload(f) for f in files], model, seed, digit, None)


@pytest.mark.parametrize(("model", "digit"), [(DIGITS, 7), (FACES, None)])
def test_the_latent_downloaded_then_uploaded_draws_the_same_image(model, digit):
    edits = _edits(0.5, -1.25, 0, 2.5)
    image, png, _ = app.sample_image(model, 3, 0.8, digit, *edits, None, None)
    files = _download(model, 3, 0.8, digit, edits)
    assert [Path(f).suffix for f in files] == [".npy", ".json"] and Path(files[0]).stem == Path(files[1]).stem
    meta = json.loads(Path(files[1]).read_text())
    assert meta["model"] == model and meta["label"] == digit
    assert np.load(files[0]).shape == (gan.registry.get_spec(model).latent_dim,)

    start, truncation, digit_update, *rest = _upload_latent(files, model, 3, 0)  # the digit picker on 0
    sliders, (shown, shown_png, status) = rest[:MAX_SLIDERS], rest[MAX_SLIDERS:]
    assert isinstance(start, sampling.Start) and truncation == 1.0 and sliders == [0.0] * MAX_SLIDERS
    assert digit_update == (gr.update(value=7) if digit is not None else gr.skip())
    assert (_pixels(Image.open(shown_png)) == _pixels(Image.open(png))).all()
    assert (_pixels(shown) == _pixels(image)).all() and "your latent" in status

    # the sliders then move the uploaded latent: it stays the start while the model and seed stay
    moved, _, status = app.sample_image(model, 3, 1.0, digit, *_edits(1.0), None, start)
    assert "your latent" in status and (_pixels(moved) != _pixels(image)).any()
    # and the latent of that (a start, moved by a slider) round-trips too
    files = _download(model, 3, 1.0, digit, _edits(1.0), start)
    again = _upload_latent(files, model, 3, digit)
    assert (_pixels(again[-3]) == _pixels(moved)).all()


def test_python_m_gan_sample_draws_the_downloaded_latent_as_project_writes_one(tmp_path):
    """The download is a latent .npy with a .json beside it, as ``python -m gan project`` writes: the CLI reads
    its digit from the .json and draws the image the app showed (both eager fp32, one process)."""
    from gan.__main__ import main

    edits = _edits(-0.5, 1.5)
    files = _download(DIGITS, 11, 0.6, 4, edits)
    for f in files:
        (tmp_path / Path(f).name).write_bytes(Path(f).read_bytes())
    out = tmp_path / "again.png"
    assert main(["sample", DIGITS, "--latent", str(tmp_path / Path(files[0]).name), "-o", str(out),
                 "--precision", "fp32"]) == 0
    expected = gan.sample(DIGITS, seed=11, truncation=0.6, label=4, edits=edits[:10], precision="fp32")[0]
    assert (_pixels(Image.open(out)) == _pixels(expected)).all()  # a grid of one image: the image


def _npy(tmp_path: Path, name: str, array: np.ndarray | None = None, raw: bytes | None = None) -> str:
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        np.save(path, array, allow_pickle=True)
    return str(path)


def _header(shape: tuple, descr: str = "<f4", version: bytes = b"\x01\x00") -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text


def _bad_uploads(tmp_path: Path) -> list[tuple[list[str], str]]:
    """(files, words of the message) for uploads that must be refused."""
    good = np.zeros(100, np.float32)
    meta = tmp_path / "meta"
    meta.mkdir()

    def raw(name: str, content: bytes) -> str:
        (meta / name).write_bytes(content)
        return str(meta / name)

    def js(name: str, text: str) -> str:
        return raw(name, text.encode())

    npy = _npy(tmp_path, "good.npy", good)
    return [
        ([_npy(tmp_path, "objects.npy", np.array([{"a": 1}] * 100, dtype=object))], "not objects"),
        ([_npy(tmp_path, "claims.npy", raw=_header((10**12,)) + b"\0" * 400)], "must hold 100 numbers"),
        ([_npy(tmp_path, "short.npy", raw=_header((100,)) + b"\0" * 40)], "ends before"),
        ([_npy(tmp_path, "v3.npy", raw=_header((100,), version=b"\x03\x00") + b"\0" * 400)], "not a .npy latent"),
        ([_npy(tmp_path, "shape.npy", np.zeros((2, 100), np.float32))], "shaped (2, 100)"),
        ([_npy(tmp_path, "small.npy", np.zeros(10, np.float32))], "must hold 100 numbers"),
        ([_npy(tmp_path, "complex.npy", np.zeros(100, np.complex64))], "complex64"),
        ([_npy(tmp_path, "bools.npy", np.zeros(100, bool))], "bool"),
        ([_npy(tmp_path, "nan.npy", np.full(100, np.nan, np.float32))], "finite"),
        ([_npy(tmp_path, "huge.npy", np.full(100, 1e6, np.float32))], "finite and at most"),
        ([_npy(tmp_path, "big.npy", raw=b"\0" * (latents.MAX_NPY_BYTES + 1))], "bytes"),
        ([_npy(tmp_path, "png.npy", raw=(Path(app.EXAMPLES) / "mnist_3.png").read_bytes())], "not a .npy latent"),
        ([_npy(tmp_path, "empty.npy", raw=b"")], "not a .npy latent"),
        ([npy, js("deep.json", "[" * 10_000)], "not readable JSON"),
        ([npy, js("list.json", "[1, 2]")], "must hold an object"),
        ([npy, js("label.json", '{"label": 12}')], "label must be a whole number from 0 to 9"),
        ([npy, js("bool.json", '{"label": true}')], "label must be a whole number"),
        ([npy, js("text.json", '{"label": "3"}')], "label must be a whole number"),
        ([npy, raw("bytes.json", b'\xff\xfe{"label": 1}')], "not readable JSON"),
        ([npy, npy], "upload a latent .npy"),
        ([npy, js("a.json", "{}"), js("b.json", "{}")], "upload a latent .npy"),
        ([js("only.json", '{"label": 1}')], "upload a latent .npy"),
        ([str(Path(app.EXAMPLES) / "mnist_3.png")], "upload a latent .npy"),
        ([], "upload a latent .npy"),
    ]


def test_a_hostile_latent_upload_gets_a_message_and_changes_nothing(tmp_path):
    for files, words in _bad_uploads(tmp_path):
        out = latents.latent_upload([_upload(f) for f in files], DIGITS, 0, 0, None)
        start, status = out[0], out[-1]
        assert start == gr.skip() and all(o == gr.skip() for o in out[:-1]), files
        assert status.startswith("⚠️") and words in status, (files, status)
        assert not UNCLEAR.search(status), (files, status)
    out = latents.latent_upload(None, DIGITS, 0, 0, None)
    assert "upload a latent .npy" in out[-1]


def test_only_uploads_are_read_and_their_paths_never_shown(tmp_path):
    npy = _npy(tmp_path, "z.npy", np.zeros(100, np.float32))  # outside Gradio's upload folder
    for files in ([npy], ["/etc/hostname"], [{"path": "/etc/passwd"}]):
        status = latents.latent_upload(files, DIGITS, 0, 0, None)[-1]
        assert "not uploaded to this app" in status and str(tmp_path) not in status and "/etc" not in status


def test_a_latent_from_another_model_or_without_its_json_is_drawn_with_a_note():
    files = _download(FACES, 2, 1.0, None, _edits())
    status = _upload_latent(files, DIGITS, 0, 5)[-1]  # both take 100 numbers
    assert f"saved from **{FACES}**" in status and "No .json" not in status
    out = _upload_latent(files[:1], DIGITS, 0, 5)
    assert out[2] == gr.skip() and "No .json came with the .npy" in out[-1]  # drawn as the digit picked (5)
    expected = gan.sample(DIGITS, z=np.load(files[0])[None], label=5)[0]
    assert (_pixels(out[-3], 28) == _pixels(expected)).all()


def test_a_multiple_file_box_takes_a_list_of_uploads_at_the_boundary(tmp_path):
    box = gr.File(file_count="multiple", label="Upload a latent")
    up = {"path": str(_upload(_npy(tmp_path, "z.npy", np.zeros(100, np.float32)))), "meta": {"_type": "gradio.FileData"}}
    assert boundary.check(box, [up]) == [up] and boundary.check(box, None) is None
    for value in (up, "", [1, 2], ["a"], [{"path": "/etc/hostname"}], [up] * (boundary.MAX_FILES + 1)):
        with pytest.raises(boundary.Refused) as e:
            boundary.check(box, value)
        assert "Upload a latent" in e.value.message and "/etc" not in e.value.message
    slider = gr.ImageSlider(label="Output")
    assert boundary.check(slider, [None, up]) == [None, up]
    for value in ([up], [up, up, up], "x", [1, None]):
        with pytest.raises(boundary.Refused):
            boundary.check(slider, value)


def test_old_latent_folders_are_pruned_with_the_other_downloads():
    folder = downloads.output_folder("forger-latent-")
    (folder / "z.npy").write_bytes(b"0")
    old = time.time() - 7200
    os.utime(folder, (old, old))
    downloads._last_prune = 0.0
    downloads.output_path(".png")
    assert not folder.exists()


def test_the_image_sliders_show_an_input_beside_its_output_at_the_same_size():
    before, after = display.before_after(Image.new("RGBA", (300, 200), (0, 0, 0, 0)), Image.new("RGB", (512, 341)))
    assert before.size == after.size == (512, 341) and before.mode == "RGB"
    assert before.getpixel((10, 10)) == (255, 255, 255)  # transparency on white, as the models see it
    before, _ = display.before_after(Image.new("I;16", (28, 28), 65535), Image.new("L", (252, 252)))
    assert before.mode == "L" and before.size == (252, 252) and before.getpixel((0, 0)) == 255
