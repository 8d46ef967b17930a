"""Plain, typed helpers behind the Gradio app (``app.py``); no Gradio in here.

The app builds the UI and wires its events to these functions and to the public API in
``gan``. What lives here is what a web app needs and the core API does not: model
choices with their availability, per-session state (trained models, run folders, the stop
switch of a running training), image grids and GIFs for display and download, the safe
extraction of uploaded zips, and turning uploads of any kind into PIL images with a clear
error.

Sessions never share anything mutable: each browser session (and each gradio_client
``Client``) gets its own ``Session``, with its own run folder under ``runs_root()`` and its
own table of trained models. A model key that is not a registered name and not one of the
session's own runs is refused.
"""
from __future__ import annotations

import logging
import os
import random
import re
import shutil
import stat
import tempfile
import threading
import time
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import numpy as np
from PIL import Image

import gan
import gan.data
from gan.registry import ModelSpec, get_spec

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SLIDERS = 32  # the app creates this many latent sliders and shows the ones a model uses
GANSPACE_K = 10  # GANSpace directions shown for large latents (gan.sample's ``edits`` use this many)
DISPLAY_SIDE = 256  # small images are enlarged (nearest neighbour) to at least this for display
SKETCH_SIDE = 280  # the sketchpads' canvas: a digit drawn by hand (10x MNIST's 28)
MAX_ZIP_FILES = 20_000  # an uploaded dataset zip may hold at most this many entries
MAX_ZIP_BYTES = 256 << 20  # ... and at most this many bytes once extracted (256 MiB)
MAX_EXTRACTED_BYTES = 1 << 30  # all sessions' extracted datasets together (1 GiB)
MAX_ZIP_RATIO = 100  # an entry that inflates more than 100:1 is not image data (a zip bomb)
SESSION_TTL_S = 6 * 3600  # a session's folder left untouched this long is deleted (API clients never close)
MIN_FREE_BYTES = 1 << 30  # extraction also leaves at least this much disk free
MAX_NAME_BYTES = 255  # one part of an extracted file's path (what Linux, macOS and Windows disks hold)
MAX_RUNS_PER_SESSION = 4  # older runs (and their weights) are deleted past this
MAX_SESSION_RUNS_BYTES = 256 << 20  # one session's training runs on disk (a short run of a small model: ~32 MiB)
MAX_RUNS_BYTES = 1 << 30  # all sessions' training runs together; the oldest finished runs go first
RUN_ROOM_BYTES = 64 << 20  # the room a run is given when it starts, under both quotas
RUN_KEY_PREFIX = "run:"


# ---------------------------------------------------------------------------- GPUs on Hugging Face Spaces


def zero_gpu(func: Callable[..., T]) -> Callable[..., T]:
    """``func`` under ``spaces.GPU`` when the ``spaces`` package is importable (Hugging Face ZeroGPU
    hardware attaches a GPU only inside such calls), else ``func`` unchanged."""
    try:
        import spaces
    except ImportError:
        return func
    return spaces.GPU(func)


def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


# Every model call of the app goes through this: on ZeroGPU it runs with a GPU, elsewhere it is a plain call.
# Module level, as ZeroGPU wants its functions decorated at start-up; the arguments are picklable.
on_gpu = zero_gpu(_call)


# ---------------------------------------------------------------------------- models and their availability


def noise_models() -> list[str]:
    return gan.list_models(task="noise")


def translate_models() -> list[str]:
    return gan.list_models(task="translate")


def availability(model: str | ModelSpec) -> str:
    """'offline' (weights here), 'download' (a Hub or URL source will be tried) or 'train' (none anywhere).

    A model already served is 'offline' at once: a slider move probes no weight source."""
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    if gan.is_served(spec.name) or gan.model_info(spec.name)["offline"]:
        return "offline"
    if any(s.kind != "bundled" for s in spec.sources):
        return "download"
    return "train"


VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")  # what the Translate tab's video box takes
# what video translation imports beyond the app's own needs: (module, the package that brings it)
VIDEO_PACKAGES = (("imageio", "imageio"), ("imageio_ffmpeg", "imageio-ffmpeg"))


def missing_video_packages() -> list[str]:
    """The packages video translation needs that are not installed (requirements.txt brings them all)."""
    import importlib

    missing = []
    for module, package in VIDEO_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def video_help(missing: Sequence[str]) -> str:
    """One sentence: what to install for video translation (no server path, no traceback)."""
    return (f"video translation needs {' and '.join(missing)}, which requirements.txt installs: run "
            f"`pip install -r requirements.txt` (or `pip install {' '.join(missing)}`) and restart the app")


def has_sketchpad(name: str | None) -> bool:
    """The model takes a drawing (the registry's ``sketchpad``): the Translate tab shows its sketchpad."""
    try:
        return bool(name) and get_spec(name).sketchpad
    except gan.UnknownModelError:
        return False


def has_modes(model: str | ModelSpec | None) -> bool:
    """The Pix2Pix modes (and their dropout seed) change this model's output: a U-Net has dropout and BatchNorm;
    a CycleGAN has neither, so every mode is the same computation for it."""
    try:
        spec = model if isinstance(model, ModelSpec) else get_spec(model) if model else None
    except gan.UnknownModelError:
        return False
    return spec is not None and spec.family == "pix2pix"


def takes_resolution(model: str | ModelSpec | None) -> bool:
    """The model translates at sizes other than its own: models that frame each input as their training data
    (the registry's ``preprocess.fit``: the digit CycleGANs) translate at model resolution only."""
    try:
        spec = model if isinstance(model, ModelSpec) else get_spec(model) if model else None
    except gan.UnknownModelError:
        return False
    return spec is not None and spec.task == "translate" and not spec.preprocess.fit


def train_start_model() -> str:
    """The model the Train tab opens with: the registry's quick one (a minute shows results), else the first
    that trains on data shipped with the package."""
    specs = gan.registry.list_specs()
    quick = [s.name for s in specs if s.quick_train] + [s.name for s in specs if s.data == "mnist-offline"]
    return quick[0] if quick else gan.list_models()[0]


DOWNLOAD_MARK = "⤓"  # in a model picker: weights not on this machine, downloaded on first use


def can_download(model: str | ModelSpec) -> bool:
    """Whether one of the model's download sources can be reached now. Each host is probed at most once per
    ``gan.weights.REACH_TTL_S`` and for at most ``REACH_TIMEOUT_S`` (1 s), however many models share it."""
    from huggingface_hub import constants

    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    for source in spec.sources:
        if source.kind == "hub" and not gan.weights.hub_offline() and gan.weights.reachable(constants.ENDPOINT):
            return True
        if source.kind == "url" and gan.weights.reachable(source.location):
            return True
    return False


def model_label(name: str) -> str:
    """The dropdown label of a registered model: its name, marked when its weights are not here (the
    picker's info says once what the mark means: ``picker_info``)."""
    state = availability(name)
    if state == "offline":
        return name
    if state == "download":
        return f"{name} {DOWNLOAD_MARK}"
    return f"{name} (no weights — train it)"


def model_choices(task: str, session: Session | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for a model dropdown: every registered model of ``task`` ('noise' or
    'translate'), those whose weights are here first, then the models this session trained."""
    names = noise_models() if task == "noise" else translate_models()
    order = {"offline": 0, "download": 1, "train": 2}
    names = sorted(names, key=lambda n: order[availability(n)])  # stable: the registry's order within a group
    choices = [(model_label(n), n) for n in names]
    if session is not None:
        choices += [(t.label, t.key) for t in session.trained.values() if get_spec(t.name).task == task]
    return choices


TRANSLATE_INFO = "Pix2Pix and CycleGAN models, one entry per direction"


def picker_info(task: str, probe: bool = True) -> str:
    """The model picker's info line: says once, plainly, which models need a download and whether this
    machine can download them now (``probe``: ask the network, at most 1 s per host; else say nothing of it)."""
    base = TRANSLATE_INFO if task == "translate" else "Noise → image models"
    names = noise_models() if task == "noise" else translate_models()
    need = [n for n in names if availability(n) == "download"]
    if not need:
        return base
    n = len(need)
    which = f"{n} model{'s' if n != 1 else ''} marked {DOWNLOAD_MARK}"
    if probe and not any(can_download(name) for name in need):
        return (f"{base}. This machine is offline: the {which} (listed last) need a download and cannot run "
                f"until it is online.")
    return f"{base}. {DOWNLOAD_MARK}: not on this machine yet, downloaded on first use ({which})."


def weights_help(name: str) -> str:
    """Markdown: how to get weights for a model that has none here, the likeliest way first."""
    spec = get_spec(name)
    lines = [f"**Weights not available for `{name}`.** How to get them:"]
    train = (f"- train it in the **Train** tab (they are then selectable here for your session), or run "
             f"`{spec.train_command()}`;")
    downloads = [s.describe() for s in spec.sources if s.kind != "bundled"]
    if downloads:  # a download is the way for the official models: training them needs their dataset
        lines.append("- connect this machine to the internet: the weights are downloaded from "
                     + ", ".join(downloads) + ";")
    lines.append(f"- convert a checkpoint you have: `python -m gan import {name} PATH -o weights/{name}`;")
    lines.append(train.replace("- train it", "- or train it"))
    return "\n".join(lines)


def model_status(model: str | ModelSpec) -> str:
    """Markdown: one line about the model, and where its weights come from."""
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    name = spec.name
    state = availability(spec)
    if state == "offline":
        return f"**{name}**: {spec.description}"
    if state == "download":
        if not can_download(spec):  # said before the click: it cannot run here now
            return (f"**{name}**: {spec.description}  \n{DOWNLOAD_MARK} **Needs a download, and this machine is "
                    f"offline**: it cannot run here until the machine is online. The models listed before the "
                    f"{DOWNLOAD_MARK} ones work offline.\n\n{weights_help(name)}")
        return (f"**{name}**: {spec.description}  \n{DOWNLOAD_MARK} Its weights are not on this machine yet; they "
                f"are downloaded on first use (this can take a while), or see below if that fails.")
    return f"**{name}**: {spec.description}\n\n{weights_help(name)}"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s'\"`:,;()/]+/)+([^\s'\"`:,;()/]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute server path cut to its last part: messages never show server paths."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "(folder)", text)


def sources_tried(error: BaseException) -> list[str]:
    """The sources a ``WeightsUnavailableError`` lists, each as 'where: why' (paths scrubbed)."""
    text = str(error)
    if "Sources tried" not in text:
        return []
    listed = text.split("Sources tried", 1)[1].split("What you can do", 1)[0]
    return [scrub_paths(re.sub(r": \w+Error: ", ": ", line.strip()[2:]))
            for line in listed.splitlines() if line.strip().startswith("- ")]


def short_message(error: BaseException) -> str:
    """One line for a toast: the error's first line of text, paths scrubbed; for missing weights, the
    sources tried, in order, each with why it failed."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip().strip("`")]
    first = scrub_paths(lines[0] if lines else type(error).__name__)
    tried = sources_tried(error)
    if tried:
        head = first.split("Sources tried", 1)[0].strip()
        return (f"{head} Sources tried, in order: " + "; ".join(tried) + ".")[:900]
    return first[:300]


LOAD_WAIT_S = 5.0  # a request waits this long for a model's weights; the download then goes on in the background
_loading: dict[tuple[str, str | None], tuple[threading.Thread, list[BaseException]]] = {}
_loading_lock = threading.Lock()


class StillLoadingError(RuntimeError):
    """A model's weights are still being fetched; the message says to try again shortly."""


def loaded(name: str, weights: Any = None, wait: float | None = None) -> None:
    """Load (name, weights) for serving, waiting at most ``wait`` seconds (default LOAD_WAIT_S).

    Model calls share a few concurrency slots with every user's sliders, so a request must not hold one
    for the length of a download (a Hub that hangs held four users' Translate requests for minutes and
    every slider of every user behind them). The load runs in a background thread, one per model; a
    request that is not answered in ``wait`` seconds gets StillLoadingError; so does, at once, any request
    that comes while the load goes on. A later one finds the model loaded, or its failure (cached with a
    backoff by ``gan``)."""
    if gan._is_served(name, weights):
        return
    key = (name, None if weights is None else str(weights))
    with _loading_lock:
        thread, errors = _loading.get(key, (None, []))
        started = thread is None or not thread.is_alive()
        if started:
            errors = []
            thread = threading.Thread(target=gan._load_recording, args=(name, weights, errors), daemon=True,
                                      name=f"load {name}")
            _loading[key] = (thread, errors)
            thread.start()
    # only the request that started the load waits for it; while it goes on, the others are answered at once
    thread.join((LOAD_WAIT_S if wait is None else wait) if started else 0)
    if thread.is_alive():
        raise StillLoadingError(f"Still fetching the weights of {name}: this can take a minute on a slow "
                                f"connection. Try again shortly; other models work meanwhile.")
    if errors:
        raise errors[0]


def user_message(error: BaseException, name: str | None = None) -> str:
    """Markdown for an error a user can act on; never a traceback, never a server path."""
    if isinstance(error, gan.WeightsUnavailableError) and name is not None:
        try:
            return weights_help(name) + "\n\n<details><summary>Sources tried</summary>\n\n```\n" + \
                scrub_paths(str(error)) + "\n```\n</details>"
        except gan.UnknownModelError:
            pass
    text = scrub_paths(str(error).strip()) or type(error).__name__
    if isinstance(error, gan.WeightsUnavailableError):
        return "**Weights not available.**\n\n```\n" + text + "\n```"
    return f"**{text}**" if "\n" not in text else "```\n" + text + "\n```"


# ---------------------------------------------------------------------------- sessions


def runs_root() -> Path:
    """Where session folders live: FORGER_APP_RUNS, else <tmp>/forger-app-runs."""
    root = Path(os.environ.get("FORGER_APP_RUNS", Path(tempfile.gettempdir()) / "forger-app-runs"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class TrainedModel:
    """Weights one session trained."""

    key: str  # the dropdown value: "run:<hex>"
    name: str  # the registry name the weights belong to
    weights: Path  # the exported weights folder
    label: str  # the dropdown label
    run: Path  # the run folder (checkpoint.pt, samples/, weights/)


@dataclass
class Session:
    """One user's private state: their run folders, trained models and the stop switch of their running training."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    root: Path | None = None
    trained: dict[str, TrainedModel] = field(default_factory=dict)
    runs: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    running: bool = False
    run: Path | None = None  # the folder of the session's latest run (in progress while ``running``)
    removed: dict[str, str] = field(default_factory=dict)  # key -> label of trained models deleted for room

    def __post_init__(self) -> None:
        if self.root is None:
            sweep_sessions()
            self.root = Path(tempfile.mkdtemp(prefix=f"session-{self.id[:8]}-", dir=runs_root()))
        with _runs_lock:
            _live_sessions[self.id] = self

    def __deepcopy__(self, memo: dict) -> Session:
        return self  # a session is shared by reference only within its own browser session

    def new_run_dir(self, model: str) -> tuple[Path, list[str]]:
        """A fresh folder for one run, in progress from now, after room was made for it (``_make_room``): (the
        folder, a line for each older run deleted to make room)."""
        with _runs_lock:
            notes = _make_room(self)
            self.runs += 1
            run = self.root / f"run-{self.runs:03d}-{model}"
            run.mkdir(parents=True, exist_ok=False)
            self.run, self.running = run, True  # in progress from now: no other session's start deletes it
        return run, notes

    def forget_run(self, run: Path) -> None:
        """A run of this session was deleted: its trained models are gone (a later request for one says why)."""
        for key, entry in list(self.trained.items()):
            if entry.run == run:
                self.removed[key] = entry.label
                del self.trained[key]

    def new_data_dir(self) -> Path:
        data = self.root / "data"
        release_extracted(data)  # one uploaded dataset per session at a time
        data.mkdir(parents=True)
        return data

    def drop_data(self) -> None:
        """Delete the session's extracted dataset (after its run, or when the run could not start)."""
        if self.root is not None:
            release_extracted(self.root / "data")

    def add_trained(self, run: Path, weights: Path, steps: int) -> TrainedModel:
        """Register an exported weights folder; returns its entry (its key is the dropdown value)."""
        name = gan.weights.read_config(weights).get("model", weights.name)
        get_spec(name)  # a folder of an unknown model is refused here
        key = RUN_KEY_PREFIX + uuid.uuid4().hex[:12]
        label = f"{name} — trained this session (run {run.name.split('-')[1]}, {steps} steps)"
        entry = TrainedModel(key, name, weights, label, run)
        self.trained[key] = entry
        return entry

    def resolve(self, key: str, task: str | None = None) -> tuple[str, Path | None]:
        """A dropdown value -> (registry name, weights folder or None for the registry's weights)."""
        spec, weights = self.resolve_spec(key, task)
        return spec.name, weights

    def resolve_spec(self, key: str, task: str | None = None) -> tuple[ModelSpec, Path | None]:
        """A dropdown value -> (the model's spec, weights folder or None for the registry's weights).

        Raises ValueError for a key that is neither a registered model of ``task`` nor one of this session's runs.
        """
        if key is not None and not isinstance(key, str):
            raise ValueError("choose a model from the list")
        key = (key or "").strip()
        if key.startswith(RUN_KEY_PREFIX):
            entry = self.trained.get(key)
            if entry is None and key in self.removed:
                raise ValueError(f"your trained model “{self.removed[key]}” was deleted to make room for newer "
                                 f"training runs (the server keeps {MAX_SESSION_RUNS_BYTES >> 20} MiB of runs per "
                                 f"session, {MAX_RUNS_BYTES >> 20} MiB in all); train it again, and download its "
                                 f"weights zip to keep it")
            if entry is None:
                raise ValueError(f"unknown trained model {key!r}: models trained in other sessions, or in a "
                                 f"previous visit, are not available here; train it again in the Train tab")
            name, weights = entry.name, entry.weights
        else:
            name, weights = key, None
        if not name:
            raise ValueError("choose a model first")
        spec = get_spec(name)  # UnknownModelError (a KeyError) with suggestions
        if task is not None and spec.task != task:
            what = "a noise->image model" if task == "noise" else "an image->image (translation) model"
            raise ValueError(f"{name!r} is not {what}")
        return spec, weights

    def close(self) -> None:
        """Stop a running training and delete the session's folders."""
        self.stop.set()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------- the quota of training runs

_live_sessions: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
_runs_lock = threading.RLock()


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (links not followed)."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


@dataclass
class _Run:
    path: Path
    bytes: int
    finished_at: float  # the folder's last change: its export, for a finished run
    owner: Session | None  # the live session it belongs to, if any
    running: bool


def _all_runs() -> list[_Run]:
    """Every run folder of every session under ``runs_root()`` (live ones and those left on disk), oldest first."""
    owners = {s.root: s for s in list(_live_sessions.values()) if s.root is not None}
    runs = []
    for root in (p for p in runs_root().glob("session-*") if p.is_dir()):
        owner = owners.get(root)
        for path in root.glob("run-*"):
            try:
                finished_at = path.stat().st_mtime
            except OSError:
                continue
            running = owner is not None and owner.running and owner.run == path
            runs.append(_Run(path, folder_bytes(path), finished_at, owner, running))
    return sorted(runs, key=lambda r: (r.finished_at, str(r.path)))


def _make_room(session: Session) -> list[str]:
    """Delete the oldest finished runs until ``session`` may start one more: at most MAX_RUNS_PER_SESSION - 1
    of its runs left, and RUN_ROOM_BYTES free under its quota and under the quota of all sessions together.
    Returns a line for each run deleted, for the user who starts the new one; the owner of a deleted run is
    told when they next ask for its model (``Session.resolve_spec``). Called under ``_runs_lock``."""
    runs = _all_runs()
    notes = []

    def delete(run: _Run) -> None:
        shutil.rmtree(run.path, ignore_errors=True)
        runs.remove(run)
        if run.owner is not None:
            run.owner.forget_run(run.path)
        whose = f"your {run.path.name}" if run.owner is session else "an older run of another session"
        notes.append(f"{whose} ({run.bytes / 2**20:.0f} MiB)")
        log.info("deleted run %s (%d bytes) to make room for a new one", run.path.name, run.bytes)

    def own() -> list[_Run]:
        return [r for r in runs if r.path.parent == session.root]

    while own() and (len(own()) >= MAX_RUNS_PER_SESSION or
                     sum(r.bytes for r in own()) + RUN_ROOM_BYTES > MAX_SESSION_RUNS_BYTES):
        finished = [r for r in own() if not r.running]
        if not finished:
            break
        delete(finished[0])
    while sum(r.bytes for r in runs) + RUN_ROOM_BYTES > MAX_RUNS_BYTES:
        finished = [r for r in runs if not r.running]
        if not finished:
            used = sum(r.bytes for r in runs) / 2**20
            raise ValueError(f"the server holds {used:.0f} MiB of training runs in progress; try again when "
                             f"they finish")
        delete(finished[0])
    return notes


def sweep_sessions(ttl: float = SESSION_TTL_S) -> list[Path]:
    """Delete session folders untouched for ``ttl`` seconds whose session is not training; returns them."""
    with _running_lock:
        busy = {s.root for s in _running.values() if s.running}
    cutoff = time.time() - ttl
    gone = []
    for folder in runs_root().glob("session-*"):
        try:
            newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
        except OSError:
            continue
        if folder not in busy and newest < cutoff:
            release_extracted(folder / "data")
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def resolve_model(key: str, session: Session | None, task: str | None = None) -> tuple[str, Path | None]:
    """``Session.resolve`` for a session that may not exist yet (no training done)."""
    return (session or _NO_SESSION).resolve(key, task)


def resolve_spec(key: str, session: Session | None, task: str | None = None) -> tuple[ModelSpec, Path | None]:
    """``Session.resolve_spec`` for a session that may not exist yet."""
    return (session or _NO_SESSION).resolve_spec(key, task)


class _EmptySession(Session):
    def __post_init__(self) -> None:  # no folder: it never trains
        pass


_NO_SESSION = _EmptySession(id="none", root=Path(os.devnull))


_running: dict[str, Session] = {}  # browser session hash -> its Session, while it trains
_running_lock = threading.Lock()


def remember_browser_session(session_hash: str | None, session: Session) -> None:
    """Note which Session a browser tab trains in, so that closing the tab can stop the run."""
    if session_hash:
        with _running_lock:
            _running[session_hash] = session


def forget_browser_session(session_hash: str | None) -> None:
    """The tab closed: stop its training (the trainer still saves a checkpoint and exports weights)."""
    if not session_hash:
        return
    with _running_lock:
        session = _running.pop(session_hash, None)
    if session is not None:
        session.stop.set()


def close_session(session: Session | None) -> None:
    """gr.State delete callback and unload handler: stop training, delete the session's files."""
    if isinstance(session, Session) and not isinstance(session, _EmptySession):
        session.close()


# ---------------------------------------------------------------------------- latent sliders


def slider_labels(model: str | ModelSpec) -> list[str]:
    """Labels of the latent sliders a model uses: one per raw dimension for latents of size <= 32,
    else the top GANSPACE_K GANSpace directions."""
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    if spec.task != "noise":
        return []
    if spec.latent_dim <= MAX_SLIDERS:
        return [f"z[{i}]" for i in range(spec.latent_dim)]
    return [f"direction {i + 1} (GANSpace PC{i + 1})" for i in range(min(GANSPACE_K, MAX_SLIDERS))]


def render_sample(model: str | ModelSpec, seed: int, *, truncation: float = 1.0, label: int | None = None,
                  edits: Sequence[float] = (), weights: Path | None = None, n: int = 1,
                  z: Sequence[float] | None = None) -> list[Image.Image]:
    """``n`` images of seed ``seed`` (row 0 is the single image of that seed), with slider edits; with
    ``z`` (a projected latent) its one image instead, scaled by ``truncation`` as a seed's latent is.

    ``edits`` are the slider values; gan.sample adds them along ``gan.slider_directions(name)``
    (the raw dimensions, or the top GANSPACE_K GANSpace directions)."""
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    latents = None if z is None else np.asarray(z, dtype=np.float32)[None] * float(truncation)
    edits = [float(e) for e in edits][: len(slider_labels(spec))]
    if not any(edits):
        edits = None
    if spec.conditional:
        label = 0 if label is None else int(label)
    else:
        label = None
    return on_gpu(gan.sample, spec, seed=int(seed), n=n, z=latents, label=label, truncation=float(truncation),
                  edits=edits, weights=weights)


# ---------------------------------------------------------------------------- projected images


@dataclass(frozen=True)
class Start:
    """A latent projected from the user's own image, which the Sample tab's sliders then edit.

    It holds while the tab shows the model and seed it was projected under: another model or seed leaves it."""

    model_key: str  # the dropdown value it was projected with
    seed: int  # the seed box's value then
    z: tuple[float, ...]  # the latent
    label: int | None  # conditional models: the class found
    psnr: float  # how close the reconstruction came, in dB


def start_for(start: Any, model_key: str, seed: int) -> Start | None:
    """The projected latent to render for (model, seed), or None: render the seed's own latent."""
    if isinstance(start, Start) and start.model_key == model_key and start.seed == seed:
        return start
    return None


def projection_pair(p: gan.Projection) -> Image.Image:
    """The input (as the model sees it) beside its reconstruction, enlarged for display."""
    return enlarge(make_grid([p.target, p.reconstruction], columns=2), 2 * DISPLAY_SIDE)


def projection_text(p: gan.Projection, classes: Sequence[str] = ()) -> str:
    """One line on how faithful a projection is."""
    found = f" It reads as **{classes[p.label]}**." if p.label is not None and classes else ""
    return (f"Projected in {p.seconds:.1f} s: the reconstruction is {p.psnr:.1f} dB from your image "
            f"(PSNR; 25 dB and up is close).{found}")


def progress_adapter(progress: Any) -> Callable[[float, str], None] | None:
    """``gan.project``'s progress callback feeding a ``gr.Progress`` (None: no progress shown)."""
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        progress(fraction, desc=message)
    return report


# ---------------------------------------------------------------------------- images


def enlarge(img: Image.Image, side: int = DISPLAY_SIDE) -> Image.Image:
    """Enlarge a small image by a whole factor (nearest neighbour) so its long side is about ``side``."""
    factor = max(1, round(side / max(img.size)))
    return img if factor == 1 else img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def make_grid(images: Sequence[Image.Image], columns: int | None = None, padding: int = 2,
              background: int = 255) -> Image.Image:
    """Tile equally sized images in rows of ``columns`` (default: about square), with white padding."""
    if not images:
        raise ValueError("no images to put in a grid")
    n = len(images)
    columns = max(1, min(columns or int(np.ceil(np.sqrt(n))), n))
    rows = (n + columns - 1) // columns
    w, h = images[0].size
    mode = "RGB" if any(im.mode != "L" for im in images) else "L"
    fill = background if mode == "L" else (background,) * 3
    sheet = Image.new(mode, (columns * w + (columns + 1) * padding, rows * h + (rows + 1) * padding), fill)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        sheet.paste(im.convert(mode), (padding + c * (w + padding), padding + r * (h + padding)))
    return sheet


_outputs_lock = threading.Lock()
_last_prune = 0.0


def output_path(suffix: str, prefix: str = "forger-") -> Path:
    """A fresh file path for a download; files older than an hour in that folder are pruned now and then.

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
                        old.unlink()
                except OSError:
                    pass
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return Path(path)


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


# ---------------------------------------------------------------------------- uploads


def upload_path(value: Any) -> str | None:
    """The file path inside whatever an upload component hands over: a path, or a Gradio FileData dict."""
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        return str(value) or None
    if isinstance(value, dict):
        return value.get("path") or None
    path = getattr(value, "path", None)  # FileData model, tempfile wrapper
    if path is None:
        path = getattr(value, "name", None)
    return str(path) if path else None


def upload_root() -> Path:
    """The folder Gradio writes every upload into (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    from gradio.utils import get_upload_folder  # the app's own setting: read where Gradio reads it

    return Path(get_upload_folder())


def uploaded_file(value: Any) -> str:
    """The path of an upload, only if it is a regular file inside Gradio's upload folder.

    Events that skip Gradio's preprocessing get the client's payload as it was sent, so a client could
    name any server path; this refuses all but uploads, and the message never shows the path."""
    path = upload_path(value)
    if path is None:
        raise ValueError("no image: upload one, take one with the webcam, or paste one")
    real, root = os.path.realpath(path), os.path.realpath(upload_root())
    if os.path.commonpath([real, root]) != root or real == root:
        raise ValueError("that file was not uploaded to this app: upload the image instead")
    try:
        mode = os.lstat(real).st_mode
    except OSError:
        raise ValueError("the upload is gone (expired or deleted): please upload it again") from None
    if not stat.S_ISREG(mode):
        raise ValueError("the upload is not a regular file")
    return real


def open_upload(value: Any) -> Image.Image:
    """An uploaded image (an upload's path or FileData dict, a PIL image or an array) as a PIL image.

    Raises ValueError with a clear message for no image, a path that is not an upload, a file that is
    not an image, or one too large (``gan.MAX_PIXELS``, checked from the header before decoding)."""
    if value is None or (isinstance(value, (str, dict)) and not upload_path(value)):
        raise ValueError("no image: upload one, take one with the webcam, or paste one")
    img = gan.load_image(value if isinstance(value, (Image.Image, np.ndarray)) else uploaded_file(value))
    gan.checks.pixel_values(img)  # a float TIFF of NaNs would come out blank, without a word
    return img


def blank_sketch() -> Image.Image:
    """A sketchpad's empty canvas, white: with a background, Gradio's editor opens with its brush picked
    (with none, a drag draws nothing until Brush is pressed; docs/notes/sketchpad.md)."""
    return Image.new("RGB", (SKETCH_SIDE, SKETCH_SIDE), "white")


def sketch_image(value: Any) -> Image.Image | None:
    """The drawing of a gr.Sketchpad value (its composite), or None when nothing was drawn."""
    if value is None:
        return None
    if isinstance(value, dict):
        composite = value.get("composite")
        if composite is None:
            return None
        img = composite if isinstance(composite, (Image.Image, np.ndarray)) else upload_path(composite)
        if img is None:
            return None
    else:
        img = value
    img = open_upload(img)
    lo, hi = img.convert("L").getextrema()
    alpha = img.getchannel("A").getextrema() if "A" in img.getbands() else (255, 255)
    if lo == hi and alpha[1] == alpha[0]:
        return None  # an empty canvas
    return img


class UnsafeZipError(ValueError):
    """An uploaded zip that would write outside its folder, or is too large; nothing was extracted."""


def _bad_member_name(name: str) -> str | None:
    """Why a zip member name is unsafe, or None."""
    if not name or "\x00" in name:
        return "an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or PureWindowsPath(name).is_absolute():
        return "an absolute path"
    parts = re.split(r"[\\/]+", name)
    if ".." in parts:
        return "a '..' path component"
    return None


def _short(name: str, keep: int = 60) -> str:
    """A zip entry's name as a message shows it: at most ``keep`` characters."""
    return name if len(name) <= keep else name[: keep // 2] + "…" + name[-keep // 2:]


def check_zip(path: Path, *, max_files: int = MAX_ZIP_FILES, max_bytes: int = MAX_ZIP_BYTES) -> list[zipfile.ZipInfo]:
    """Inspect a zip without extracting anything; raise UnsafeZipError (a ValueError) if it is unsafe.

    Refused: not a zip; absolute names or '..' components (zip-slip); symbolic links; encrypted entries;
    names no disk can hold (a part over MAX_NAME_BYTES); more than ``max_files`` entries; more than
    ``max_bytes`` uncompressed; not enough free disk.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsafeZipError(f"not a readable zip file ({e})") from None
    with zf:
        members = zf.infolist()
    if len(members) > max_files:
        raise UnsafeZipError(f"the zip has {len(members)} entries; the limit is {max_files}")
    total = 0
    for m in members:
        why = _bad_member_name(m.filename)
        if why:
            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} has {why}")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} is a symbolic link")
        if m.flag_bits & 0x1:
            raise UnsafeZipError(f"refusing the zip: entry {_short(m.filename)!r} is encrypted; zip the images "
                                 f"again without a password")
        longest = max(re.split(r"[\\/]+", m.filename), key=lambda part: len(part.encode()))
        if len(longest.encode()) > MAX_NAME_BYTES:
            raise UnsafeZipError(f"refusing the zip: a name in entry {_short(m.filename)!r} is too long for a "
                                 f"disk ({len(longest.encode())} bytes; at most {MAX_NAME_BYTES})")
        if m.file_size > (1 << 20) and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} inflates "
                                 f"{m.file_size / max(m.compress_size, 1):.0f}:1, which is not image data")
        total += m.file_size
    if total > max_bytes:
        raise UnsafeZipError(f"the zip would extract to {total / 2**20:.0f} MiB; the limit is "
                             f"{max_bytes / 2**20:.0f} MiB")
    return members


_extracted: dict[Path, int] = {}  # extracted dataset folder -> the bytes it may hold
_extracted_lock = threading.Lock()


def _reserve_extracted(target: Path, size: int) -> None:
    """Count ``size`` bytes against the quota of all sessions' extracted data, or refuse."""
    with _extracted_lock:
        used = sum(n for p, n in _extracted.items() if p != target)
        if used + size > MAX_EXTRACTED_BYTES:
            raise UnsafeZipError(f"the server holds too many uploaded datasets right now "
                                 f"({used / 2**20:.0f} MiB); try again later or upload a smaller zip")
        _extracted[target] = size


def release_extracted(target: Path) -> None:
    """Delete an extracted dataset folder and return its bytes to the quota."""
    shutil.rmtree(target, ignore_errors=True)
    with _extracted_lock:
        _extracted.pop(target, None)


def safe_extract_zip(path: Path, target: Path, *, max_files: int = MAX_ZIP_FILES,
                     max_bytes: int = MAX_ZIP_BYTES, min_free: int = MIN_FREE_BYTES) -> Path:
    """Extract a dataset zip into ``target`` after ``check_zip`` approved it; returns the data folder
    (the single top folder when the zip has one).

    Every member is written under ``target`` (checked again after resolving), each is copied with
    a byte counter so a member that inflates past its declared size is stopped, and the total is
    capped by ``max_bytes``.
    """
    path, target = Path(path), Path(target)
    members = check_zip(path, max_files=max_files, max_bytes=max_bytes)
    declared = sum(m.file_size for m in members)
    target.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target).free
    if free - declared < min_free:
        raise UnsafeZipError(f"not enough free disk to extract {declared / 2**20:.0f} MiB")
    _reserve_extracted(target, declared)
    root = target.resolve()
    written = 0
    entry = None
    try:
        with zipfile.ZipFile(path) as zf:
            for m in members:
                entry = m.filename
                dest = (root / PurePosixPath(m.filename.replace("\\", "/"))).resolve()
                if dest != root and root not in dest.parents:
                    raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} points outside the folder")
                if m.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(dest, "wb") as out:
                    left = m.file_size
                    while chunk := src.read(1 << 20):
                        left -= len(chunk)
                        written += len(chunk)
                        if left < 0 or written > max_bytes:
                            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} inflates past its "
                                                 f"declared size")
                        out.write(chunk)
    except UnsafeZipError:
        release_extracted(target)
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # corrupt data, bad CRC, a full disk
        release_extracted(target)
        # the reason without the file name the OS adds (a server path): "File exists", "No space left on device"
        why = e.strerror if isinstance(e, OSError) and e.strerror else scrub_paths(str(e)) or type(e).__name__
        where = f"{_short(entry)!r} from the zip" if entry else "the zip"
        raise UnsafeZipError(f"could not extract {where}: {why}") from None
    entries = [p for p in target.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target


# ---------------------------------------------------------------------------- training display


def loss_rows(history: Iterable[tuple[int, dict[str, float]]], max_points: int = 600) -> dict[str, list]:
    """Loss history -> columns for a line plot: step, loss (series name), value; thinned to ``max_points`` steps."""
    history = list(history)
    every = max(1, int(np.ceil(len(history) / max_points)))
    rows: dict[str, list] = {"step": [], "loss": [], "value": []}
    for i, (step, losses) in enumerate(history):
        if i % every and i != len(history) - 1:
            continue
        for k, v in losses.items():
            rows["step"].append(int(step))
            rows["loss"].append(str(k))
            rows["value"].append(float(v))
    return rows


def progress_text(step: int, total: int | None, losses: dict[str, float], seconds: float, *, done: bool = False,
                  budget_s: float | None = None) -> str:
    """'▓▓▓▓░░░░ step 120 / 500 (24%) · 3.1 steps/s · D 0.69 · G 0.71'; with a time budget,
    '▓▓▓▓░░░░ step 120 · 24 s of 60 s (40%) · …': the bar follows whichever limit comes first."""
    fracs = [step / total] if total else []
    if budget_s:
        fracs.append(seconds / budget_s)
    frac = 1.0 if done else min(1.0, max(fracs, default=0.0))
    width = 24
    bar = "█" * round(frac * width) + "░" * (width - round(frac * width))
    rate = f" · {step / seconds:.1f} steps/s" if seconds > 0 and step else ""
    loss = "".join(f" · {k} {v:.3f}" for k, v in losses.items())
    head = "done" if done else "training"
    where = f"step {step} / {total}" if total and (not budget_s or step / total >= seconds / budget_s) else (
        f"step {step} · {seconds:.0f} s of {budget_s:.0f} s")
    return f"`{bar}` **{head}: {where} ({frac:.0%})**{rate}{loss}"


def train_data_choices() -> list[tuple[str, str]]:
    return [
        ("mnist-offline: 2,500 real MNIST digits bundled with the app (no download)", "mnist-offline"),
        ("mnist: torchvision download (60,000 digits)", "mnist"),
        ("cifar10: torchvision download (frogs for cifar10-gan)", "cifar10"),
        ("sketch2digit: drawn outlines of the bundled MNIST digits (Pix2Pix)", "sketch2digit"),
        ("digits2mnist: UCI 8x8 digits and MNIST, unpaired (CycleGAN)", "digits2mnist"),
        ("a folder on this machine", "folder"),
        ("an uploaded zip of images", "zip"),
    ]


def default_train_data(name: str) -> str:
    """The data choice matching a model's registry default."""
    word = (get_spec(name).data.split() or [""])[0]
    return word if word in {v for _, v in train_data_choices()} else "folder"


def train_classes(name: str, data: str) -> list[str] | None:
    """The registry's default classes (e.g. cifar10-gan trains on frogs) when its default dataset is used."""
    words = get_spec(name).data.split()
    if words and words[0] == data and "--classes" in words:
        return words[words.index("--classes") + 1:]
    return None


def data_roots() -> list[Path] | None:
    """The folders training data may be read from: FORGER_DATA_ROOTS (paths separated by ':'), else
    ``./data``; None (any folder) only with FORGER_ANY_FOLDER=1, for local use."""
    roots = [Path(r).expanduser().resolve() for r in os.environ.get("FORGER_DATA_ROOTS", "").split(os.pathsep) if r]
    if roots:
        return roots
    if os.environ.get("FORGER_ANY_FOLDER") == "1" and not os.environ.get("SPACE_ID"):
        return None
    return [Path("data").resolve()]


def data_folder(text: str) -> Path:
    """A folder of training images typed by the user, if this app may read it (``data_roots``).

    Folders are refused outside the allowed roots: they would let anyone make the app read the server's
    files, or other users' uploads in the temp folder. Upload a zip instead."""
    text = (text or "").strip()
    if not text:
        raise ValueError("type the path of a folder of images (or choose another data source)")
    path = Path(text).expanduser().resolve()
    roots = data_roots()
    if roots is not None and not any(path == r or r in path.parents for r in roots):
        shown = ", ".join(str(r.relative_to(Path.cwd())) if r.is_relative_to(Path.cwd()) else r.name for r in roots)
        raise ValueError(f"folders must be under {shown} here (FORGER_DATA_ROOTS; FORGER_ANY_FOLDER=1 allows any "
                         f"folder on your own machine); or upload a zip of images")
    if not path.is_dir():
        raise NotADirectoryError(f"no folder {text!r} on this machine")
    return path


def exported_weights(run: Path) -> list[Path]:
    """The weights folders a run exported (CycleGAN exports both directions)."""
    return sorted(p.parent for p in (Path(run) / "weights").glob("*/model.safetensors"))


# ---------------------------------------------------------------------------- the expert (the discriminator)

GAME_ROUNDS = 5  # images in a game of "Fool the expert"
MAX_GAME_ROUNDS = 20


def has_discriminator(name: str, weights: Path | None = None) -> bool:
    """The model's weights folder (``weights``, else ``weights/<name>``) holds a trained discriminator."""
    return gan.weights.discriminator_file(name, weights).is_file()


def expert_choices(session: Session | None = None, *, game: bool = False) -> list[tuple[str, str]]:
    """(label, value) pairs of the models whose expert can be asked: the registered models with a trained
    discriminator here, then this session's trained ones. ``game``: only those that forge digits (their
    fakes can be mixed with the real held-out MNIST digits that ship with the package)."""
    def fits(spec: ModelSpec) -> bool:
        return not game or (spec.task == "noise" and spec.channels == 1)

    choices = [(n, n) for n in gan.list_models() if has_discriminator(n) and fits(get_spec(n))]
    if session is not None:
        choices += [(t.label, t.key) for t in session.trained.values()
                    if has_discriminator(t.name, t.weights) and fits(get_spec(t.name))]
    return choices


def default_expert(*, game: bool = False) -> str | None:
    """The model the Expert tab opens with: a digit forger first (its verdicts compare with real digits that
    ship with the package), a conditional one before others (it shows its verdict under every class)."""
    names = [v for _, v in expert_choices(game=game)]
    specs = {n: get_spec(n) for n in names}
    ranked = sorted(names, key=lambda n: (specs[n].task != "noise", specs[n].channels != 1, not specs[n].conditional,
                                          not specs[n].featured, names.index(n)))
    return ranked[0] if ranked else None


def expert_classes(spec: ModelSpec) -> int:
    """How many classes the model's discriminator is conditioned on (0: none)."""
    return len(spec.classes) or int(spec.discriminator.get("num_classes", 0) or 0)


def expert_has_heatmap(spec: ModelSpec) -> bool:
    """Translators' discriminators are PatchGANs: their verdict comes with a map of patches."""
    return spec.task == "translate"


def expert_has_sketchpad(spec: ModelSpec | None) -> bool:
    """Digit models (one channel) and those the registry offers a sketchpad for: a drawing can be judged."""
    return spec is not None and (spec.sketchpad or spec.channels == 1)


class NoExpertError(ValueError):
    """A model without a trained discriminator: there is no expert to ask."""


def no_expert_message(spec: ModelSpec) -> str:
    real = "" if spec.evaluation is not None else " and no real images of its kind come with the app"
    return (f"{spec.name} ships without a discriminator (the expert it was trained against){real}; train it in "
            f"the Train tab and its expert will be available here for your session "
            f"(or run: {spec.train_command()})")


def expert_for(key: str, session: Session | None) -> tuple[ModelSpec, Path | None]:
    """A dropdown value -> (spec, weights folder or None), if the model has an expert; NoExpertError if not."""
    spec, weights = resolve_spec(key, session)
    if not has_discriminator(spec.name, weights):
        raise NoExpertError(no_expert_message(spec))
    return spec, weights


def class_names(spec: ModelSpec, n: int) -> list[str]:
    return list(spec.classes) if len(spec.classes) == n else [str(i) for i in range(n)]


def verdict_markdown(spec: ModelSpec, verdict: gan.Verdict) -> str:
    """Markdown for one verdict: P(real), where it ranks among real images and fakes, the class, the sentence."""
    v = verdict
    lines = [f"### 🕵️ P(real) = {100 * v.probability:.0f}%", "", v.sentence, ""]
    if v.real_percentile is not None:
        lines.append(f"- the percentiles: where its score falls among the model's real validation images "
                     f"(**{v.real_percentile:.0f}%** score at or below it)"
                     + (f" and among the forger's own samples (**{v.fake_percentile:.0f}%**)"
                        if v.fake_percentile is not None else ""))
    if v.per_class and v.label is not None:
        names = class_names(spec, len(v.per_class))
        lines.append(f"- judged as a **{names[v.label]}** (the digit it shows); the chart gives P(real) under every "
                     f"class")
    if v.heatmap is not None:
        lines.append("- the heatmap shows each patch's verdict: green looks real, red looks fake")
    if spec.family == "pix2pix":
        lines.append("- Pix2Pix's expert judges a pair: your image as the sketch, and the digit the forger draws "
                     "from it")
    lines.append(f"- the expert's raw score (logit): {v.logit:.2f}")
    return "\n".join(lines)


def class_rows(spec: ModelSpec, verdict: gan.Verdict) -> dict[str, list] | None:
    """Columns of the per-class bar chart (class, P(real)), or None for an expert without classes."""
    if not verdict.per_class:
        return None
    return {"class": class_names(spec, len(verdict.per_class)), "p_real": [float(p) for p in verdict.per_class]}


def shrink_enlarged(img: Image.Image, side: int) -> Image.Image:
    """An image ``enlarge``d from ``side`` pixels back to its own size (exactly, nearest neighbour)."""
    if img.width == img.height and img.width > side and img.width % side == 0:
        return img.resize((side, side), Image.Resampling.NEAREST)
    return img


@dataclass
class ExpertGame:
    """One game of "Fool the expert": a shuffled mix of real held-out digits and the forger's fakes; the
    person and the expert each say real or fake for every image.

    The expert says real when it gives the image at least a 50% chance of being real (P(real) >= 0.5)."""

    key: str  # the model dropdown value
    name: str
    seed: int
    images: list[Image.Image]
    real: list[bool]  # the truth
    expert_p: list[float]  # the expert's P(real) of each image
    answers: list[bool] = field(default_factory=list)  # the person's, True = "real"

    @property
    def rounds(self) -> int:
        return len(self.images)

    @property
    def done(self) -> bool:
        return len(self.answers) >= self.rounds

    @property
    def expert_real(self) -> list[bool]:
        return [p >= 0.5 for p in self.expert_p]

    def answer(self, real: bool) -> None:
        if self.done:
            raise ValueError("this game is over: start a new one")
        self.answers.append(bool(real))

    def score(self) -> tuple[int, int]:
        """(the person's correct answers, the expert's correct answers) on the images answered so far."""
        n = len(self.answers)
        person = sum(a == t for a, t in zip(self.answers, self.real))
        expert = sum(e == t for e, t in zip(self.expert_real[:n], self.real))
        return person, expert


def new_game(key: str, name: str, seed: int, rounds: int = GAME_ROUNDS, *, weights: Path | None = None) -> ExpertGame:
    """A game of ``rounds`` images, the same for the same (model, seed): at least one real held-out MNIST digit
    and one fake of ``name`` (when rounds >= 2), shuffled, judged by the model's expert."""
    spec = get_spec(name)
    rng = random.Random(seed)
    n_real = rng.randint(1, rounds - 1) if rounds >= 2 else rng.randint(0, 1)
    real = [True] * n_real + [False] * (rounds - n_real)
    rng.shuffle(real)
    digits, _ = gan.data.mnist_offline("heldout")
    picks = iter(rng.sample(range(len(digits)), n_real))
    images = []
    for is_real in real:
        if is_real:
            images.append(Image.fromarray(digits[next(picks)].numpy(), "L"))
        else:
            label = rng.randrange(len(spec.classes)) if spec.conditional else None
            images.extend(gan.sample(spec, seed=rng.randrange(gan.checks.MAX_SEED + 1), label=label, weights=weights))
    verdicts = gan.judge(name, list(images), weights=weights)
    return ExpertGame(key=key, name=name, seed=seed, images=images, real=real,
                      expert_p=[v.probability for v in verdicts])


def game_markdown(game: ExpertGame) -> str:
    """The game's state: which round, or the final score table."""
    if not game.done:
        return (f"**Round {len(game.answers) + 1} of {game.rounds}**: is this digit real, or did the forger "
                f"(`{game.name}`) make it?")
    person, expert = game.score()
    rows = ["| # | it was | you said | the expert said (P(real)) |", "|---|---|---|---|"]
    word = {True: "real", False: "fake"}
    for i, (truth, yours, theirs, p) in enumerate(zip(game.real, game.answers, game.expert_real, game.expert_p)):
        rows.append(f"| {i + 1} | {word[truth]} | {word[yours]} {'✅' if yours == truth else '❌'} | "
                    f"{word[theirs]} {'✅' if theirs == truth else '❌'} ({100 * p:.0f}%) |")
    verdict = ("You beat the expert!" if person > expert else "The expert wins." if expert > person
               else "A draw.")
    return (f"### You: {person} / {game.rounds} · Expert: {expert} / {game.rounds}. {verdict}\n\n"
            + "\n".join(rows) + f"\n\nThe expert says real when it gives an image at least a 50% chance of being "
            f"real. The images, in order, are above; game number {game.seed} of `{game.name}` replays this game.")
