"""Per-session state: each browser session (and each gradio_client ``Client``) gets its own ``Session``,
with its own run folder under ``runs_root()``, its own table of trained models and the stop switch of its
running training. Sessions never share anything mutable; a model key that is not a registered name and not
one of the session's own runs is refused. The training runs of all sessions share a disk quota."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import gan
from forger_app.zips import release_extracted
from gan.registry import ModelSpec, get_spec

log = logging.getLogger(__name__)


SESSION_TTL_S = 6 * 3600  # a session's folder left untouched this long is deleted (API clients never close)
MAX_RUNS_PER_SESSION = 4  # older runs (and their weights) are deleted past this
MAX_SESSION_RUNS_BYTES = 256 << 20  # one session's training runs on disk (a short run of a small model: ~32 MiB)
MAX_RUNS_BYTES = 1 << 30  # all sessions' training runs together; the oldest finished runs go first
RUN_ROOM_BYTES = 64 << 20  # the room a run is given when it starts, under both quotas
RUN_KEY_PREFIX = "run:"


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
    hand: list = field(default_factory=list)  # the user's digits, (image (1, S, S) in [-1, 1], label) (handwriting.py)

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

    def add_trained(self, run: Path, weights: Path, steps: int, what: str = "trained this session") -> TrainedModel:
        """Register an exported weights folder; returns its entry (its key is the dropdown value)."""
        name = gan.weights.read_config(weights).get("model", weights.name)
        get_spec(name)  # a folder of an unknown model is refused here
        key = RUN_KEY_PREFIX + uuid.uuid4().hex[:12]
        label = f"{name} — {what} (run {run.name.split('-')[1]}, {steps} steps)"
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
