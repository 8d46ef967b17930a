"""Video translation as shipped: the running app (a real Gradio server, driven through gradio_client)
translates an uploaded GIF and an mp4 into an mp4, with only what requirements.txt installs; and a server
without the video packages says what to install, before and after the click, with no traceback in its log.
The browser side (a GIF dropped into the video box) is in tests/test_browser.py."""
from __future__ import annotations

import logging
import socket
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from test_translation import _frames  # the same moving-bar clip as the library's video tests

MODEL = "pix2pix-sketch2digit"  # bundled weights, 32 px: a few frames take a second


@pytest.fixture(scope="module")
def server():
    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


def test_the_running_app_translates_an_uploaded_gif_and_an_mp4(server, tmp_path):
    import imageio.v3 as iio  # requirements.txt brings it: an ImportError here is a failure, not a skip
    from gradio_client import Client, handle_file

    frames = _frames(6)
    frames[0].save(tmp_path / "digits.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    iio.imwrite(tmp_path / "digits.mp4", np.stack([np.asarray(f) for f in frames]), plugin="FFMPEG", fps=10,
                macro_block_size=1)
    client = Client(server, verbose=False)
    for clip in ("digits.gif", "digits.mp4"):
        video, status = client.predict(MODEL, handle_file(str(tmp_path / clip)), "model", "deterministic", 0,
                                       api_name="/translate_video")
        assert "⚠️" not in status and "6 frames translated" in status, (clip, status)
        out = Path(video["video"] if isinstance(video, dict) else video)
        assert out.suffix == ".mp4"
        assert iio.imread(out, plugin="FFMPEG").shape == (6, 64, 96, 3), clip
    # a file of another kind is refused by name, with the kinds the box takes
    (tmp_path / "notes.txt").write_text("not a video")
    video, status = client.predict(MODEL, handle_file(str(tmp_path / "notes.txt")), "model", "deterministic", 0,
                                   api_name="/translate_video")
    assert video is None and "notes.txt is not a video" in status and ".gif" in status
    assert str(tmp_path) not in status


def test_without_the_video_packages_the_app_says_what_to_install_and_logs_no_traceback(tmp_path, monkeypatch,
                                                                                          caplog):
    import shutil

    import app
    from forger_app import uploads

    frames = _frames(3)
    frames[0].save(tmp_path / "digits.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    upload = uploads.upload_root() / "forger-tests" / uuid.uuid4().hex
    upload.mkdir(parents=True)
    shutil.copy(tmp_path / "digits.gif", upload / "digits.gif")
    # the packages made unimportable, as on a server installed without them
    for module in ("imageio", "imageio.v2", "imageio.v3", "imageio_ffmpeg"):
        monkeypatch.setitem(sys.modules, module, None)
    assert uploads.missing_video_packages() == ["imageio", "imageio-ffmpeg"]
    caplog.set_level(logging.INFO)
    out, status = app.translate_video_tab(MODEL, {"path": str(upload / "digits.gif")})
    assert out is None and "pip install imageio imageio-ffmpeg" in status and "requirements.txt" in status
    assert str(upload) not in status and str(uploads.upload_root()) not in status
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
