"""The Sample tab: its latent sliders, a seed rendered with slider edits, and a latent projected from the
user's own image (a ``Start``) that the sliders then edit."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import gan
from forger_app import zerogpu
from forger_app.display import DISPLAY_SIDE, enlarge, make_grid
from gan.registry import ModelSpec, get_spec

MAX_SLIDERS = 32  # the app creates this many latent sliders and shows the ones a model uses
GANSPACE_K = 10  # GANSpace directions shown for large latents (gan.sample's ``edits`` use this many)


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
    return zerogpu.on_gpu(gan.sample, spec, seed=int(seed), n=n, z=latents, label=label, truncation=float(truncation),
                  edits=edits, weights=weights)


@dataclass(frozen=True)
class Start:
    """A latent of the user's own, which the Sample tab's sliders then edit: projected from their image, or
    uploaded as a .npy (``forger_app.latents``).

    It holds while the tab shows the model and seed it was made under: another model or seed leaves it."""

    model_key: str  # the dropdown value it was projected with
    seed: int  # the seed box's value then
    z: tuple[float, ...]  # the latent
    label: int | None  # conditional models: the class found
    psnr: float | None  # how close the reconstruction came, in dB; None: a latent uploaded as a .npy


def start_status(start: Start) -> str:
    """The Sample tab's status while it shows a latent of the user's own."""
    what = ("**your latent** (uploaded)" if start.psnr is None else
            f"**your image** (projected, {start.psnr:.1f} dB from it)")
    return f"Editing {what}: the sliders and truncation move its latent. Type another seed to leave it."


def start_for(start: Any, model_key: str, seed: int) -> Start | None:
    """The projected latent to render for (model, seed), or None: render the seed's own latent."""
    if isinstance(start, Start) and start.model_key == model_key and start.seed == seed:
        return start
    return None


def projection_pair(p: gan.Projection) -> Image.Image:
    """The input (as the model sees it) beside its reconstruction, enlarged for display (one image: the MCP tool's)."""
    return enlarge(make_grid([p.target, p.reconstruction], columns=2), 2 * DISPLAY_SIDE)


def projection_slider(p: gan.Projection) -> tuple[Image.Image, Image.Image]:
    """The input (as the model sees it) and its reconstruction, enlarged for display: before and after, for the
    Sample tab's image slider."""
    return enlarge(p.target), enlarge(p.reconstruction)


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
