"""Forger: the classic GANs, ready to sample, interpolate, translate and train.

The public API (the app, the docs and the tests use these names as the contract)::

    >>> import gan
    >>> gan.list_models()[:2]
    ['mnist-gan', 'mnist-dcgan']
    >>> face = gan.sample("dcgan-faces", seed=3)[0]          # a PIL image
    >>> strip = gan.interpolate("mnist-dcgan", 1, 2, steps=8, label_a=3, label_b=8)
    >>> digit = gan.translate("pix2pix-sketch2digit", "sketch.png")
"""
from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from gan import checks, data as _data, hardware, latent, serving, translation, weights as _weights
from gan.models import family_module, pix2pix
from gan.registry import ModelSpec, UnknownModelError, get_spec, list_specs
from gan.weights import CheckpointMismatchError, WeightsUnavailableError
from gan.expert import Verdict, judge  # noqa: E402 - the expert uses the API below lazily
from gan.projection import Projection, project  # noqa: E402 - the projector uses the API below lazily

__all__ = [
    "list_models", "model_info", "load_generator", "load_discriminator", "sample", "interpolate", "translate",
    "translate_folder", "translate_video", "export_model",
    "generate", "prepare", "slider_directions", "load_image", "to_images", "preprocess", "judge", "Verdict",
    "project", "Projection", "UnknownModelError", "WeightsUnavailableError", "CheckpointMismatchError",
]

MAX_PIXELS = checks.MAX_PIXELS  # larger images are refused from their header, before decoding


def _spec(model: str | ModelSpec) -> ModelSpec:
    """A model's spec: looked up once per call, and passed down (a ModelSpec is taken as it is)."""
    return model if isinstance(model, ModelSpec) else get_spec(model)


def list_models(family: str | None = None, task: str | None = None) -> list[str]:
    """Registered model names, optionally only one family ('dcgan', 'cyclegan', ...) or task ('noise', 'translate')."""
    return [s.name for s in list_specs(family, task)]


def model_info(name: str) -> dict[str, Any]:
    """Everything the registry knows about a model, plus whether its weights are available offline."""
    spec = get_spec(name)
    return {
        "name": spec.name, "family": spec.family, "task": spec.task, "description": spec.description,
        "image_size": spec.image_size, "channels": spec.channels, "latent_dim": spec.latent_dim,
        "classes": list(spec.classes), "licence": spec.licence, "reverse": spec.reverse or None,
        "sources": [s.describe() for s in spec.sources],
        "offline": any(_weights.is_cached(s) for s in spec.sources),
        "train_command": spec.train_command(),
    }


def _build(spec: ModelSpec, config: dict[str, Any] | None = None) -> nn.Module:
    """The generator of ``spec``, with a weights file's own constructor arguments checked first."""
    cls = family_module(spec.family).Generator
    kwargs = (config or {}).get("generator")
    if kwargs is None:
        return cls(**spec.generator)
    return cls(**_weights.check_kwargs(cls, kwargs, spec.generator, f"{spec.name} config"))


def load_generator(name: str, *, weights: str | Path | None = None, pretrained: bool = True,
                   device: str | torch.device = "cpu") -> nn.Module:
    """The generator of ``name`` in eval mode, in float32 on ``device``.

    Args:
        name: a registered model name (see ``list_models``).
        weights: a local file or folder in any supported format (ours, an official CycleGAN /
            pix2pix .pth, a DCGAN-tutorial checkpoint); default: the registry's sources in order.
        pretrained: False gives a freshly initialised model, with no download.
        device: where to put the model.

    Example:
        >>> g = gan.load_generator("dcgan-faces")
        >>> g(torch.randn(4, 100)).shape
        torch.Size([4, 3, 64, 64])
    """
    spec = get_spec(name)
    if not pretrained:
        return _build(spec).eval().to(device)
    loaded = _weights.read_weights(weights) if weights is not None else _weights.resolve(spec)
    family = loaded.config.get("family", spec.family)
    if family != spec.family:
        raise CheckpointMismatchError(f"{loaded.origin} holds a {family!r} model, but {name!r} is a {spec.family!r} model")
    model = _build(spec, loaded.config)
    _weights.load_state(model, loaded.state, what=f"{name} generator ({loaded.origin})")
    return model.eval().to(device)


def load_discriminator(name: str, *, weights: str | Path | None = None, pretrained: bool = False,
                       device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator of ``name`` in eval mode; freshly initialised unless ``pretrained``.

    Pretrained discriminators come only from our weights folders that hold discriminator.safetensors
    (``python -m gan train`` writes one); the official checkpoints ship generators only.
    """
    spec = get_spec(name)
    model = family_module(spec.family).Discriminator(**spec.discriminator)
    if pretrained:
        path = _weights.discriminator_file(name, weights)
        if not path.exists():
            raise WeightsUnavailableError(f"no discriminator weights for {name!r} at {path}; train one with: "
                                          f"{spec.train_command()}")
        _weights.load_state(model, _weights.read_state_file(path), what=f"{name} discriminator ({path})")
    return model.eval().to(device)


# ---------------------------------------------------------------------------- serving

MAX_SERVED = 16  # models kept loaded; the least recently used is dropped beyond this
_served: collections.OrderedDict[tuple[str, str | None], serving.Served] = collections.OrderedDict()
_served_lock = threading.Lock()  # guards the dict only: never held while a model loads
_load_locks: dict[tuple[str, str | None], threading.Lock] = {}
# A model whose weights could not be found is not tried again for a while: 30 s, doubling to 15 min.
FAILURE_BACKOFF_S = (30.0, 900.0)
_failed: dict[tuple[str, str | None], tuple[float, int, str]] = {}  # key -> (retry after, failures, message)


def _probe(spec: ModelSpec) -> Callable[[int, tuple], tuple]:
    """The deterministic input every serving path of ``spec`` is measured and checked on."""
    def probe(batch: int, like: tuple) -> tuple:
        if spec.task == "noise":
            z = latent.seeded_latents(0, batch, spec.latent_dim)
            labels = like[1] if len(like) > 1 else None
            if labels is None:
                return (z,) + ((None,) if len(like) > 1 else ())
            ids = torch.arange(batch) % len(spec.classes)
            return z, (nn.functional.one_hot(ids, len(spec.classes)).float() if labels.is_floating_point() else ids)
        shape = like[0].shape[1:]  # (C, H, W): smooth random images, like photos and drawings
        small = torch.rand(batch, shape[0], 8, 8, generator=torch.Generator().manual_seed(0))
        return (nn.functional.interpolate(small, size=tuple(shape[1:]), mode="bilinear") * 2 - 1,)
    return probe


def _is_served(name: str, weights: str | Path | None) -> bool:
    """Whether (name, weights) is loaded already (no lock, no loading)."""
    return (name, None if weights is None else str(weights)) in _served


def _serving_generator(name: str, weights: str | Path | None) -> serving.Served:
    """The served generator of (name, weights), loaded once and shared: loading one model never
    waits for another, and two users never race on one 'current model'."""
    key = (name, None if weights is None else str(weights))
    with _served_lock:
        if key in _served:
            _served.move_to_end(key)
            return _served[key]
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:
        with _served_lock:
            if key in _served:
                return _served[key]
            failed = _failed.get(key)
        if failed is not None and time.monotonic() < failed[0]:
            raise WeightsUnavailableError(failed[2])
        spec = get_spec(name)
        device = hardware.serving_device()
        try:
            model = load_generator(name, weights=weights, device=device)
        except WeightsUnavailableError as e:
            count = 1 if failed is None else failed[1] + 1
            wait = min(FAILURE_BACKOFF_S[0] * 2 ** (count - 1), FAILURE_BACKOFF_S[1])
            with _served_lock:
                _failed[key] = (time.monotonic() + wait, count, str(e))
            raise
        with _served_lock:
            _failed.pop(key, None)
        label = name if weights is None else f"{name}@{Path(str(weights)).name}"
        served = serving.Served(model, device, label, _probe(spec), accuracy_batch=16 if spec.task == "noise" else 1)
        with _served_lock:
            _served[key] = served
            while len(_served) > MAX_SERVED:
                _served.popitem(last=False)
        return served


def raise_if_failing(name: str, weights: str | Path | None = None) -> None:
    """Raise at once the error of a model whose weights recently failed to load (its backoff has not
    ended), so a caller can refuse before any work (decoding an upload); otherwise do nothing."""
    with _served_lock:
        failed = _failed.get((name, None if weights is None else str(weights)))
    if failed is not None and time.monotonic() < failed[0]:
        raise WeightsUnavailableError(failed[2])


def is_served(name: str, weights: str | Path | None = None) -> bool:
    """Whether ``name`` (with these weights) is loaded and served in this process: nothing is probed."""
    return (name, None if weights is None else str(weights)) in _served


def clear_serving_cache() -> None:
    """Forget every loaded model, its in-memory path choices and remembered load failures (the disk cache stays)."""
    with _served_lock:
        _served.clear()
        _load_locks.clear()
        _failed.clear()
    _directions.cache_clear()


def _probe_like(spec: ModelSpec) -> tuple:
    """Inputs of batch 1 shaped like the ones ``spec``'s generator is served."""
    if spec.task == "noise":
        return torch.zeros(1, spec.latent_dim), (torch.zeros(1, dtype=torch.long) if spec.conditional else None)
    size = spec.preprocess.size
    return (torch.zeros(1, spec.preprocess.channels, size, size),)


def serving_choice(name: str, *, weights: str | Path | None = None) -> serving.Choice:
    """Which path serves ``name`` on this machine (at model resolution), and why; measured now if not known.
    One choice serves every batch size: each image is computed alone (``gan.serving``)."""
    return _serving_generator(name, weights).choice(_probe_like(get_spec(name)))


def prepare(name: str, *, weights: str | Path | None = None) -> None:
    """Load ``name`` and start choosing its serving path in the background (on the compute thread, between
    requests): a server calls this at start for its default model, so no click waits on the measurement."""
    served = _serving_generator(name, weights)
    served.choice(_probe_like(get_spec(name)), wait=False)


def to_images(x: torch.Tensor) -> list[Image.Image]:
    """(B, C, H, W) in [-1, 1] -> PIL images ('L' for one channel, 'RGB' for three)."""
    arr = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    arr = arr.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB") for a in arr]


def _labels(spec: ModelSpec, label: int | Sequence[int] | None, n: int) -> torch.Tensor | None:
    if not spec.conditional:
        if label is not None:
            raise ValueError(f"{spec.name!r} is not conditional; it takes no label")
        return None
    k = len(spec.classes)
    labels = torch.arange(n) % k if label is None else torch.as_tensor(
        [label] * n if isinstance(label, int) else list(label), dtype=torch.long)
    if labels.shape != (n,) or labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"label must be an int in 0..{k - 1} or a list of {n} of them, got {label!r}")
    return labels


def _load_recording(name: str, weights: str | Path | None, errors: list[BaseException]) -> None:
    """``_serving_generator(name, weights)`` as the target of a loading thread: its exception goes to
    ``errors``, for the thread that waits on the load to raise."""
    try:
        _serving_generator(name, weights)
    except BaseException as e:  # noqa: BLE001 - raised again by whoever waits for the load
        errors.append(e)


def _load_on_own_thread(name: str, weights: str | Path | None) -> None:
    """``_serving_generator(name, weights)`` on a thread of its own, waiting for it: loading runs torch
    ops, and a thread that runs them keeps an OpenMP team for as long as it lives (see
    ``gan.serving.compute_thread``); this one ends with the load."""
    errors: list[BaseException] = []
    thread = threading.Thread(target=_load_recording, args=(name, weights, errors), name=f"forger-load {name}",
                              daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _on_compute_thread(fn: Callable) -> Callable:
    """Run a noise->image call on the CPU's one compute thread (``gan.serving.compute_thread``: one
    OpenMP team in a server, not one per request thread). Its model is loaded first, outside that
    thread, so a download blocks only the request that needs it."""

    @functools.wraps(fn)
    def wrapper(name: str | ModelSpec, *args: Any, **kwargs: Any) -> Any:
        if not serving.compute_thread_wanted():  # first: the cheapest test, and the main thread's answer
            return fn(name, *args, **kwargs)
        spec = _spec(name)
        if spec.task != "noise" or hardware.serving_device().type != "cpu":
            return fn(name, *args, **kwargs)
        if not _is_served(spec.name, kwargs.get("weights")):
            _load_on_own_thread(spec.name, kwargs.get("weights"))
        return serving.compute_thread(fn, name, *args, **kwargs)

    return wrapper


@_on_compute_thread
def generate(name: str | ModelSpec, z: torch.Tensor, labels: torch.Tensor | None = None, *,
             weights: str | Path | None = None, precision: str | None = None) -> torch.Tensor:
    """Run the served generator of ``name`` on latents ``z`` (B, latent_dim); images in [-1, 1], on the CPU.

    ``precision``: None or 'auto' serves the path measured fastest within the accuracy bound
    (``gan.serving``); 'fp32' is eager fp32, 'bf16' the bf16 path; ``FORGER_PRECISION`` sets the default.
    """
    return _generate(_spec(name), z, labels, weights, precision)


def _generate(spec: ModelSpec, z: torch.Tensor, labels: torch.Tensor | None, weights: str | Path | None,
              precision: str | None, finite: bool = False) -> torch.Tensor:
    """``generate`` with the spec looked up; ``finite``: z is known finite (seeded latents), skip that check."""
    if spec.task != "noise":
        raise ValueError(f"{spec.name!r} is a translator; use gan.translate")
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.dim() != 2 or z.shape[1] != spec.latent_dim or not 1 <= z.shape[0] <= checks.MAX_IMAGES:
        raise ValueError(f"latents must be shaped (n, {spec.latent_dim}) with n from 1 to {checks.MAX_IMAGES}, "
                         f"got {tuple(z.shape)}")
    if not finite and not torch.isfinite(z).all():
        raise ValueError("latents must be finite numbers (no NaN or infinity)")
    return _serving_generator(spec.name, weights)(z, labels, precision=precision)


@functools.lru_cache(maxsize=32)
def _directions(name: str, weights: str | None, k: int) -> torch.Tensor:
    spec = get_spec(name)
    if spec.latent_dim <= 32:
        return torch.eye(spec.latent_dim)  # small latents: one slider per raw dimension
    return latent.pca_directions(_serving_generator(name, weights).eager, k=k)


def slider_directions(name: str, k: int = 10, *, weights: str | Path | None = None) -> torch.Tensor:
    """Latent directions for sliders, (S, latent_dim): the raw dimensions for latents of size <= 32,
    else the top-k GANSpace directions. Computed once per model."""
    return _directions(name, None if weights is None else str(weights), k)


@_on_compute_thread
def sample(name: str | ModelSpec, seed: int = 0, n: int = 1, *, z: torch.Tensor | None = None,
           label: int | Sequence[int] | None = None, truncation: float = 1.0,
           edits: Sequence[float] | None = None, weights: str | Path | None = None,
           precision: str | None = None) -> list[Image.Image]:
    """``n`` images from a noise->image model. The same seed gives the same images on any machine.

    Args:
        name: a noise->image model.
        seed: the random seed of the latents.
        n: how many images.
        z: explicit latents (n, latent_dim) instead of the seed.
        label: conditional models: one class index, or one per image (default: 0, 1, 2, ...).
        truncation: scale of the latents; < 1 trades variety for quality.
        edits: slider values, one per row of ``slider_directions(name)``, added along those directions.
        weights: use these weights instead of the registry's.
        precision: the serving path: None / 'auto' (measured), 'fp32', 'bf16' or a path of ``gan.serving``.

    Example:
        >>> gan.sample("mnist-dcgan", seed=1, n=4, label=7)
    """
    spec = _spec(name)
    name = spec.name
    truncation = checks.number("truncation", truncation, 0.0, checks.MAX_TRUNCATION)
    seeded = z is None
    if seeded:
        seed = checks.number("seed", seed, 0, checks.MAX_SEED, integer=True)
        n = checks.number("n", n, 1, checks.MAX_IMAGES, integer=True)
        z = latent.seeded_latents(seed, n, spec.latent_dim, truncation)
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.numel() % spec.latent_dim or z.numel() == 0:
        raise ValueError(f"z must hold latents of size {spec.latent_dim}, got shape {tuple(z.shape)}")
    z = z.reshape(-1, spec.latent_dim)
    if edits is not None:
        edits = [checks.number(f"slider {i + 1}", e, -checks.MAX_EDIT, checks.MAX_EDIT) for i, e in enumerate(edits)]
    if edits:
        if any(edits):
            dirs = slider_directions(name, weights=weights)
            e = torch.as_tensor(edits, dtype=torch.float32)[: dirs.shape[0]]
            z = z + e @ dirs[: e.shape[0]]
    finite = seeded and not edits  # seeded latents are finite; user latents and edits are checked
    return to_images(_generate(spec, z, _labels(spec, label, z.shape[0]), weights, precision, finite))


def _end_latent(spec: ModelSpec, what: str, seed: int | None, z: Any, truncation: float) -> torch.Tensor:
    """One end of an interpolation, (latent_dim,): the latent of ``seed``, or the given latent ``z``."""
    if z is None:
        seed = checks.number(what, seed, 0, checks.MAX_SEED, integer=True)
        return latent.seeded_latents(seed, 1, spec.latent_dim, truncation)[0]
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.numel() != spec.latent_dim or not torch.isfinite(z).all():
        raise ValueError(f"the latent of {what[-1]} must hold {spec.latent_dim} finite numbers, got shape "
                         f"{tuple(z.shape)}")
    return z.reshape(spec.latent_dim)  # as gan.sample: truncation scales seeded latents, a given one is used as it is


@_on_compute_thread
def interpolate(name: str | ModelSpec, seed_a: int | None = None, seed_b: int | None = None, steps: int = 8, *,
                mode: str = "slerp", label_a: int | None = None, label_b: int | None = None,
                truncation: float = 1.0, z_a: Any = None, z_b: Any = None,
                weights: str | Path | None = None, precision: str | None = None) -> list[Image.Image]:
    """Frames from A to B (and, for conditional models, from digit A to digit B). Each end is a seed, or
    a latent (``z_a`` / ``z_b``, e.g. ``gan.project(...).z``: morph one's own 3 into one's own 8);
    ``truncation`` scales the seeded ends only, as in ``gan.sample``.

    Example:
        >>> frames = gan.interpolate("mnist-dcgan", 1, 2, steps=8, label_a=3, label_b=8)
        >>> a, b = gan.project("mnist-dcgan", "my_3.png"), gan.project("mnist-dcgan", "my_8.png")
        >>> frames = gan.interpolate("mnist-dcgan", z_a=a.z, z_b=b.z, label_a=a.label, label_b=b.label)
    """
    spec = _spec(name)
    name = spec.name
    steps = checks.number("steps", steps, 2, checks.MAX_FRAMES, integer=True)
    truncation = checks.number("truncation", truncation, 0.0, checks.MAX_TRUNCATION)
    za = _end_latent(spec, "seed A", seed_a, z_a, truncation)
    zb = _end_latent(spec, "seed B", seed_b, z_b, truncation)
    z = latent.interpolation_path(za, zb, steps, mode)
    labels = None
    if spec.conditional:
        a, b = (_labels(spec, lab if lab is not None else 0, 1)[0] for lab in (label_a, label_b))
        k = len(spec.classes)
        t = torch.linspace(0, 1, steps)[:, None]
        labels = (1 - t) * nn.functional.one_hot(a, k).float() + t * nn.functional.one_hot(b, k).float()
    elif label_a is not None or label_b is not None:
        raise ValueError(f"{name!r} is not conditional; it takes no labels")
    return to_images(_generate(spec, z, labels, weights, precision))


# ---------------------------------------------------------------------------- translation


BIG_IMAGE_PIXELS = 4_000_000  # images larger than this are decoded and prepared at most two at a time
_big_images = threading.BoundedSemaphore(2)


@contextlib.contextmanager
def _image_slot(img: Image.Image):
    """Hold one of the two slots for big images while ``img`` is decoded and prepared: bounded memory
    whatever the number of requests."""
    if img.width * img.height <= BIG_IMAGE_PIXELS:
        yield
        return
    with _big_images:
        yield


def _open(source: str | Path | bytes | Image.Image | np.ndarray) -> Image.Image:
    """Open ``source`` without decoding its pixels, and refuse it from its header if it is too large."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or source.size == 0:
            raise ValueError(f"an image array must be (H, W) or (H, W, C), got shape {source.shape}")
        if source.shape[0] * source.shape[1] > MAX_PIXELS:
            raise ValueError(f"image is {source.shape[1]}x{source.shape[0]}; the limit is "
                             f"{MAX_PIXELS // 1_000_000} megapixels, please downscale it")
        arr = source if source.dtype == np.uint8 else np.clip(np.nan_to_num(source), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    elif isinstance(source, (str, Path, bytes)):
        name = "the image" if isinstance(source, bytes) else Path(source).name
        if not isinstance(source, bytes):
            try:
                mode = os.stat(source).st_mode
            except OSError:
                raise ValueError(f"{name}: no such file") from None
            if not stat.S_ISREG(mode):  # a FIFO or a device would hold the reader forever
                raise ValueError("that path is not a regular file: give an image file")
        try:
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except Image.DecompressionBombError:
            raise ValueError(f"{name} is too large to process; please downscale it") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            reason = "not a known image format" if isinstance(e, UnidentifiedImageError) else type(e).__name__
            raise ValueError(f"{name} is not a readable image ({reason})") from None
    else:
        raise ValueError(f"expected an image (PIL image, file path, bytes or array), got {type(source).__name__}")
    if img.width * img.height > MAX_PIXELS:
        raise ValueError(f"image is {img.width}x{img.height}; the limit is {MAX_PIXELS // 1_000_000} megapixels, "
                         f"please downscale it")
    if img.width < 1 or img.height < 1:
        raise ValueError("the image is empty (0 pixels)")
    return img


def _decode(img: Image.Image) -> Image.Image:
    """Decode the first frame of an opened image, EXIF rotation applied."""
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"the image could not be decoded ({type(e).__name__}: it may be truncated or "
                         f"corrupt)") from None
    return ImageOps.exif_transpose(img) or img


def load_image(source: str | Path | bytes | Image.Image | np.ndarray) -> Image.Image:
    """Open anything image-like as a PIL image (first frame of animations, EXIF rotation applied).

    Raises ValueError with a clear message (which never shows a server path) for anything that is not
    a readable image, is not a regular file, or has more than ``MAX_PIXELS`` pixels (checked from the
    header, before decoding).
    """
    img = _open(source)
    with _image_slot(img):
        return _decode(img)


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any mode -> 'L' or 'RGB': transparency onto white, 16-bit and float scaled, CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32))
        if img.mode.startswith("I;16") or arr.max() > 255:
            top = 65535.0
        elif img.mode == "F" and arr.min() >= 0 and arr.max() <= 1.0:
            top = 1.0  # a float image in [0, 1], as scientific TIFFs store them
        else:
            top = 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def _output_size(width: int, height: int, model_size: int, cap: int = 1024) -> tuple[int, int]:
    """The input's aspect ratio, long side between the model's size and ``cap``."""
    long_side = min(max(width, height, model_size), cap)
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def preprocess(name: str, image: Any) -> torch.Tensor:
    """One image -> the translator's input (C, S, S), as the registry's ``Preprocess`` says: mode,
    centre crop, resize, light-background inversion, MNIST-style digit framing, normalisation."""
    img = _open(image)
    with _image_slot(img):
        return _prepare(get_spec(name), _decode(img))


def _prepare(spec: ModelSpec, img: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The model input (C, H, W): at the model's size (S, S), or at ``size`` (width, height) for full resolution.

    The resize is PIL's bicubic without ``reducing_gap``, as torchvision's ``Resize`` in the official
    ``get_transform``, so the input equals the official one at every size."""
    pre = spec.preprocess
    img = _to_mode(img, pre.channels)
    if pre.crop == "center":
        img = ImageOps.fit(img, (min(img.size),) * 2)
    size = (pre.size, pre.size) if size is None else size
    if not pre.fit and img.size != size:  # fit_digit resizes from the full image instead
        img = img.resize(size, Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()) / 255.0
    x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)  # (C, H, W)
    if pre.invert_light and x.mean() > 0.5:
        x = 1.0 - x  # a dark drawing on light paper -> light strokes on black, like the training data
    if pre.fit:
        x = _data.fit_digit(x, pre.fit, pre.size)
    return (x - pre.mean) / pre.std


_full_runs = threading.BoundedSemaphore(1)  # one large full-resolution translation at a time: bounded memory


def translate(name: str, image: Any, *, weights: str | Path | None = None, precision: str | None = None,
              resolution: str | int = "model", mode: str = "deterministic", seed: int = 0,
              progress: translation.Progress | None = None) -> Image.Image:
    """Translate one image with a Pix2Pix or CycleGAN model; any size or mode in.

    Args:
        name: a translator (see ``list_models(task="translate")``).
        image: a path, bytes, PIL image or array.
        weights: use these weights instead of the registry's.
        precision: the serving path at model resolution (see ``gan.sample``); other resolutions run eager fp32.
        resolution: 'model' translates at the model's size (256x256 for the official models) and returns the
            input's aspect ratio, long side up to 1024; 'full' translates at the input's own size (a CycleGAN
            whole, a Pix2Pix U-Net in feathered tiles; at most ``checks.MAX_TRANSLATE_PIXELS``); a number N
            translates at long side N.
        mode: Pix2Pix only (a CycleGAN has no dropout nor running statistics): 'deterministic' (image
            statistics, no dropout), 'paper' (the official test.py: image statistics, dropout on, seeded by
            ``seed``) or 'eval' (the official test.py --eval: running statistics, no dropout).
        seed: the dropout seed of mode 'paper'.
        progress: called with (tiles done, tiles in all) while a full-resolution translation runs.

    Example:
        >>> gan.translate("cyclegan-horse2zebra", "horse.jpg", resolution="full").save("zebra.jpg")
    """
    spec = get_spec(name)
    if spec.task != "translate":
        raise ValueError(f"{name!r} is a noise->image model; use gan.sample")
    resolution = translation.check_resolution(resolution)
    mode = translation.check_mode(spec, mode)
    seed = checks.number("seed", seed, 0, checks.MAX_SEED, integer=True)
    if resolution != "model" and spec.preprocess.fit:
        raise ValueError(f"{name!r} frames each digit as MNIST does, in {spec.preprocess.size}x"
                         f"{spec.preprocess.size}: it translates at model resolution only")
    img = _open(image)
    with _image_slot(img):
        img = _decode(img)
        width, height = img.size
        size = None if resolution == "model" else translation.target_size(width, height, resolution)
        x = _prepare(spec, img, size)[None]  # (1, C, S, S) or (1, C, H, W)
        del img
    served = _serving_generator(name, weights)
    model = served.eager
    if mode != "deterministic" and spec.family == "pix2pix":
        model = pix2pix.with_mode(served.eager, mode, seed)
    if resolution == "model":
        if model is served.eager:
            y = served(x, precision=precision)
        else:
            with torch.inference_mode():
                y = model(x.to(served.device)).cpu()
        return to_images(y)[0].resize(_output_size(width, height, spec.preprocess.size), Image.Resampling.BICUBIC)
    big = x.shape[-1] * x.shape[-2] > BIG_IMAGE_PIXELS // 4
    with _full_runs if big else contextlib.nullcontext():
        y = translation.run_full(model, spec, x, progress=progress)
    return to_images(y)[0]


def translate_folder(name: str, folder: str | Path, output: str | Path, *,
                     progress: translation.Progress | None = None, **options: Any) -> tuple[list[Path], dict[str, str]]:
    """Translate every image directly inside ``folder`` (at most ``checks.MAX_FOLDER_IMAGES``) into
    ``output``/<name>.png; ``options`` as for ``translate``. Returns (files written, {file name: error})
    for the images that could not be translated; ``progress`` gets (images done, images in all).

    Example:
        >>> written, failed = gan.translate_folder("cyclegan-horse2zebra", "horses/", "zebras/", resolution="full")
    """
    folder, output = Path(folder), Path(output)
    files = translation.list_images(folder)
    get_spec(name)  # an unknown model fails before any folder is made
    if output.resolve() == folder.resolve():
        raise ValueError("the output folder must differ from the input folder")
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    failed: dict[str, str] = {}
    for i, path in enumerate(files):
        try:
            out = output / f"{path.stem}.png"
            translate(name, path, **options).save(out)
            written.append(out)
        except ValueError as e:  # a bad image is reported, and the others are translated
            failed[path.name] = str(e)
        if progress is not None:
            progress(i + 1, len(files))
    return written, failed


def translate_video(name: str, source: str | Path, output: str | Path, *, max_frames: int | None = None,
                    progress: translation.Progress | None = None, **options: Any) -> int:
    """Translate a video (mp4, webm, mov, mkv, avi: needs imageio and imageio-ffmpeg) or an animated GIF
    frame by frame into ``output`` (.mp4 or .gif), at the source's frame rate; ``options`` as for
    ``translate``. At most ``max_frames`` frames (default and limit: ``checks.MAX_VIDEO_FRAMES``), checked
    from the header before decoding. Returns the number of frames written.

    Example:
        >>> gan.translate_video("cyclegan-horse2zebra", "horse.mp4", "zebra.mp4")
    """
    source, output = Path(source), Path(output)
    spec = get_spec(name)
    if spec.task != "translate":
        raise ValueError(f"{name!r} is a noise->image model; use gan.sample")
    limit = checks.MAX_VIDEO_FRAMES if max_frames is None else \
        checks.number("max_frames", max_frames, 1, checks.MAX_VIDEO_FRAMES, integer=True)
    frames, fps, count = translation.read_video(source, limit)

    def translated():
        for i, frame in enumerate(frames):
            yield translate(name, frame, **options)
            if progress is not None:
                progress(i + 1, count or 0)
    return translation.write_video(output, translated(), fps)


# ---------------------------------------------------------------------------- export


def export_model(name: str, path: str | Path, *, format: str = "onnx", weights: str | Path | None = None,
                 pretrained: bool = True, mode: str = "deterministic", verify: bool = True) -> tuple[Path, float | None]:
    """Write the generator of ``name`` as ONNX or TorchScript, with a dynamic batch (and, for translators,
    dynamic height and width), and check the file against PyTorch fp32 (onnxruntime for ONNX).

    Returns (path, the largest absolute difference from PyTorch, None if not checked). ``mode``: a
    Pix2Pix's 'deterministic' or 'eval' behaviour (see ``translate``). See ``gan.export``.

    Example:
        >>> gan.export_model("cyclegan-digits2mnist", "digits2mnist.onnx")
    """
    from gan import export as _export

    spec = get_spec(name)
    model = load_generator(name, weights=weights, pretrained=pretrained)
    return _export.export(model, spec, path, format, mode=mode, verify=verify)
