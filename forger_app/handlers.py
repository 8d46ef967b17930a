"""The app's handlers: UI values -> calls of ``gan``, errors -> messages, per-session state.

``app.py`` holds the layout and wires its events to these functions. Each returns what its event's
outputs show (``gr.update`` for what stays as it is) and never raises: every error becomes a message.
"""
from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

import gan
from forger_app import (
    display, downloads, handwriting, judging, loading, messages, pickers, sampling, sessions, training, uploads,
    zerogpu, zips,
)
from forger_app.sampling import MAX_SLIDERS
from forger_app.sessions import Session
from gan.registry import ModelSpec

log = logging.getLogger("forger.app")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
MAX_SEED = gan.checks.MAX_SEED
MAX_STEPS = 50_000  # a training run in the app is at most this long
MAX_MINUTES = 120  # ... and at most this many minutes
MAX_BATCH = 512
UI_EVERY_S = 0.5  # training: refresh the live view at most this often

# Errors a user can act on: shown as a message, never as a traceback.
USER_ERRORS = (gan.WeightsUnavailableError, gan.CheckpointMismatchError, gan.UnknownModelError, ValueError,
               FileNotFoundError, NotADirectoryError, gan.errors.DatasetUnavailableError)


def _session(state: Any) -> Session | None:
    return state if isinstance(state, Session) else None


def _fail(error: BaseException, name: str | None = None) -> str:
    """Log, toast and return the Markdown message for an error."""
    if isinstance(error, USER_ERRORS):
        log.info("user error: %s", error)
    else:
        log.exception("unexpected error")
    message = messages.user_message(error, name)
    gr.Warning(messages.short_message(error))
    return "⚠️ " + message


def _name_of(key: str, session: Session | None, task: str) -> str | None:
    try:
        return sessions.resolve_model(key, session, task)[0]
    except Exception:
        return None


def _dropdown(task: str, session: Session | None, value: str | None) -> dict:
    choices = pickers.model_choices(task, session)
    values = [v for _, v in choices]
    return gr.update(choices=choices, value=value if value in values else (values[0] if values else None))


def _status_for(key: str, session: Session | None, task: str) -> str:
    return _status_of(*sessions.resolve_spec(key, session, task))


def _status_of(spec: ModelSpec, weights: Path | None) -> str:
    if weights is not None:
        return f"**{spec.name}**, trained in this session (`{weights.parent.parent.name}`)."
    return messages.model_status(spec)


def class_choices(name: str | None = None) -> list[tuple[str, int]]:
    """Digit-picker choices: the classes of ``name``, or of the conditional model with the most classes."""
    specs = [gan.registry.get_spec(name)] if name else [gan.registry.get_spec(n) for n in pickers.noise_models()]
    classes = max((s.classes for s in specs), key=len, default=())
    return [(c, i) for i, c in enumerate(classes)]


def default_model(task: str) -> str:
    """The model a tab opens with: one that can do all the tab offers on this machine (its weights are here, and
    its expert, the discriminator, for "Ask the expert"), the registry's featured one first; else one whose
    weights are here; else the featured one (its status says how to get its weights)."""
    names = pickers.noise_models() if task == "noise" else pickers.translate_models()
    featured = [s.name for s in gan.registry.list_specs(task=task) if s.featured]
    offline = [n for n in names if pickers.availability(n) == "offline"]
    complete = [n for n in offline if judging.has_discriminator(n)]
    for group in (complete, offline):
        if group:
            return next((n for n in featured if n in group), group[0])
    return (featured or names)[0]


def offline_noise_models() -> list[str]:
    """The noise models whose weights are here, the default first."""
    first = default_model("noise")
    return [first] + [n for n in pickers.noise_models() if n != first and pickers.availability(n) == "offline"]


def warm_models() -> None:
    """Before the page is served: load every noise model whose weights are here (the default first) and
    compute one image of each on the compute thread, as a request would, in eager fp32 (the path served until
    the choice is made), so the first click pays no import, load or first-run kernel build. A model that fails
    to load is left to its first request (which says why)."""
    def warm() -> None:
        for name in offline_noise_models():
            started = time.perf_counter()
            try:
                if zerogpu.active():  # a GPU is attached only inside a call: load now, compute on the first click
                    gan.serving.serving_generator(name, None)
                else:
                    gan.sample(name, seed=0, precision="fp32")
            except Exception:  # noqa: BLE001 - the request for it reports the error
                log.warning("could not load %s at launch", name, exc_info=True)
            else:
                log.info("%s ready in %.2f s", name, time.perf_counter() - started)

    thread = threading.Thread(target=warm, name="forger-warm", daemon=True)  # a request's way: the compute thread
    thread.start()
    thread.join()


def prepare_models() -> None:
    """Once the page is served, in the background: start choosing the serving path of every noise model whose
    weights are here (the default first) on the compute thread, between requests (after a quiet second:
    ``gan.serving.QUIET_S``), so no click waits for a measurement."""
    for name in offline_noise_models():
        try:
            gan.prepare(name)
        except Exception:  # noqa: BLE001 - the request for it reports the error
            log.warning("could not prepare %s at launch", name, exc_info=True)


# ---------------------------------------------------------------------------- Sample


def named_sliders(fn):
    """Name the ``*sliders_and_state`` parameters of a Sample handler in its signature (``edit_0`` ...
    ``edit_31``, then ``state``) so that the API docs and gradio_client show real names, not param_N."""
    import inspect

    sig = inspect.signature(fn)
    fixed = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    edits = [inspect.Parameter(f"edit_{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=0.0, annotation=float)
             for i in range(MAX_SLIDERS)]
    state, start = (inspect.Parameter(what, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=Any)
                    for what in ("state", "start"))
    fn.__signature__ = sig.replace(parameters=[*fixed, *edits, state, start])
    return fn


def _edits_state_start(values: tuple) -> tuple[list[float], Session | None, Any]:
    """A Sample handler's trailing values: (slider values, session, projected start or None)."""
    rest = values[MAX_SLIDERS:]
    return ([float(e or 0) for e in values[:MAX_SLIDERS]], _session(rest[0] if rest else None),
            rest[1] if len(rest) > 1 else None)


def slider_updates(name: str | None) -> list[dict]:
    labels = sampling.slider_labels(name) if name else []
    return [gr.update(visible=i < len(labels), label=labels[i] if i < len(labels) else f"z[{i}]", value=0)
            for i in range(MAX_SLIDERS)]


def _render(model_key: str, seed: float, truncation: float, digit: Any, edits: list[float],
            session: Session | None, n: int = 1, live: bool = False, start: Any = None) -> tuple[Any, Any, str]:
    """(display image, PNG path, status) for the Sample tab; a message instead of an image on errors.

    ``live`` (a slider being dragged): the image only, at the model's own size (the page enlarges it with
    pixelated rendering); the PNG download and the status follow when the slider is released.
    ``start``: a latent projected from the user's image (``sampling.Start``), rendered instead of the seed's
    while the model and seed are those it was projected under (a grid of variations stays the seed's)."""
    name = None
    try:
        spec, weights = sessions.resolve_spec(model_key, session, "noise")  # the one registry lookup of a slider move
        name = spec.name
        seed = gan.checks.number("the seed", 0 if seed in (None, "") else seed, 0, MAX_SEED, integer=True)
        label = None if digit in (None, "") else int(digit)
        own = sampling.start_for(start, model_key, seed) if n == 1 else None
        images = sampling.render_sample(spec, seed, truncation=float(truncation), label=label, edits=edits,
                                 weights=weights, n=n, z=None if own is None else own.z)
        picture = images[0] if n == 1 else display.make_grid(images)
        if live:
            return picture, None, ""
        shown = display.enlarge(picture, display.DISPLAY_SIDE if n == 1 else 2 * display.DISPLAY_SIDE)
        status = _status_of(spec, weights) if own is None else sampling.start_status(own)
        return shown, str(downloads.save_png(picture)), status
    except Exception as e:  # noqa: BLE001 - every error becomes a message
        return None, None, _fail(e, name)


def sample_model_changed(model_key: str, seed: float, truncation: float, state: Any = None) -> tuple:
    """Model picked: show its sliders (reset to 0), its digit picker and, for a digit model, the sketchpad of
    "Start from my image"; render its image: (status, digit, *sliders, image, PNG path, sketchpad)."""
    session = _session(state)
    name = _name_of(model_key, session, "noise")
    spec = gan.registry.get_spec(name) if name else None
    cond = bool(spec and spec.conditional)
    digit = gr.update(visible=cond, choices=class_choices(name) if cond else class_choices(), value=0)
    image, png, status = _render(model_key, seed, truncation, 0, [], session)
    return (status, digit, *slider_updates(name), image, png, _sketchpad_view(pickers.draws_digits(spec)))


@named_sliders
def sample_image(model_key: str, seed: float, truncation: float, digit: Any, *sliders_and_state: Any) -> tuple:
    """The image of (model, seed, truncation, digit, slider values): (image, PNG path, status)."""
    edits, session, start = _edits_state_start(sliders_and_state)
    return _render(model_key, seed, truncation, digit, edits, session, start=start)


@named_sliders
def sample_live(model_key: str, seed: float, truncation: float, digit: Any, *sliders_and_state: Any) -> Any:
    """While a slider is dragged: the image alone, as fast as it can come (a message goes to the status
    on the release event, which also refreshes the PNG download)."""
    edits, session, start = _edits_state_start(sliders_and_state)
    image, _, _ = _render(model_key, seed, truncation, digit, edits, session, live=True, start=start)
    return image if image is not None else gr.update()


@named_sliders
def random_sample(model_key: str, truncation: float, digit: Any, *sliders_and_state: Any) -> tuple:
    """A random seed and its image: (seed, image, PNG path, status)."""
    seed = random.randint(0, 999_999)
    return (seed, *sample_image(model_key, seed, truncation, digit, *sliders_and_state))


def reset_sliders(model_key: str, seed: float, truncation: float, digit: Any, state: Any = None,
                  start: Any = None) -> tuple:
    """All latent sliders back to 0, and the image without edits: (*sliders, image, PNG path, status)."""
    return (*[0] * MAX_SLIDERS, *_render(model_key, seed, truncation, digit, [], _session(state), start=start))


@named_sliders
def sample_grid(model_key: str, seed: float, truncation: float, digit: Any, n: float,
                *sliders_and_state: Any) -> tuple:
    """A grid of n variations (seed's first n latents, same edits): (grid image, PNG path, status)."""
    edits, session, _ = _edits_state_start(sliders_and_state)
    n = max(1, min(int(n or 16), 64))
    return _render(model_key, seed, truncation, digit, edits, session, n=n)


def _own_image(image: Any, sketch: Any, drawings: bool = True) -> tuple[Any, str]:
    """(the image to start from, a note saying which one when there were two): the upload, else the sketchpad's
    drawing (only where ``drawings``: the sketchpad is shown); a clear message when there is neither."""
    drawing = uploads.sketch_image(sketch) if drawings else None
    if uploads.upload_path(image):
        note = ("You gave an uploaded image and a drawing: **the uploaded image was used**. To start from the "
                "drawing, remove the upload (its ✕) and press the button again.") if drawing is not None else ""
        return uploads.open_upload(image), note
    if drawing is None:
        raise ValueError("no image: upload one" + (", or draw one on the sketchpad" if drawings else ""))
    return drawing, ""


def project_image(model_key: str, image: Any, sketch: Any, seed: float, truncation: float, state: Any = None,
                  progress: gr.Progress = gr.Progress()) -> tuple:
    """"Start from my image": project it into the model's latent space; the latent becomes the one the
    sliders edit. (start, input | reconstruction, digit, *sliders at 0, image, PNG path, status)."""
    session = _session(state)
    name = None
    keep = (gr.update(), gr.update(), gr.update(), *[gr.update()] * MAX_SLIDERS)
    try:
        spec, weights = sessions.resolve_spec(model_key, session, "noise")
        name = spec.name
        seed = gan.checks.number("the seed", 0 if seed in (None, "") else seed, 0, MAX_SEED, integer=True)
        picture, note = _own_image(image, sketch, pickers.draws_digits(spec))
        p = zerogpu.on_gpu(gan.project, spec, picture, weights=weights, progress=sampling.progress_adapter(progress))
        start = sampling.Start(model_key, seed, tuple(float(v) for v in p.z), p.label, p.psnr)
        digit = gr.update(value=p.label) if p.label is not None else gr.update()
        shown, png, status = _render(model_key, seed, truncation, p.label, [], session, start=start)
        return (start, sampling.projection_slider(p), digit, *[0] * MAX_SLIDERS, shown, png,
                "\n\n".join(t for t in (status, note, sampling.projection_text(p, spec.classes)) if t))
    except Exception as e:  # noqa: BLE001
        return (*keep, gr.update(), gr.update(), _fail(e, name))


# ---------------------------------------------------------------------------- Interpolate


def interpolate_model_changed(model_key: str, state: Any = None) -> tuple:
    """Model picked: show digit A and B for conditional models: (status, digit A, digit B)."""
    session = _session(state)
    name = _name_of(model_key, session, "noise")
    spec = gan.registry.get_spec(name) if name else None
    cond = bool(spec and spec.conditional)
    choices = class_choices(name) if cond else class_choices()
    try:
        status = _status_for(model_key, session, "noise")
    except Exception as e:  # noqa: BLE001
        status = _fail(e, name)
    return (status, gr.update(visible=cond, choices=choices, value=0),
            gr.update(visible=cond, choices=choices, value=min(1, len(choices) - 1)))


def interpolate_tab(model_key: str, seed_a: float, seed_b: float, digit_a: Any, digit_b: Any, frames: float,
                    mode: str, state: Any = None, image_a: Any = None, image_b: Any = None,
                    progress: gr.Progress = gr.Progress()) -> tuple:
    """Frames from A to B: (strip image, GIF path for display, GIF path for download, status).

    Each end is a seed, or an uploaded image (``image_a`` / ``image_b``), projected into the latent space
    first (for a conditional model its digit is found too): morph your own 3 into your own 8."""
    session = _session(state)
    name = None
    try:
        name, weights = sessions.resolve_model(model_key, session, "noise")
        spec = gan.registry.get_spec(name)
        steps = gan.checks.number("the number of frames", 8 if frames in (None, "") else frames, 2, 64, integer=True)
        if mode not in ("slerp", "lerp"):
            raise ValueError(f"unknown interpolation {mode!r}: choose slerp or lerp")
        ends: dict[str, Any] = {}
        notes = []
        for end, seed, digit, image in (("a", seed_a, digit_a, image_a), ("b", seed_b, digit_b, image_b)):
            if spec.conditional:
                ends[f"label_{end}"] = int(digit or 0)
            if uploads.upload_path(image):
                p = zerogpu.on_gpu(gan.project, spec, uploads.open_upload(image), weights=weights,
                             progress=sampling.progress_adapter(progress))
                ends[f"z_{end}"] = p.z
                if p.label is not None:
                    ends[f"label_{end}"] = p.label
                notes.append(f"{end.upper()}: your image. " + sampling.projection_text(p, spec.classes))
            else:
                ends[f"seed_{end}"] = gan.checks.number(f"seed {end.upper()}", 0 if seed in (None, "") else seed,
                                                        0, MAX_SEED, integer=True)
        images = zerogpu.on_gpu(gan.interpolate, name, steps=steps, mode=mode, weights=weights, **ends)
        strip = display.make_grid(images, columns=len(images))
        gif = str(downloads.save_gif([display.enlarge(im, 128) for im in images]))
        status = "\n\n".join([_status_for(model_key, session, "noise"), *notes])
        return display.enlarge(strip, 128 * len(images)), gif, gif, status
    except Exception as e:  # noqa: BLE001
        return None, None, None, _fail(e, name)


# ---------------------------------------------------------------------------- Translate


def _sketchpad_view(shown: bool) -> dict:
    """The update of the group around a sketchpad: hidden, never removed from the page, so that the sketchpad
    keeps its drawing and its brush (docs/notes/sketchpad.md)."""
    return gr.update(visible=shown or "hidden")


def translate_options_view(name: str | None) -> tuple:
    """Updates of Resolution, Pix2Pix mode and dropout seed: each shown only for a model it changes; a hidden
    one goes back to its default, so that nothing unseen changes the next translation."""
    sized, modes = pickers.takes_resolution(name), pickers.has_modes(name)
    return (gr.update(visible=sized, **({} if sized else {"value": "model"})),
            gr.update(visible=modes, **({} if modes else {"value": "deterministic"})),
            gr.update(visible=modes, **({} if modes else {"value": 0})))


def translate_model_changed(model_key: str, state: Any = None) -> tuple:
    """Model picked: its status (how to get weights when it has none), the sketchpad for sketch2digit,
    an empty output (the previous model's translation would be stale), and the options it takes:
    (status, sketchpad, output, resolution, mode, seed)."""
    session = _session(state)
    name = _name_of(model_key, session, "translate")
    try:
        status = _status_for(model_key, session, "translate")
    except Exception as e:  # noqa: BLE001
        status = _fail(e, name)
    return (status, _sketchpad_view(pickers.has_sketchpad(name)), None, *translate_options_view(name))


APP_VIDEO_FRAMES = 120  # the app translates at most this many frames of a video (the library: checks.MAX_VIDEO_FRAMES)
RESOLUTIONS = [("Model size (fast)", "model"), ("Long side 1024", "1024"), ("Full resolution", "full")]
MODES = [("Deterministic", "deterministic"), ("Paper (dropout on, seeded)", "paper"), ("Official --eval", "eval")]


def _options(resolution: Any, mode: Any, seed: Any) -> dict[str, Any]:
    """The Translate tab's options as ``gan.translate`` arguments (checked there)."""
    seed = 0 if seed is None or seed == "" else seed
    seed = int(seed) if isinstance(seed, float) and seed.is_integer() else seed
    return dict(resolution=resolution or "model", mode=mode or "deterministic", seed=seed)


PROGRESS_EVERY_S = 0.25  # a progress bar is updated at most this often: each update is a message to the page


def throttled(report: Callable[[int, int], None], every_s: float = PROGRESS_EVERY_S) -> Callable[[int, int], None]:
    """``report(done, total)`` passed on at most once per ``every_s`` seconds, and always for the last step."""
    last = -float("inf")

    def call(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done != total and now - last < every_s:
            return
        last = now
        report(done, total)
    return call


def _tiles(progress: Any) -> Callable[[int, int], None]:
    """``gan.translate``'s progress callback, shown by Gradio's progress bar (tiles of a large image)."""
    def report(done: int, total: int) -> None:
        if total > 1:
            progress(done / total, desc=f"translating: tile {done} of {total}")
    return throttled(report)


def _translate(model_key: str, image: Any, session: Session | None, options: dict[str, Any],
               progress: Any = None) -> tuple:
    name = None
    try:
        name, weights = sessions.resolve_model(model_key, session, "translate")
        if image is None:
            raise ValueError("no image: upload one, take one with the webcam, paste one, or draw one")
        gan.raise_if_failing(name, weights)  # a model that just failed to load: say so before decoding anything
        loading.loaded(name, weights)  # a download never holds a model-call slot for longer than loading.LOAD_WAIT_S
        picture = uploads.open_upload(image)
        # the size it runs at, and why when it is not the one asked (a tile cap, a model that cannot tile)
        how = gan.translation.plan(name, *picture.size, options["resolution"])
        tiles = None if progress is None else _tiles(progress)  # (a gr.Progress is falsy: test for None)
        out = zerogpu.on_gpu(gan.translate, name, picture, weights=weights, progress=tiles, **options)
        status = _status_for(model_key, session, "translate")
        if how.note:
            status += f"\n\nℹ️ {how.note}."
        return display.before_after(picture, display.enlarge(out) if how.size is None else out), status
    except Exception as e:  # noqa: BLE001
        return None, _fail(e, name)


def translate_tab(model_key: str, image: Any, state: Any = None, resolution: str = "model",
                  mode: str = "deterministic", seed: Any = 0, progress: Any = gr.Progress()) -> tuple:
    """Translate an uploaded / webcam / pasted image: ((input, output) for the image slider, status).

    ``image`` is a file path or Gradio's file payload (the event skips Gradio's own image
    decoding so that a broken or huge file gets our clear message). ``resolution``: 'model', 'full' or a
    long side; ``mode`` and ``seed``: a Pix2Pix's behaviour (``gan.translate``)."""
    return _translate(model_key, image, _session(state), _options(resolution, mode, seed), progress)


def translate_sketch(model_key: str, sketch: Any, state: Any = None, resolution: str = "model",
                     mode: str = "deterministic", seed: Any = 0) -> tuple:
    """Translate the sketchpad drawing: ((drawing, output) for the image slider, status). An empty canvas (the sketchpad just shown or
    cleared) leaves both as they are: the model's status stays readable."""
    try:
        drawing = uploads.sketch_image(sketch)
    except Exception as e:  # noqa: BLE001
        return None, _fail(e)
    if drawing is None:
        return gr.skip(), gr.skip()
    return _translate(model_key, drawing, _session(state), _options(resolution, mode, seed))


def translate_video_tab(model_key: str, video: Any, state: Any = None, resolution: str = "model",
                        mode: str = "deterministic", seed: Any = 0, progress: Any = gr.Progress()) -> tuple:
    """Translate an uploaded video (mp4, webm, mov, gif...) frame by frame: (mp4 path, status).

    The event skips Gradio's video preprocessing: only a file inside Gradio's upload folder is read, and
    at most APP_VIDEO_FRAMES frames (checked from the header before decoding)."""
    session = _session(state)
    name = None
    try:
        name, weights = sessions.resolve_model(model_key, session, "translate")
        if isinstance(video, dict) and "video" in video:  # a {"video": FileData, "subtitles": ...} payload
            video = video["video"]
        if video is None:
            raise ValueError("no video: upload one (mp4, webm, mov or an animated gif)")
        missing = uploads.missing_video_packages()  # the output is an mp4: even a GIF needs them
        if missing:
            raise ValueError(messages.video_help(missing))
        source = uploads.uploaded_file(video)
        if Path(source).suffix.lower() not in uploads.VIDEO_SUFFIXES:
            raise ValueError(f"{Path(source).name} is not a video this app reads: upload "
                             + ", ".join(uploads.VIDEO_SUFFIXES))
        gan.raise_if_failing(name, weights)
        loading.loaded(name, weights)
        out = downloads.output_path(".mp4", "forger-video-")
        frames = zerogpu.on_gpu(gan.translate_video, name, source, out, weights=weights, max_frames=APP_VIDEO_FRAMES,
                          progress=throttled(lambda done, total: progress(
                              done / total if total else None, desc=f"frame {done}" + (f" of {total}" if total else ""))),
                          **_options(resolution, mode, seed))
        return str(out), f"{frames} frame{'s' if frames != 1 else ''} translated. " + _status_for(model_key, session, "translate")
    except Exception as e:  # noqa: BLE001
        return None, _fail(e, name)


# ---------------------------------------------------------------------------- Train


def _train_spec(model: Any) -> ModelSpec:
    """The spec of the model to train; a message when none (or not a name) was chosen."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError("choose a model to train")
    return gan.registry.get_spec(model)


def train_model_changed(model: str) -> tuple:
    """Model picked: its default data and a line about it: (data choice, status)."""
    try:
        spec = _train_spec(model)
    except Exception as e:  # noqa: BLE001
        return gr.update(), _fail(e)
    data = training.default_train_data(model)
    hint = f"Default data: `{spec.data}`." if data != "folder" else f"Data: a folder, {spec.data}."
    return data, f"**{model}**: {spec.description} {hint}"


def train_data_changed(data: str) -> tuple:
    """Data picked: show the folder box or the zip upload: (folder, zip)."""
    return gr.update(visible=data == "folder"), gr.update(visible=data == "zip")


def _int_or_none(value: Any, what: str, lo: int, hi: int) -> int | None:
    """A whole number in [lo, hi]; empty or 0 (an empty gr.Number) -> None."""
    if value in (None, "") or float(value) == 0:
        return None
    number = float(value)
    if number != int(number) or not lo <= number <= hi:
        raise ValueError(f"{what} must be a whole number between {lo} and {hi}, got {value}")
    return int(number)


def _train_data(data: str, folder: str, zip_file: Any, session: Session) -> str:
    if data == "folder":
        return str(training.data_folder(folder))
    if data == "zip":
        if not uploads.upload_path(zip_file):
            raise ValueError("upload a zip of images first (or choose another data source)")
        return str(zips.safe_extract_zip(Path(uploads.uploaded_file(zip_file)), session.new_data_dir()))
    if data not in {v for _, v in training.train_data_choices()}:
        raise ValueError(f"unknown data choice {data!r}")
    return data


EXPERT_CURVES = ("D(real)", "D(fake)")  # the trainers' expert beliefs: plotted apart from the losses


def _plot(history: list[tuple[int, dict[str, float]]], expert: bool = False) -> pd.DataFrame | None:
    """Losses (or, with ``expert``, D(real) and D(fake)) as a long table (step, loss, value) with 'loss' a
    string column (a colour category).

    None before the first step: Gradio 6.31's plot stops drawing lines after it was sent an empty table."""
    rows = training.loss_rows([(step, {k: v for k, v in values.items() if (k in EXPERT_CURVES) == expert})
                        for step, values in history])
    if not rows["step"]:
        return None
    return pd.DataFrame({"step": pd.Series(rows["step"], dtype="int64"), "loss": pd.Series(rows["loss"], dtype=str),
                         "value": pd.Series(rows["value"], dtype="float64")})


def _grid(grid: Any) -> Any:
    """A training sample grid, enlarged for display; no change when the event has none."""
    return gr.update() if grid is None else display.enlarge(grid, 480)


def _trained_updates(session: Session, value: str | None = None) -> tuple:
    """Dropdown updates after training: Sample, Interpolate, Translate and the session's own runs."""
    runs = [(t.label, t.key) for t in session.trained.values()]
    return (gr.update(choices=pickers.model_choices("noise", session)),
            gr.update(choices=pickers.model_choices("noise", session)),
            gr.update(choices=pickers.model_choices("translate", session)),
            gr.update(choices=runs, value=value if value is not None else (runs[-1][1] if runs else None)))


def _view(session: Session, **changes: Any) -> tuple:
    """The Train tab's outputs, unchanged (gr.update()) except those given: grid, plot, progress, status,
    weights_zip, dropdowns (4 updates), the expert's plot (D(real), D(fake)), the collapse alarm's plot and line."""
    out = {k: changes.get(k, gr.update()) for k in ("grid", "plot", "progress", "status", "weights_zip")}
    return (session, *out.values(), *changes.get("dropdowns", (gr.update(),) * 4),
            *(changes.get(k, gr.update()) for k in ("expert_plot", "diversity_plot", "diversity")))


def _room(removed: list[str]) -> str:
    return (f"\n\nTo make room for this run (the server keeps {sessions.MAX_SESSION_RUNS_BYTES >> 20} MiB of runs per "
            f"session, {sessions.MAX_RUNS_BYTES >> 20} MiB in all), the oldest finished runs were deleted: "
            + ", ".join(removed) + ".") if removed else ""


def train_tab(model: str, data: str, folder: str, zip_file: Any, steps: float, minutes: float, batch_size: float,
              lr: float, state: Any = None, request: gr.Request | None = None) -> Iterator[tuple]:
    """Train a model, streaming (session, grid, losses, progress, status, weights zip, 4 dropdowns, the expert's
    plot, the collapse alarm's plot and line).

    The run lasts ``minutes`` (empty: no time budget) or ``steps`` (empty: the recipe's), whichever ends first.

    Stop sets the session's stop switch: the trainer saves a checkpoint, exports the weights,
    and the run ends here with them selectable in Sample / Interpolate / Translate for this session."""
    from gan.train import TrainConfig, train

    session = _session(state) or Session()
    if session.running:
        yield _view(session, status="⚠️ **A training run is already in progress in this session.** Stop it first.")
        return
    try:
        _train_spec(model)
        total = _int_or_none(steps, "steps", 1, MAX_STEPS)
        budget = None if minutes in (None, "") or float(minutes) == 0 else gan.checks.number(
            "minutes", minutes, 0.05, MAX_MINUTES)
        if total is None and budget is None:
            raise ValueError("give a number of steps or of minutes (or both: the run ends at the first)")
        batch = _int_or_none(batch_size, "batch size", 1, MAX_BATCH)
        rate = None if lr in (None, "") or float(lr) == 0 else float(lr)
        if rate is not None and not 0 < rate <= 1:
            raise ValueError(f"the learning rate must be in (0, 1], got {lr}")
        dataset = _train_data(data, folder, zip_file, session)
        run_dir, removed = session.new_run_dir(model)  # the oldest finished runs past the quota are deleted
        # a time-bound run samples on the clock (every 10 s and at step 1); a step-bound one also every 5% of it
        config = TrainConfig(model=model, data=dataset, steps=total, minutes=budget, batch_size=batch, lr=rate,
                             out=run_dir, classes=training.train_classes(model, data),
                             sample_every=max(5, min(200, (total or MAX_STEPS) // 20)),
                             checkpoint_every=max(50, (total or MAX_STEPS) // 4))
        session.stop.clear()
        session.running = True
        sessions.remember_browser_session(request.session_hash if request else None, session)
        events = train(config, stop=session.stop)
    except Exception as e:  # noqa: BLE001 - a missing dataset, a bad zip, a wrong value
        session.running = False
        session.drop_data()
        yield _view(session, status=_fail(e, model))
        return
    yield from _stream(session, events, model, run_dir, f"Training **{model}** on `{data}`…", _room(removed),
                       total, None if budget is None else budget * 60)


def _stream(session: Session, events: Iterator[Any], model: str, run_dir: Path, heading: str, room: str,
            total: int | None, seconds: float | None, what: str = "trained this session") -> Iterator[tuple]:
    """A run's events as the Train tab's outputs, at most every UI_EVERY_S (and at every grid); at the end its
    weights are registered for this session only (as ``what``: the trained models' label)."""
    history: list[tuple[int, dict[str, float]]] = []
    measures: list[Any] = []  # the collapse alarm's (gan.train.diversity.Diversity)
    started = last = time.monotonic()

    def live(event: Any, now: float, **more: Any) -> tuple:
        return _view(session, grid=_grid(event.grid), plot=_plot(history), expert_plot=_plot(history, expert=True),
                     diversity_plot=training.diversity_plot(measures), diversity=training.diversity_text(measures),
                     progress=training.progress_text(event.step, event.total, event.losses, now - started,
                                                     done=event.done, budget_s=seconds), **more)

    yield _view(session, progress=training.progress_text(0, total, {}, 0, budget_s=seconds), status=heading + room,
                plot=_plot(history), expert_plot=_plot(history, expert=True), diversity_plot=None, diversity="")
    try:
        for event in events:
            if event.losses:
                history.append((event.step, event.losses))
            if event.diversity is not None:
                measures.append(event.diversity)
            now = time.monotonic()
            if not event.done:
                if event.grid is None and now - last < UI_EVERY_S:
                    continue
                last = now
                yield live(event, now)
                continue
            # done: register the exported weights for this session only
            entries = [session.add_trained(run_dir, folder, event.step, what)
                       for folder in training.exported_weights(run_dir)]
            own = next((t for t in entries if t.name == model), entries[0] if entries else None)
            if own is None:
                raise RuntimeError(f"the run ended without exported weights in {run_dir}")
            folders = [t.weights for t in entries]
            archive = downloads.zip_folder(folders[0] if len(folders) == 1 else run_dir / "weights")
            where = {"noise": "Sample and Interpolate", "translate": "Translate"}[gan.registry.get_spec(model).task]
            status = (f"✅ {event.message.split(';')[0]}. The new weights are selectable in **{where}** as "
                      f"“{own.label}” (this session only); download them below or push them to the Hub." + room)
            yield live(event, now, status=status, weights_zip=str(archive),
                       dropdowns=_trained_updates(session, own.key))
    except GeneratorExit:  # the page went away: finish cleanly (checkpoint + export), then end
        session.stop.set()
        for _ in events:
            pass
        raise
    except Exception as e:  # noqa: BLE001 - losses not finite, out of memory, ...
        yield _view(session, status=_fail(e, model))
    finally:
        session.running = False
        session.drop_data()  # an uploaded dataset lives only as long as its run


def finetune_tab(state: Any = None, request: gr.Request | None = None) -> Iterator[tuple]:
    """Fine-tune the digit model on the session's handwriting (``gan.train.finetune``), streaming as ``train_tab``;
    the weights then draw every digit in that hand, selectable in Sample and Interpolate."""
    from gan.train import finetune

    session = _session(state) or Session()
    name = handwriting.hand_model()
    if session.running:
        yield _view(session, status="⚠️ **A training run is already in progress in this session.** Stop it first.")
        return
    try:
        hand = handwriting.session_hand(session)
        run_dir, removed = session.new_run_dir(f"{name}-hand")
        session.stop.clear()
        session.running = True
        sessions.remember_browser_session(request.session_hash if request else None, session)
        events = finetune.finetune(hand, model=name, out=run_dir, stop=session.stop, steps=finetune.STEPS)
    except Exception as e:  # noqa: BLE001 - too few digits, no room
        session.running = False
        yield _view(session, status=_fail(e, name))
        return
    yield from _stream(session, events, name, run_dir, f"Teaching **{name}** your handwriting ({len(hand)} "
                       f"digits)…", _room(removed), finetune.STEPS, None, what="your handwriting")


def _hand_changed(change: Callable[[Session], Any], state: Any) -> tuple:
    """(session, the gallery of its digits, a line about them) after ``change``; a message when it fails."""
    session = _session(state) or Session()
    try:
        change(session)
    except Exception as e:  # noqa: BLE001 - no drawing, no digit picked, not an image, too many
        return session, gr.update(), _fail(e)
    return (session, *handwriting.hand_view(session))


def hand_add(sketch: Any, digit: Any, state: Any = None) -> tuple:
    """Add the sketchpad's drawing, as the picked digit, to the session's handwriting."""
    return _hand_changed(lambda session: handwriting.add_drawn(sketch, digit, session), state)


def hand_upload(files: Any, digit: Any, state: Any = None) -> tuple:
    """Add uploaded images, each the picked digit, to the session's handwriting."""
    return _hand_changed(lambda session: handwriting.add_uploaded(files, digit, session), state)


def hand_clear(state: Any = None) -> tuple:
    """Forget the session's handwriting."""
    return _hand_changed(lambda session: session.hand.clear(), state)


def stop_training(state: Any = None) -> str:
    """Stop this session's training run; it saves a checkpoint and exports the weights. Returns a status line."""
    session = _session(state)
    if session is None or not session.running:
        return "No training run is in progress in this session."
    session.stop.set()
    return "Stopping… the run saves a checkpoint and exports its weights."


REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def push_weights(run_key: str, repo_id: str, token: str, private: bool, state: Any = None) -> str:
    """Push one of this session's trained models to the Hugging Face Hub with the user's token; a status line."""
    session = _session(state)
    try:
        if session is None or not session.trained:
            raise ValueError("train a model first: only weights trained in this session can be pushed")
        entry = session.trained.get(run_key or "")
        if entry is None:
            raise ValueError("choose one of your trained models")
        repo_id = (repo_id or "").strip()
        if not REPO_ID.match(repo_id):
            raise ValueError(f"the repo id must look like 'your-name/model-name', got {repo_id!r}")
        token = (token or "").strip()
        if not token:
            raise ValueError("paste a Hugging Face write token (huggingface.co/settings/tokens); "
                             "the app never uses a token of its own")
        url = gan.weights.push_to_hub(entry.weights, repo_id, token=token, private=bool(private))
        return f"✅ Pushed `{entry.name}` to [{repo_id}]({url})."
    except Exception as e:  # noqa: BLE001 - a network or auth error must not leak the token
        message = str(e).replace(token, "***") if token else str(e)
        return _fail(ValueError(message) if isinstance(e, ValueError) else RuntimeError(message))


# ---------------------------------------------------------------------------- Expert


def _bars(rows: dict[str, list] | None) -> pd.DataFrame | None:
    return None if rows is None else pd.DataFrame({"class": pd.Series(rows["class"], dtype=str),
                                                  "p_real": pd.Series(rows["p_real"], dtype="float64")})


def _expert_status(spec: ModelSpec, weights: Path | None) -> str:
    if spec.task == "noise":
        what = "It judges images like the ones the forger makes, against the real images it was trained on."
    elif spec.family == "pix2pix":
        what = ("It judges a pair: an image as the sketch, and the digit the forger draws from it; the heatmap "
                "shows the verdict of each patch.")
    else:
        what = "It judges images of the translation's output side; the heatmap shows the verdict of each patch."
    return f"{_status_of(spec, weights)}  \n*The expert is its discriminator.* {what}"


def _judge(model_key: str, picture: Any, session: Session | None) -> tuple:
    """(verdict Markdown, heatmap or None, per-class table or None) of one image; a message on errors."""
    name = None
    try:
        spec, weights = judging.expert_for(model_key, session)
        name = spec.name
        image = picture() if callable(picture) else picture
        verdict = zerogpu.on_gpu(gan.judge, name, [image], weights=weights)[0]
        return judging.verdict_markdown(spec, verdict), verdict.heatmap, _bars(judging.class_rows(spec, verdict))
    except Exception as e:  # noqa: BLE001 - every error becomes a message
        return _fail(e, name), None, None


def expert_judge(model_key: str, image: Any, state: Any = None) -> tuple:
    """The expert's verdict on an uploaded image: (verdict Markdown, heatmap or None, per-class table or None).

    ``image`` is an upload's path or Gradio's file payload (the event skips Gradio's image decoding); only
    files in Gradio's upload folder are read."""
    def picture() -> Any:
        if uploads.upload_path(image) is None:
            raise ValueError("no image: upload one, take one with the webcam, paste one, or draw one")
        return uploads.open_upload(uploads.uploaded_file(image))

    return _judge(model_key, picture, _session(state))


def expert_judge_sketch(model_key: str, sketch: Any, state: Any = None) -> tuple:
    """The expert's verdict on the sketchpad drawing: (verdict Markdown, heatmap or None, per-class table or None).
    An empty canvas (the sketchpad just shown or cleared) leaves all three as they are."""
    try:
        drawing = uploads.sketch_image(sketch)
    except Exception as e:  # noqa: BLE001
        return _fail(e), None, None
    if drawing is None:
        return gr.skip(), gr.skip(), gr.skip()
    return _judge(model_key, drawing, _session(state))


def _expert_views(spec: ModelSpec | None) -> tuple:
    """Updates of what the Expert tab shows for a model: (sketchpad, heatmap, per-class chart)."""
    return (_sketchpad_view(judging.expert_has_sketchpad(spec)),
            gr.update(visible=spec is not None and judging.expert_has_heatmap(spec), value=None),
            gr.update(visible=spec is not None and judging.expert_classes(spec) > 0, value=None))


def expert_model_changed(model_key: str, state: Any = None) -> tuple:
    """Model picked: (status, sketchpad, heatmap, per-class chart, verdict): what the expert judges, the
    views it gives, and an empty verdict (the previous model's would be stale)."""
    session = _session(state)
    spec = None
    try:
        spec, weights = judging.expert_for(model_key, session)
        status = _expert_status(spec, weights)
    except Exception as e:  # noqa: BLE001
        status = _fail(e, _name_of(model_key, session, None))
    return (status, *_expert_views(spec), "")


def refresh_expert_models(state: Any = None) -> tuple:
    """The Expert tab opened: its model lists, with the discriminators this session has trained since."""
    session = _session(state)
    return (gr.update(choices=judging.expert_choices(session)),
            gr.update(choices=judging.expert_choices(session, game=True)))


def _stay(message: str) -> tuple:
    """What "Ask the expert" returns when it cannot ask: the tab stays, the Expert tab is untouched, and the
    message shows in place, in the status of the tab it was asked from."""
    return (gr.update(), *(gr.update(),) * 7, message)


def _no_expert(spec: gan.registry.ModelSpec, session: Session | None) -> str:
    """Said in place when the model has no expert: why, and the models whose expert can be asked now."""
    log.info("no expert: %s", spec.name)
    others = [label for label, key in judging.expert_choices(session)
              if sessions.resolve_spec(key, session)[0].task == spec.task]
    ask = f" Pick one that has its expert to ask it: {', '.join(others)}." if others else ""
    return f"🕵️ **No expert to ask:** {judging.no_expert_message(spec)}.{ask}"


def ask_expert(model_key: str, image: Any, state: Any = None, note: str = "") -> tuple:
    """"Ask the expert" beside Sample's image: switch to the Expert tab with that image judged by the same
    model's discriminator; a model without one (or no image yet) is said in place, without leaving the tab.

    Returns (tabs, expert model, status, sketchpad, expert image, verdict, heatmap, per-class chart, the asking
    tab's status). ``note`` (which of two inputs was judged) ends the Expert tab's status."""
    session = _session(state)
    try:
        spec, weights = sessions.resolve_spec(model_key, session)
        if not judging.has_discriminator(spec.name, weights):
            return _stay(_no_expert(spec, session))
        if image is None:
            return _stay("Make an image first, then ask the expert about it.")
        picture = display.shrink_enlarged(uploads.open_upload(image), spec.image_size)  # the forger's own pixels
    except Exception as e:  # noqa: BLE001 - an unknown key, an unreadable image
        return _stay(_fail(e, _name_of(model_key, session, None)))
    verdict, heat, bars = _judge(model_key, picture, session)
    sketch, heat_view, bars_view = _expert_views(spec)
    heat_view["value"], bars_view["value"] = heat, bars
    status = _expert_status(spec, weights) + (f"  \n{note}" if note else "")
    return (gr.Tabs(selected="expert"), gr.update(choices=judging.expert_choices(session), value=model_key), status,
            sketch, display.enlarge(picture), verdict, heat_view, bars_view, gr.update())


def ask_expert_translation(model_key: str, upload: Any, sketch: Any, out: Any, state: Any = None) -> tuple:
    """"Ask the expert" beside Translate's output. A CycleGAN's expert judges the translation itself; a Pix2Pix
    expert judges a pair (input, its translation), so it is given the input (the upload, else the drawing; the
    Expert tab says which when there are both) and pairs it with its own translation. Returns what
    ``ask_expert`` returns."""
    session = _session(state)
    note = ""
    try:
        spec, _ = sessions.resolve_spec(model_key, session, "translate")
        if spec.family == "pix2pix":
            drawing = uploads.sketch_image(sketch) if pickers.has_sketchpad(spec.name) else None
            picture = uploads.open_upload(upload) if uploads.upload_path(upload) else drawing
            if uploads.upload_path(upload) and drawing is not None:
                note = ("You gave an uploaded image and a drawing: **the uploaded image was judged**, paired with "
                        "its translation. To ask about the drawing, remove the upload first.")
        else:
            picture = out[1] if isinstance(out, (list, tuple)) else out  # the image slider's after: the translation
    except Exception as e:  # noqa: BLE001 - an unknown key, an unreadable upload
        return _stay(_fail(e, _name_of(model_key, session, None)))
    if picture is None:
        return _stay("Translate an image first, then ask the expert about it.")
    return ask_expert(model_key, picture, state, note)


def _game_view(game: judging.ExpertGame) -> tuple:
    """(game, image, Markdown): the next image to judge, or all of them with the score table at the end."""
    if game.done:
        strip = display.make_grid(game.images, columns=len(game.images))
        return game, display.enlarge(strip, 96 * len(game.images)), judging.game_markdown(game)
    return game, display.enlarge(game.images[len(game.answers)]), judging.game_markdown(game)


def game_start(model_key: str, rounds: float, seed: Any = None, state: Any = None) -> tuple:
    """A new game of "Fool the expert": (game, first image, Markdown). An empty or 0 seed (the game number)
    picks a random game; the same (model, seed, rounds) is always the same game."""
    session = _session(state)
    name = None
    try:
        spec, weights = judging.expert_for(model_key, session)
        name = spec.name
        if not (spec.task == "noise" and spec.channels == 1):
            raise ValueError(f"{name} does not forge digits: the game mixes its fakes with real MNIST digits; "
                             f"choose a digit model")
        n = gan.checks.number("the number of rounds", judging.GAME_ROUNDS if rounds in (None, "") else rounds,
                              1, judging.MAX_GAME_ROUNDS, integer=True)
        seed = random.randint(1, 999_999) if seed in (None, "", 0) else gan.checks.number(
            "the game number", seed, 1, MAX_SEED, integer=True)
        game = zerogpu.on_gpu(judging.new_game, model_key, name, seed, n, weights=weights)
        return _game_view(game)
    except Exception as e:  # noqa: BLE001
        return None, None, _fail(e, name)


def game_answer(answer: str, game: Any = None) -> tuple:
    """The person says "real" or "fake" about the current image: (game, next image, Markdown); after the
    last round, all the images and the score table (the person's correct answers and the expert's)."""
    if not isinstance(game, judging.ExpertGame):
        return game, None, "Start a game first: press **Start a game**."
    if game.done:
        return game, gr.update(), judging.game_markdown(game) + "\n\n**This game is over: start a new one.**"
    if answer not in ("real", "fake"):
        return game, gr.update(), _fail(ValueError(f"answer real or fake, not {answer!r}"))
    game.answer(answer == "real")
    return _game_view(game)


def game_real(game: Any = None) -> tuple:
    """The person says the current image is real: (game, next image, Markdown)."""
    return game_answer("real", game)


def game_fake(game: Any = None) -> tuple:
    """The person says the current image is fake: (game, next image, Markdown)."""
    return game_answer("fake", game)


def page_load(state: Any = None) -> tuple:
    """On page load: refresh the model lists (weights may have appeared since start) and show a first sample."""
    session = _session(state)
    sample_key = default_model("noise")
    translate = _dropdown("translate", session, default_model("translate"))
    translate["info"] = messages.picker_info("translate")  # whether this machine can download the ⤓ models now
    return (_dropdown("noise", session, sample_key), _dropdown("noise", session, sample_key), translate,
            *_render(sample_key, 0, 1.0, 0, [], session))


def end_session(request: gr.Request) -> None:
    """The tab closed: stop its training run (it still saves a checkpoint); the gr.State delete
    callback removes the session's files later."""
    sessions.forget_browser_session(request.session_hash if request else None)


# ---------------------------------------------------------------------------- the UI


