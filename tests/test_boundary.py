"""The app's boundary, driven from the running app's own API description (``/gradio_api/info``): every
parameter of every endpoint is sent values of the wrong type or shape over real HTTP to a real server, and
each answer must be a message that says what is wanted: never Python's own text, a traceback, a server
path or an empty (null) error, and never a traceback in the server's log, which gets one line per refusal.

Then the messages that used to be unclear: float TIFFs with no usable values, zip entries that cannot be
extracted, a config nested too deeply."""
from __future__ import annotations

import io
import json
import logging
import re
import socket
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import app
import gan
from forger_app import sampling, uploads, zips

# the handlers toast their messages with gr.Warning, which outside a request is a UserWarning
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")

NAN, INF = float("nan"), float("inf")
# Python's own words, and what a server path looks like: none of it may reach a client
UNCLEAR = re.compile(r"Traceback|object has no attribute|not '(list|dict|str|NoneType)'|argument must be|"
                     r"object is not|unhashable|invalid literal|Error:|ValidationError|pydantic|"
                     r"/(tmp|work|home|root|usr|etc|proc|var)/|site-packages|maximum recursion")
WANTED = re.compile(r"must be|must hold|choose|upload|draw|give|takes|not uploaded|is gone")
STRANGE_FILES = ["", 123, ["a"], {"a": 1}, {"path": 5}, {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}},
                 {"path": "/etc/hostname"}]
# what each kind of parameter is sent, besides [1, 2] and {"a": 1} for all of them
WRONG = {"integer": ["abc", NAN, INF, True, 1.5], "number": ["abc", NAN, -INF, True],
         "string": [123, 4.5, True], "boolean": ["abc", 1], "object": STRANGE_FILES}
# the page's values, but cheap where a call gets past the boundary: few frames, images and rounds, and a
# training run that ends at once ("give a number of steps or of minutes")
BASE = {"/train": {"minutes": 0}, "/variations": {"n": 4}, "/interpolate": {"frames": 2}, "/game_start": {"rounds": 1}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("app-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGER_APP_RUNS", str(runs))
        port = _free_port()
        app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
        yield f"http://127.0.0.1:{port}"
        app.demo.close()


def _call(server: str, api: str, data: list, client: httpx.Client | None = None) -> tuple[str, object]:
    """One raw call of /gradio_api/call/<api> as a hostile client writes it (NaN and infinities as JSON
    allows them): (the last event's kind, its data)."""
    http = client or httpx.Client(timeout=60)
    base = f"{server}/gradio_api/call/{api.strip('/')}"
    body = json.dumps({"data": data}, allow_nan=True)
    event = http.post(base, content=body, headers={"content-type": "application/json"}).json()["event_id"]
    with http.stream("GET", f"{base}/{event}") as response:
        lines = list(response.iter_lines())
    kinds = [line[6:].strip() for line in lines if line.startswith("event:")]
    datas = [line[5:].strip() for line in lines if line.startswith("data:")]
    return kinds[-1], json.loads(datas[-1])


def _texts(value: object) -> list[str]:
    """Every string of an answer except the files it returns (those carry the server's own file paths)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if "path" in value and "url" in value:
            return []
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


def _error(kind: str, data: object) -> str | None:
    """The message of an error answer (None when the answer is not an error)."""
    if kind != "error":
        return None
    return data.get("error") if isinstance(data, dict) else data


def _info(server: str) -> dict:
    return httpx.get(f"{server}/gradio_api/info", timeout=30).json()["named_endpoints"]


def _base(api: str, params: list[dict]) -> list:
    """The values the page would send: each parameter's default, None where it has none."""
    values = [p.get("parameter_default") if p.get("parameter_has_default") else None for p in params]
    for name, value in BASE.get(api, {}).items():
        values[[p["parameter_name"] for p in params].index(name)] = value
    return values


def _cases(info: dict) -> list[tuple[str, list, str, object, bool]]:
    """(endpoint, data, parameter, wrong value, must be refused) for every parameter of every endpoint.

    Every parameter gets None (which may be accepted: an empty box) and the wrong values of its kind; of a
    run of like parameters (a tab's 32 latent sliders) the first gets them all and the others one each."""
    cases = []
    for api, endpoint in sorted(info.items()):
        params = endpoint["parameters"]
        base = _base(api, params)
        seen: dict[tuple, int] = {}
        for i, p in enumerate(params):
            kind = p["type"].get("type", "object")
            wrong = [[1, 2], {"a": 1}, *WRONG.get(kind, STRANGE_FILES)]
            if p["component"] == "Imageeditor":
                wrong += [{"composite": 123}, {"composite": "abc"}, {"layers": "abc"},
                          {"composite": {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}}]
            like = (p["component"], kind, re.sub(r"\d+", "#", p["parameter_name"]))
            nth = seen[like] = seen.get(like, -1) + 1
            values = [None, *wrong] if nth == 0 else [wrong[nth % len(wrong)]]
            for value in values:
                data = list(base)
                data[i] = value
                cases.append((api, data, p["parameter_name"], value, value is not None))
    return cases


def _problem(api: str, name: str, value: object, kind: str, data: object, refused: bool) -> str | None:
    """What is wrong with one answer, or None."""
    message = _error(kind, data)
    where = f"{api} {name}={value!r}: {kind} {str(data)[:300]}"
    if kind == "error" and not message:
        return f"an empty error: {where}"
    if refused and kind != "error":
        return f"not refused: {where}"
    if message is not None and not WANTED.search(message):
        return f"does not say what is wanted: {where}"
    for text in _texts(data if kind != "error" else message):
        if UNCLEAR.search(text):
            return f"unclear ({UNCLEAR.search(text).group(0)!r}): {where}"
    return None


def _tracebacks(capfd, caplog) -> int:
    err = capfd.readouterr().err
    return err.count("Traceback (most recent call last)") + sum(1 for r in caplog.records if r.exc_info)


def test_every_parameter_of_every_endpoint_answers_a_wrong_value_with_what_it_wants(server, capfd, caplog):
    """Driven from /gradio_api/info: a new endpoint or parameter is covered the day it is added."""
    caplog.set_level(logging.INFO, logger="forger.app")
    info = _info(server)
    assert {"/sample", "/translate", "/translate_sketch", "/translate_video", "/train", "/push_to_hub",
            "/project", "/game_start"} <= set(info)
    cases = _cases(info)
    capfd.readouterr()

    def run(case):
        api, data = case[:2]
        with httpx.Client(timeout=60) as client:
            kind, answer = _call(server, api, data, client)
        return case, kind, answer

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(run, cases))
    problems = [p for (api, _, name, value, refused), kind, answer in answers
                if (p := _problem(api, name, value, kind, answer, refused))]  # noqa: RUF059 - all used
    assert not problems, f"{len(problems)} of {len(cases)} answers:\n" + "\n".join(problems[:40])
    refusals = sum(kind == "error" for _, kind, _ in answers)
    assert refusals >= sum(case[4] for case in cases)
    assert _tracebacks(capfd, caplog) == 0
    # one line in the log for each refusal, and nothing more of them
    lines = [r for r in caplog.records if r.getMessage().startswith("refused /")]
    assert len(lines) == refusals
    assert all("\n" not in r.getMessage() for r in lines)
    print(f"{len(cases)} calls over {len(info)} endpoints, {refusals} refused", file=sys.stderr)


def test_the_cases_of_the_issue_get_plain_messages(server):
    nothing = [0.0] * sampling.MAX_SLIDERS
    cases = [
        ("sample", ["mnist-dcgan", 1, 1.0, [1, 2], *nothing], "Digit must be one of the listed choices: 0, 1"),
        ("sample", [["mnist-gan"], 1, 1.0, 0, *nothing], "Model must be one of the listed choices: 'mnist-gan'"),
        ("sample", ["mnist-gan", 1.5, 1.0, 0, *nothing], "Seed must be a whole number, got 1.5"),
        ("variations", ["mnist-gan", 1, 1.0, 0, 4.5, *nothing], "How many must be a whole number from 4 to 64, got 4.5"),
        ("train", ["mnist-gan", "mnist-offline", None, None, 1.5, 0, None, None],
         "Steps must be a whole number from 0 to 50000, got 1.5"),
        ("train", ["mnist-gan", "mnist-offline", None, None, 10, 0, 8.5, None], "Batch size must be a whole number, got 8.5"),
        ("game_start", ["mnist-dcgan", 2.5, 0], "Rounds must be a whole number from 1 to 20"),
        ("translate", ["pix2pix-sketch2digit", "", "model", "deterministic", 0], "Input image must be an image uploaded"),
        ("translate", ["pix2pix-sketch2digit", 123, "model", "deterministic", 0], "Input image must be an image uploaded"),
        ("translate", ["pix2pix-sketch2digit", ["a"], "model", "deterministic", 0], "Input image must be an image uploaded"),
        ("translate", ["pix2pix-sketch2digit", None, "model", "deterministic", 1.5],
         "Dropout seed (paper mode) must be a whole number from 0 to 4294967295"),
        ("translate_sketch", ["pix2pix-sketch2digit", {"composite": 123}, "model", "deterministic", 0],
         "The drawing must be a drawing"),
        ("translate_video", ["pix2pix-sketch2digit", {"video": {"path": 1}}, "model", "deterministic", 0],
         "Input video must be a video uploaded"),
        ("interpolate", ["mnist-dcgan", 1, 2, 0, 1, 10, "slerp", None], "this endpoint takes 9 values"),
    ]
    for api, data, words in cases:
        kind, answer = _call(server, api, data)
        assert kind == "error" and words in (_error(kind, answer) or ""), (api, data, answer)


def _upload(server: str, name: str, content: bytes) -> dict:
    """A file uploaded as the page uploads it: its payload."""
    paths = httpx.post(f"{server}/gradio_api/upload", files=[("files", (name, content))], timeout=30).json()
    return {"path": paths[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def test_uploads_that_are_not_what_the_parameter_wants_get_a_message(server):
    text = _upload(server, "notes.png", b"this is not an image")
    kind, answer = _call(server, "translate_sketch", ["pix2pix-sketch2digit", {"composite": text, "layers": [],
                                                                                "background": None},
                                                      "model", "deterministic", 0])
    message = _error(kind, answer)
    assert kind == "error" and message and "The drawing could not be read" in message, answer
    assert not UNCLEAR.search(message)
    for api, data in [("translate_video", ["pix2pix-sketch2digit", text, "model", "deterministic", 0]),
                      ("translate", ["pix2pix-sketch2digit", text, "model", "deterministic", 0]),
                      ("expert_judge", ["mnist-dcgan", text])]:
        kind, answer = _call(server, api, data)
        texts = _texts(answer)
        assert kind == "complete" and any("⚠️" in t for t in texts), (api, answer)
        assert not any(UNCLEAR.search(t) for t in texts), (api, answer)


def test_a_burst_of_refusals_logs_one_line_each_and_no_traceback(server, capfd, caplog):
    """Out-of-range sliders and choices not on the list used to write a full traceback each (177 in 90 s)."""
    caplog.set_level(logging.INFO, logger="forger.app")
    nothing = [0.0] * sampling.MAX_SLIDERS
    calls = [("sample_live", ["mnist-gan", 1, 1.0, 0, 3.5 + i, *nothing[1:]]) for i in range(20)]
    calls += [("sample", ["no-such-model", 1, 1.0, 0, *nothing])] * 20
    calls += [("game_start", ["mnist-dcgan", 99, 0])] * 10 + [("translate", ["x", None, "huge", "fast", -1])] * 10
    capfd.readouterr()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: _call(server, *c), calls))
    assert all(kind == "error" and WANTED.search(_error(kind, a) or "") for kind, a in answers), answers[:3]
    assert _tracebacks(capfd, caplog) == 0
    assert sum(r.getMessage().startswith("refused /") for r in caplog.records) == len(calls)


# ---------------------------------------------------------------------------- messages that say what is wrong


def _tiff(path: Path, value: float) -> Path:
    Image.fromarray(np.full((32, 32), value, dtype=np.float32), "F").save(path, format="TIFF")
    return path


@pytest.mark.parametrize("value, words", [(NAN, "no pixel value that is a number"),
                                          (INF, "no pixel value that is a number"),
                                          (3e38, "pixel values up to 3e+38")])
def test_a_float_image_without_usable_values_says_so(tmp_path, value, words):
    with pytest.raises(ValueError, match=re.escape(words)):  # the library's loading refuses it ...
        gan.load_image(_tiff(tmp_path / "float.tif", value))
    with pytest.raises(ValueError, match=re.escape(words)):  # ... with the check the app runs on uploads
        gan.checks.pixel_values(Image.open(tmp_path / "float.tif"))
    folder = uploads.upload_root() / "forger-tests"
    folder.mkdir(parents=True, exist_ok=True)
    out, status = app.translate_tab("pix2pix-sketch2digit", str(_tiff(folder / f"float-{value}.tif", value)), None)
    assert out is None and words in status and not UNCLEAR.search(status)


def test_a_float_image_in_a_usual_range_still_translates(tmp_path):
    arr = np.zeros((32, 32), dtype=np.float32)
    arr[8:24, 14:18] = 1.0  # a stroke, in [0, 1] as scientific TIFFs store them
    gan.checks.pixel_values(Image.fromarray(arr, "F"))
    arr[0, 0] = NAN  # one NaN among usable values: read as 0
    gan.checks.pixel_values(Image.fromarray(arr, "F"))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buf, format="PNG")
    return buf.getvalue()


def test_a_zip_entry_with_a_name_too_long_for_the_disk_says_so(tmp_path):
    path = _zip(tmp_path / "long.zip", {"digits/" + "a" * 296 + ".png": _png()})  # a 300-character file name
    with pytest.raises(zips.UnsafeZipError, match=re.escape("is too long for a disk (300 bytes; at most 255)")) as e:
        zips.safe_extract_zip(path, tmp_path / "out")
    assert "OSError" not in str(e.value) and not (tmp_path / "out").exists()


def test_an_encrypted_zip_says_so(tmp_path):
    path = _zip(tmp_path / "secret.zip", {"digits/1.png": _png()})
    raw = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" bit of the entry
        at = raw.find(signature)
        raw[at + flag_at] |= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(zips.UnsafeZipError, match=r"encrypted.*without a password") as e:
        zips.safe_extract_zip(path, tmp_path / "out")
    assert "RuntimeError" not in str(e.value)


def test_an_extraction_failure_says_why(tmp_path):
    """An entry that needs a folder where the zip already wrote a file: the disk's own reason, no path."""
    path = _zip(tmp_path / "clash.zip", {"digits": _png(), "digits/1.png": _png()})
    with pytest.raises(zips.UnsafeZipError, match=r"could not extract 'digits/1.png' from the zip: File exists") as e:
        zips.safe_extract_zip(path, tmp_path / "out")
    assert str(tmp_path) not in str(e.value) and not (tmp_path / "out").exists()


def test_a_config_nested_too_deeply_says_so(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(gan.CheckpointMismatchError, match=re.escape("config.json is nested too deeply (100000 levels; at most 64)")) as e:
        gan.weights.read_config(folder)
    assert "recursion" not in str(e.value)
    (folder / "config.json").write_text(json.dumps({"model": "mnist-gan", "generator": {"a": [[[1]]]}}))
    assert gan.weights.read_config(folder)["model"] == "mnist-gan"
    header = b"[" * 50_000 + b"]" * 50_000  # a safetensors file's header, nested as deeply
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)
    with pytest.raises(gan.CheckpointMismatchError, match=re.escape("its header is nested too deeply (50000 levels")):
        gan.weights.safetensors_header(folder / "model.safetensors")
