"""The agents' tools: six plain, typed functions the app serves as MCP tools when it is launched with
``python app.py --mcp`` (or ``FORGER_MCP=1``).

Gradio names an MCP tool after its function and describes it from the docstring: the text before ``Args:``
and after ``Returns:``, one line per argument. Each tool returns one thing, an image or a text, because Gradio
gives an MCP client an image only from an event with a single output (several come back as one line of text).

Images come in as uploads. An MCP client sends a ``data:image/...;base64`` URL, which Gradio's MCP server
uploads to the app before the call (the request is at most 4 MiB, the ``mcp`` package's limit). The app's
boundary (``forger_app.boundary``) refuses anything that is not an upload: a server path, or an http(s) URL,
which Gradio would download with no size limit. Errors reach the client as ``gr.Error`` with the message the
page would show: never a traceback, never a server path.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr
from PIL import Image

import gan
from forger_app import display, judging, loading, messages, pickers, sampling, sessions, uploads, zerogpu
from forger_app.handlers import MAX_SEED, USER_ERRORS

log = logging.getLogger("forger.app")

FRAMES = (2, 32)  # interpolate: fewest and most frames
FRAME_SIDE = 128  # interpolate: each frame of the strip is enlarged to this


def _error(error: BaseException) -> gr.Error:
    """An error as the MCP client is told it: one line, no traceback, no server path."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, USER_ERRORS):
        log.info("tool error: %s", error)
    else:
        log.exception("unexpected error in a tool")
    return gr.Error(messages.short_message(error), print_exception=False)


def _or(value: Any, default: Any) -> Any:
    """An argument left empty (None: an API client may send it) is its default."""
    return default if value is None or value == "" else value


def list_models() -> str:
    """Every model Forger serves, as a JSON list. Each entry gives the model's name, its task ('noise': it draws
    images from a seed; 'translate': it turns one image into another), what it does, its image size, its
    classes (a conditional model draws the class asked for, e.g. a digit), where its weights are ('offline':
    on this machine; 'download': fetched on first use, which needs the internet; 'train': none yet, train it
    in the app) and the tools that take it.

    Returns:
        the models, as JSON text
    """
    rows = []
    for name in pickers.noise_models() + pickers.translate_models():
        spec = gan.registry.get_spec(name)
        tools = ["sample", "interpolate", "project"] if spec.task == "noise" else ["translate"]
        if judging.has_discriminator(name):
            tools.append("judge")
        rows.append({"name": name, "task": spec.task, "description": spec.description,
                     "image_size": spec.image_size, "classes": list(spec.classes),
                     "weights": pickers.availability(spec), "tools": tools})
    return json.dumps(rows, indent=1)


def sample(model: str, seed: int = 0, truncation: float = 1.0, digit: int = 0) -> Image.Image:
    """Draw one image with a noise-to-image GAN. The same model, seed, truncation and digit always give the
    same image.

    Args:
        model: a model whose task is 'noise' (see list_models)
        seed: which random latent to draw the image from, a whole number from 0 to 4294967295
        truncation: 0 to 2; 1 gives the model's full variety, less gives cleaner, more alike images
        digit: for a conditional model, the class to draw: its index in the model's classes; others ignore it
    Returns:
        the image, enlarged (nearest neighbour) to at least 256 pixels a side
    """
    try:
        spec, _ = sessions.resolve_spec(model, None, "noise")
        seed = gan.checks.number("the seed", _or(seed, 0), 0, MAX_SEED, integer=True)
        image = sampling.render_sample(spec, seed, truncation=float(_or(truncation, 1.0)), label=int(_or(digit, 0)))[0]
    except Exception as e:  # noqa: BLE001 - every error becomes a message
        raise _error(e) from None
    return display.enlarge(image)


def interpolate(model: str, seed_a: int = 1, seed_b: int = 2, frames: int = 8, mode: str = "slerp",
                digit_a: int = 0, digit_b: int = 1) -> Image.Image:
    """Morph one seed's image into another's with a noise-to-image GAN: the frames of the morph side by side,
    from left to right.

    Args:
        model: a model whose task is 'noise' (see list_models)
        seed_a: the seed of the first image
        seed_b: the seed of the last image
        frames: how many images, from 2 to 32
        mode: the path between the latents: 'slerp' (along the sphere where they live) or 'lerp' (a straight line)
        digit_a: the class of the first image, for a conditional model (an index in its classes); other models ignore it
        digit_b: the class of the last image, for a conditional model
    Returns:
        one image: the frames in a row, each enlarged to 128 pixels
    """
    try:
        spec, weights = sessions.resolve_spec(model, None, "noise")
        steps = gan.checks.number("the number of frames", _or(frames, 8), *FRAMES, integer=True)
        ends: dict[str, Any] = {"seed_a": gan.checks.number("seed A", _or(seed_a, 1), 0, MAX_SEED, integer=True),
                                "seed_b": gan.checks.number("seed B", _or(seed_b, 2), 0, MAX_SEED, integer=True)}
        if spec.conditional:
            ends.update(label_a=int(_or(digit_a, 0)), label_b=int(_or(digit_b, 1)))
        images = zerogpu.on_gpu(gan.interpolate, spec, steps=steps, mode=_or(mode, "slerp"), weights=weights, **ends)
    except Exception as e:  # noqa: BLE001
        raise _error(e) from None
    return display.make_grid([display.enlarge(im, FRAME_SIDE) for im in images], columns=len(images))


def translate(model: str, image: Any, resolution: str = "model") -> Image.Image:
    """Translate an image with an image-to-image GAN (Pix2Pix or CycleGAN): a horse into a zebra, a sketch into
    a digit, a photo into a painting.

    Args:
        model: a model whose task is 'translate' (see list_models)
        image: the input image, as a data URL (data:image/png;base64,...), at most about 3 MB
        resolution: 'model' (the model's own size, fast), '1024' (long side 1024 pixels) or 'full' (the input's)
    Returns:
        the translated image (enlarged to at least 256 pixels a side at the model's size)
    """
    try:
        name, weights = sessions.resolve_model(model, None, "translate")
        gan.raise_if_failing(name, weights)  # a model that just failed to load: say so before decoding anything
        loading.loaded(name, weights)  # a download holds a model-call slot for loading.LOAD_WAIT_S at most
        resolution = _or(resolution, "model")
        out = zerogpu.on_gpu(gan.translate, name, uploads.open_upload(image), weights=weights, resolution=resolution)
    except Exception as e:  # noqa: BLE001
        raise _error(e) from None
    return display.enlarge(out) if resolution == "model" else out


def project(model: str, image: Any) -> Image.Image:
    """Find the latent from which a noise-to-image GAN draws the closest match to an image (GAN inversion), and
    show the match: how well the model can draw that image. For a conditional model the class is found too.

    Args:
        model: a model whose task is 'noise' (see list_models)
        image: the image to match, as a data URL (data:image/png;base64,...), at most about 3 MB
    Returns:
        one image: the input as the model sees it (left) beside the model's closest drawing of it (right)
    """
    try:
        spec, weights = sessions.resolve_spec(model, None, "noise")
        p = zerogpu.on_gpu(gan.project, spec, uploads.open_upload(image), weights=weights)
    except Exception as e:  # noqa: BLE001
        raise _error(e) from None
    return sampling.projection_pair(p)


def verdict_text(spec: gan.registry.ModelSpec, v: gan.Verdict) -> str:
    """A verdict in plain lines: P(real) and what it means, the class, the raw score."""
    lines = [f"P(real) = {v.probability:.3f}", v.sentence]
    if v.per_class and v.label is not None:
        names = judging.class_names(spec, len(v.per_class))
        lines.append(f"Judged as: {names[v.label]}")
        lines.append("P(real) under each class: " + ", ".join(f"{n} {p:.3f}" for n, p in zip(names, v.per_class)))
    if spec.family == "pix2pix":
        lines.append("(Pix2Pix's expert judges a pair: the image as the sketch, and the model's output for it.)")
    lines.append(f"Raw score (logit): {v.logit:.3f}")
    return "\n".join(lines)


def judge(model: str, image: Any) -> str:
    """Ask a model's expert (the discriminator it was trained against) how real an image looks, and how it
    ranks among the real images the model learned from and among the model's own fakes.

    Args:
        model: a model with an expert (see list_models: 'judge' among its tools)
        image: the image to judge, as a data URL (data:image/png;base64,...), at most about 3 MB
    Returns:
        the verdict, as text: P(real), where it ranks, the class it was judged as
    """
    try:
        spec, weights = judging.expert_for(model, None)
        verdict = zerogpu.on_gpu(gan.judge, spec.name, [uploads.open_upload(image)], weights=weights)[0]
    except Exception as e:  # noqa: BLE001
        raise _error(e) from None
    return verdict_text(spec, verdict)


TOOLS = (sample, interpolate, translate, project, judge, list_models)


def tools_only(blocks: gr.Blocks) -> gr.Blocks:
    """Make the tools the app's documented API, and so its MCP tools: Gradio serves every documented event
    as a tool, and the page's own events (a slider's live updates, a model picked, a session's state) are no
    tools for an agent. Those become undocumented: still callable, by the page and by gradio_client.
    Call it before ``launch``; returns ``blocks``."""
    for fn in blocks.fns.values():
        if fn.api_visibility != "private":
            fn.api_visibility = "public" if fn.fn in TOOLS else "undocumented"
    return blocks


def check_mcp() -> None:
    """Raise SystemExit with what to install when Gradio cannot serve MCP here (without ``mcp`` Gradio only
    prints an error and starts the app without it; with mcp 2, which a bare ``pip install mcp`` brings, it
    serves no MCP either)."""
    import importlib.metadata

    fix = "pip install 'gradio[mcp]>=6,<7' (requirements.txt brings it)"
    try:
        version = importlib.metadata.version("mcp")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"--mcp needs the mcp package, which is not installed: {fix}") from None
    if int(version.split(".")[0]) != 1:
        raise SystemExit(f"--mcp needs mcp 1.x (Gradio 6 serves MCP with it), but mcp {version} is installed: {fix}")
