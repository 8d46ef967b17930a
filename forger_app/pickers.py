"""The model pickers: which registered models each tab lists, in what order, with what label, and what a model's
tab offers (a sketchpad, Pix2Pix modes, other resolutions). Whether a model's weights are here, can be
downloaded, or must be trained is ``availability``."""
from __future__ import annotations

from typing import TYPE_CHECKING

import gan
from gan.registry import ModelSpec, get_spec

if TYPE_CHECKING:
    from forger_app.sessions import Session


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


def has_sketchpad(name: str | None) -> bool:
    """The model takes a drawing (the registry's ``sketchpad``): the Translate tab shows its sketchpad."""
    try:
        return bool(name) and get_spec(name).sketchpad
    except gan.UnknownModelError:
        return False


def _spec(model: str | ModelSpec | None) -> ModelSpec | None:
    """The spec of a model picked (None for none, or for a name the registry does not know)."""
    try:
        return model if isinstance(model, ModelSpec) else get_spec(model) if model else None
    except gan.UnknownModelError:
        return None


def draws_digits(model: str | ModelSpec | None) -> bool:
    """A noise model that draws digits (one channel): "Start from my image" offers it a sketchpad, since a digit
    drawn by hand is an image of its kind (a face model is offered uploads only)."""
    spec = _spec(model)
    return spec is not None and spec.task == "noise" and spec.channels == 1


def has_modes(model: str | ModelSpec | None) -> bool:
    """The Pix2Pix modes (and their dropout seed) change this model's output: a U-Net has dropout and BatchNorm;
    a CycleGAN has neither, so every mode is the same computation for it."""
    spec = _spec(model)
    return spec is not None and spec.family == "pix2pix"


def takes_resolution(model: str | ModelSpec | None) -> bool:
    """The model translates at sizes other than its own: models that frame each input as their training data
    (the registry's ``preprocess.fit``: the digit CycleGANs) translate at model resolution only."""
    spec = _spec(model)
    return spec is not None and spec.task == "translate" and not spec.preprocess.fit


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
