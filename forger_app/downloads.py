"""Files for download: PNG, looping GIF and weights zip, written to a folder pruned of old files."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from forger_app.sessions import runs_root

_outputs_lock = threading.Lock()
_last_prune = 0.0


def _outputs() -> Path:
    """The folder of downloads; files and folders older than an hour in it are pruned now and then.

    (Gradio copies returned files into its own cache, so these only need to live a short while.)"""
    global _last_prune
    folder = runs_root() / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _outputs_lock:
        if now - _last_prune > 300:
            _last_prune = now
            for old in folder.iterdir():
                try:
                    if now - old.stat().st_mtime > 3600:
                        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
                except OSError:
                    pass
    return folder


def output_path(suffix: str, prefix: str = "forger-") -> Path:
    """A fresh file path for a download."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=_outputs())
    os.close(fd)
    return Path(path)


def output_folder(prefix: str = "forger-") -> Path:
    """A fresh folder for downloads that belong together under names of their own (a latent's .npy and the
    .json beside it)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_outputs()))


def save_png(img: Image.Image, prefix: str = "forger-") -> Path:
    path = output_path(".png", prefix)
    img.save(path, format="PNG")
    return path


def save_gif(frames: Sequence[Image.Image], *, fps: float = 12.0, boomerang: bool = True,
             prefix: str = "forger-interpolation-") -> Path:
    """An endlessly looping GIF of ``frames`` (forth then back when ``boomerang``)."""
    if not frames:
        raise ValueError("no frames")
    seq = list(frames) + (list(frames[-2:0:-1]) if boomerang else [])
    path = output_path(".gif", prefix)
    seq[0].save(path, format="GIF", save_all=True, append_images=seq[1:], duration=max(20, round(1000 / fps)),
                loop=0, disposal=2)
    return path


def zip_folder(folder: Path, prefix: str = "forger-weights-") -> Path:
    """A zip of ``folder``'s files (under a top folder of the same name), for download."""
    folder = Path(folder)
    path = output_path(".zip", prefix + folder.name + "-")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not f.is_symlink():
                zf.write(f, f"{folder.name}/{f.relative_to(folder).as_posix()}")
    return path
