"""The Train tab: its data choices, the folders training may read, the live progress line, loss plot and collapse
alarm, the weights a run exported."""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import gan
from gan.registry import get_spec

if TYPE_CHECKING:  # the page is built before torch loads
    from gan.train.diversity import Diversity


def train_start_model() -> str:
    """The model the Train tab opens with: the registry's quick one (a minute shows results), else the first
    that trains on data shipped with the package."""
    specs = gan.registry.list_specs()
    quick = [s.name for s in specs if s.quick_train] + [s.name for s in specs if s.data == "mnist-offline"]
    return quick[0] if quick else gan.list_models()[0]


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
    # the classes a model trains on by default come from its registry entry: "frog for cifar10-gan"
    cifar = [f"{' '.join(classes)} for {spec.name}" for spec in gan.registry.list_specs()
             if (classes := train_classes(spec.name, "cifar10"))]
    return [
        ("mnist-offline: 2,500 real MNIST digits bundled with the app (no download)", "mnist-offline"),
        ("mnist: torchvision download (60,000 digits)", "mnist"),
        ("cifar10: torchvision download" + (f" ({'; '.join(cifar)})" if cifar else ""), "cifar10"),
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


def diversity_plot(measures: Sequence[Diversity]) -> pd.DataFrame | None:
    """The collapse alarm's measurements as a long table (step, figure, value) for a line plot: the spread (1: as
    varied as real images) and, for the digit models, the kinds of digit read, over 10. None before the first."""
    rows: dict[str, list] = {"step": [], "figure": [], "value": []}
    for d in measures:
        figures = {"spread (1 = as varied as real)": d.spread}
        if d.classes is not None and d.histogram:
            figures[f"kinds of digit read / {len(d.histogram)}"] = d.classes / len(d.histogram)
        for name, value in figures.items():
            rows["step"].append(int(d.step))
            rows["figure"].append(name)
            rows["value"].append(float(value))
    if not rows["step"]:
        return None
    return pd.DataFrame({"step": pd.Series(rows["step"], dtype="int64"), "figure": pd.Series(rows["figure"], dtype=str),
                         "value": pd.Series(rows["value"], dtype="float64")})


def diversity_text(measures: Sequence[Diversity]) -> str:
    """A line under the diversity plot: the latest figure, the class histogram for the digit models, and the
    collapse alarm in plain words while it is on."""
    if not measures:
        return ""
    d = measures[-1]
    digits = "" if d.histogram is None else " Digits read: " + ", ".join(
        f"{i} ×{n}" for i, n in enumerate(d.histogram) if n) + "."
    if d.alarm:
        return f"⚠️ **{d.alarm}**{digits}"
    return (f"Diversity at step {d.step}: the samples are **{d.spread:.0%}** as varied as real images "
            f"(distances in {d.space}).{digits}")
