"""The public API's functions (``gan/__init__.py`` re-exports them, with the other public names, lazily)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from gan import checks, latent, serving, weights as _weights
from gan.images import to_images
from gan.models import family_module
from gan.registry import ModelSpec, as_spec, get_spec
from gan.weights import CheckpointMismatchError, WeightsUnavailableError

MAX_PIXELS = checks.MAX_PIXELS  # larger images are refused from their header, before decoding


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
        return _weights.build_generator(spec).eval().to(device)
    loaded = _weights.read_weights(weights) if weights is not None else _weights.resolve(spec)
    family = loaded.config.get("family", spec.family)
    if family != spec.family:
        raise CheckpointMismatchError(f"{loaded.origin} holds a {family!r} model, but {name!r} is a {spec.family!r} model")
    model = _weights.build_generator(spec, loaded.config)
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


# ---------------------------------------------------------------------------- noise -> image


@serving.on_compute_thread
def generate(name: str | ModelSpec, z: torch.Tensor, labels: torch.Tensor | None = None, *,
             weights: str | Path | None = None, precision: str | None = None) -> torch.Tensor:
    """Run the served generator of ``name`` on latents ``z`` (B, latent_dim); images in [-1, 1], on the CPU.

    ``precision``: None or 'auto' serves the path measured fastest within the accuracy bound
    (``gan.serving``); 'fp32' is eager fp32, 'bf16' the bf16 path; ``FORGER_PRECISION`` sets the default.
    """
    return serving.run_generator(as_spec(name), z, labels, weights, precision)


def slider_directions(name: str, k: int = 10, *, weights: str | Path | None = None) -> torch.Tensor:
    """Latent directions for sliders, (S, latent_dim): the raw dimensions for latents of size <= 32,
    else the top-k GANSpace directions. Computed once per model."""
    return serving.directions(name, None if weights is None else str(weights), k)


@serving.on_compute_thread
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
    spec = as_spec(name)
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
    return to_images(serving.run_generator(spec, z, latent.class_labels(spec, label, z.shape[0]), weights, precision, finite))


@serving.on_compute_thread
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
    spec = as_spec(name)
    name = spec.name
    steps = checks.number("steps", steps, 2, checks.MAX_FRAMES, integer=True)
    truncation = checks.number("truncation", truncation, 0.0, checks.MAX_TRUNCATION)
    za = latent.end_latent(spec, "seed A", seed_a, z_a, truncation)
    zb = latent.end_latent(spec, "seed B", seed_b, z_b, truncation)
    z = latent.interpolation_path(za, zb, steps, mode)
    labels = None
    if spec.conditional:
        a, b = (latent.class_labels(spec, lab if lab is not None else 0, 1)[0] for lab in (label_a, label_b))
        k = len(spec.classes)
        t = torch.linspace(0, 1, steps)[:, None]
        labels = (1 - t) * nn.functional.one_hot(a, k).float() + t * nn.functional.one_hot(b, k).float()
    elif label_a is not None or label_b is not None:
        raise ValueError(f"{name!r} is not conditional; it takes no labels")
    return to_images(serving.run_generator(spec, z, labels, weights, precision))


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
