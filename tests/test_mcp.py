"""Agents (MCP): ``python app.py --mcp`` run as a user runs it, and a real MCP client (the ``mcp`` package's
streamable-HTTP client) connected to it. It lists exactly the six tools of ``forger_app/tools.py``, each
described, with its arguments described and typed and no UI plumbing among them; sample, interpolate,
translate, project, judge and list_models answer over MCP, the images as images. An image goes in as a data
URL (Gradio's MCP server uploads it to the app); a URL, a server path, a file that is not an image, one with
too many pixels and a request over the size limit are each refused with a plain message, and the server logs
no traceback.

Images are compared with eager fp32 in this process within the accuracy bound (the "bounded" promise of
docs/testing.md): the app serves the path it chose, which may differ by at most that bound.
"""
from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from mcp import ClientSession  # requirements.txt brings it (gradio[mcp]): an ImportError is a failure, not a skip
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

import gan
from forger_app import display

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
TOOLS = {"sample", "interpolate", "translate", "project", "judge", "list_models"}
NOISE, TRANSLATOR = "mnist-dcgan", "pix2pix-sketch2digit"  # bundled weights, offline
START_S = 240  # the app's start on a busy 2-core machine (torch and Gradio imported, models prepared)
CALL = timedelta(seconds=180)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python app.py --mcp`` on a free port: (base URL, its log file)."""
    folder = tmp_path_factory.mktemp("mcp-app")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               FORGER_APP_RUNS=str(folder / "runs"), GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1")  # the log's lines in the order they were written
    env.pop("FORGER_MCP", None)
    log = folder / "app.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "app.py", "--mcp"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert process.poll() is None, f"the app exited ({process.returncode}):\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/gradio_api/mcp/schema", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no MCP server after {START_S} s:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def _mcp(url: str, work):
    """Run ``await work(session)`` in an initialized MCP session with the app's streamable-HTTP endpoint."""
    async def run():
        async with streamable_http_client(f"{url}/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)
    return asyncio.run(run())


def _call(url: str, tool: str, **arguments):
    return _mcp(url, lambda s: s.call_tool(tool, arguments, read_timeout_seconds=CALL))


def _images(result) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(c.data))) for c in result.content if c.type == "image"]


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def _data_url(image: Image.Image | bytes, mime: str = "image/png") -> str:
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        image = buffer.getvalue()
    return f"data:{mime};base64," + base64.b64encode(image).decode()


def _within_bound(got: Image.Image, want: Image.Image) -> None:
    """The bounded promise: mean 0.5 / max 4 levels of 255 from eager fp32."""
    assert got.size == want.size
    diff = np.abs(np.asarray(got.convert("RGB"), np.int16) - np.asarray(want.convert("RGB"), np.int16))
    assert diff.mean() <= 0.5 and diff.max() <= 4, (diff.mean(), diff.max())


def test_the_app_serves_its_page_only_once_every_offline_noise_model_is_loaded_and_has_made_an_image(server):
    """`python app.py` (here with --mcp, the same start): each noise model with weights here logs that it is
    ready, the default first, before Gradio says where the page is (issue 30: no first click waits for
    torch's import or a load)."""
    from forger_app import handlers

    log = server[1].read_text()
    served_at = log.index("Running on")
    ready = [log.find(f"INFO:forger.app:{name} ready in ") for name in handlers.offline_noise_models()]
    assert all(0 <= at < served_at for at in ready) and ready == sorted(ready), log[:served_at][-3000:]


def test_the_client_lists_exactly_the_six_tools_each_described_with_typed_arguments(server):
    url, _ = server
    tools = {t.name: t for t in _mcp(url, lambda s: s.list_tools()).tools}
    assert set(tools) == TOOLS  # no slider, model picker, session or training event among them
    for name, tool in tools.items():
        assert len(tool.description) > 60, name
        properties = tool.inputSchema.get("properties", {})
        for arg, schema in properties.items():
            assert schema.get("description") and schema.get("type"), (name, arg, schema)
        assert not {"state", "session", "start"} & set(properties), name
    types = {name: {arg: schema["type"] for arg, schema in tool.inputSchema.get("properties", {}).items()}
             for name, tool in tools.items()}
    assert types == {
        "sample": {"model": "string", "seed": "integer", "truncation": "number", "digit": "integer"},
        "interpolate": {"model": "string", "seed_a": "integer", "seed_b": "integer", "frames": "integer",
                        "mode": "string", "digit_a": "integer", "digit_b": "integer"},
        "translate": {"model": "string", "image": "string", "resolution": "string"},
        "project": {"model": "string", "image": "string"},
        "judge": {"model": "string", "image": "string"},
        "list_models": {},
    }
    for name in ("translate", "project", "judge"):  # an image is the one argument without a default
        assert tools[name].inputSchema["required"] == ["image"], name
        assert "data URL" in tools[name].inputSchema["properties"]["image"]["description"], name
    assert set(tools["sample"].inputSchema["properties"]["model"]["enum"]) == set(gan.list_models(task="noise"))
    assert set(tools["translate"].inputSchema["properties"]["model"]["enum"]) == set(gan.list_models(task="translate"))


def test_sample_and_interpolate_come_back_as_images_of_the_seeds_asked_for(server):
    url, _ = server
    result = _call(url, "sample", model=NOISE, seed=3, digit=7)
    assert not result.isError, _text(result)
    (image,) = _images(result)
    _within_bound(image, display.enlarge(gan.sample(NOISE, 3, label=7, precision="fp32")[0]))
    other = _images(_call(url, "sample", model=NOISE, seed=4, digit=7))[0]
    assert np.abs(np.asarray(other, np.int16) - np.asarray(image, np.int16)).mean() > 5  # another seed, another image

    result = _call(url, "interpolate", model=NOISE, seed_a=1, seed_b=2, frames=4, digit_a=3, digit_b=8)
    assert not result.isError, _text(result)
    (strip,) = _images(result)
    frames = gan.interpolate(NOISE, 1, 2, 4, label_a=3, label_b=8, precision="fp32")
    _within_bound(strip, display.make_grid([display.enlarge(f, 128) for f in frames], columns=4))


def test_translate_project_and_judge_take_a_data_url_and_answer(server):
    url, _ = server
    sketch = Image.open(EXAMPLES / "sketch_7.png")
    result = _call(url, "translate", model=TRANSLATOR, image=_data_url(sketch))
    assert not result.isError, _text(result)
    (out,) = _images(result)
    _within_bound(out, display.enlarge(gan.translate(TRANSLATOR, sketch, precision="fp32")))

    digit = Image.open(EXAMPLES / "mnist_3.png")
    result = _call(url, "project", model=NOISE, image=_data_url(digit))
    assert not result.isError, _text(result)
    (pair,) = _images(result)
    assert pair.width == 2 * pair.height or abs(pair.width - 2 * pair.height) < 0.05 * pair.width

    result = _call(url, "judge", model=NOISE, image=_data_url(digit))
    assert not result.isError, _text(result)
    verdict = gan.judge(NOISE, [digit])[0]
    text = _text(result)
    assert f"P(real) = {verdict.probability:.3f}" in text and "Judged as:" in text

    models = json.loads(_text(_call(url, "list_models")))
    assert [m["name"] for m in models] == gan.list_models(task="noise") + gan.list_models(task="translate")
    row = next(m for m in models if m["name"] == NOISE)
    assert row["weights"] == "offline" and {"sample", "judge"} <= set(row["tools"])


def test_images_that_are_not_uploads_or_too_large_are_refused_plainly(server):
    url, log = server
    before = log.read_text().count("Traceback")
    not_png = _data_url(b"just some text, not an image", "text/plain")
    huge = Image.new("1", (10_000, 10_000))  # 100 million pixels, a few kB as a PNG
    cases = {
        "a URL": f"{url}/gradio_api/file={EXAMPLES / 'mnist_3.png'}",
        "a server path": str(EXAMPLES / "mnist_3.png"),
        "not an image": not_png,
        "too many pixels": _data_url(huge),
    }
    for what, image in cases.items():
        result = _call(url, "translate", model=TRANSLATOR, image=image)
        text = _text(result)
        assert result.isError and not _images(result), what
        assert "Traceback" not in text and "site-packages" not in text and "verbose error" not in text, (what, text)
        print(what, "->", text, file=sys.stderr)
    # a request over the mcp package's 4 MiB limit never reaches the app
    with pytest.raises(ExceptionGroup) as refused:
        _call(url, "translate", model=TRANSLATOR, image=_data_url(os.urandom(5 << 20)))
    assert refused.group_contains(httpx.HTTPStatusError, match="413 Request Entity Too Large")
    assert log.read_text().count("Traceback") == before, log.read_text()[-3000:]


def test_with_mcp_2_installed_the_app_says_what_to_install_instead_of_serving_no_mcp(tmp_path):
    """A bare ``pip install mcp`` brings mcp 2, with which Gradio 6 serves no MCP and only prints an error: the
    app stops before launching and says what to install. (mcp 2 as pip would leave it: its metadata first on
    the path; FORGER_MCP=1 asks for MCP as --mcp does.)"""
    info = tmp_path / "mcp-2.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcp\nVersion: 2.3.0\n")
    with socket.socket() as taken:  # were it to launch, it would fail at once on a port in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = dict(os.environ, FORGER_MCP="1", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
                   GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(taken.getsockname()[1]))
        done = subprocess.run([sys.executable, "app.py"], check=False, cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mcp 2.3.0 is installed" in done.stderr and "pip install 'gradio[mcp]>=6,<7'" in done.stderr
    assert "Traceback" not in done.stderr and "Running on" not in done.stdout
