"""Projection: find the latent (and, for conditional models, the label) whose image is closest to a given one.

``project(name, image)`` optimises z by Adam from several seeded starts at once (for a conditional model,
every start under every class, all in one batch), drops the worse candidates along the way, and keeps the
best. The loss needs no download: pixels (at full and half resolution), plus, for digit models, the
features of the bundled digit classifier, and a weak Gaussian prior that keeps z where the generator was
trained, so that the sliders still edit a plausible image. Same image, same seed: same latent.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gan import checks, latent
from gan.registry import ModelSpec, as_spec

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)

# channels -> default (steps, starts): measured in benchmarks/projection.py against the time targets (3 s for
# 28x28 digits, whose 10 classes are searched at once; 10 s for 64x64 RGB faces, which need more steps)
DEFAULTS = {1: (120, 4), 3: (300, 4)}
KEEP = 2  # candidates still optimised after the first PRUNE_AT of the steps
PRUNE_AT = 0.25
LR = 0.08  # Adam's step on z, cosine-decayed to 5% of it
PRIOR = 2e-4  # weight of the Gaussian prior, mean(z^2), against the pixel loss
FEATURES = 0.05  # digit models: weight of the classifier-feature loss


@dataclass
class Projection:
    """What ``gan.project`` found for one image."""

    z: torch.Tensor  # (latent_dim,) the latent; gan.sample(name, z=z[None], label=label) redraws the reconstruction
    label: int | None  # conditional models: the class found (or the one given)
    reconstruction: Image.Image  # the generator's image of (z, label), at the model's size
    target: Image.Image  # the input as the model sees it (mode, crop, size; digits framed as MNIST)
    distance: float  # root-mean-square pixel difference between the two, in [0, 1] (0: identical)
    psnr: float  # the same difference as a peak signal-to-noise ratio, in dB (higher is closer)
    seconds: float  # how long the projection took


@functools.lru_cache(maxsize=8)
def _generator(name: str, weights: str | None) -> nn.Module:
    """The plain eager fp32 generator, frozen: the served paths are not differentiable."""
    import gan

    return gan.load_generator(name, weights=weights).eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def _digit_features() -> nn.Module | None:
    """The bundled digit classifier's feature extractor, frozen; None when its weights are missing."""
    from gan import evaluate
    from gan.weights import WeightsUnavailableError

    try:
        return evaluate.load_classifier().requires_grad_(False)
    except (WeightsUnavailableError, FileNotFoundError):
        return None


def target(spec: ModelSpec, image: Any) -> torch.Tensor:
    """An image (path, PIL image, array, bytes) as the model's output would show it: (C, S, S) in [-1, 1].
    Digits are framed as MNIST frames them (dark-on-light inverted, long side 20 of 28, centred by mass)."""
    from gan import expert

    x, _ = expert._prepare(spec, image)
    return x.clamp(-1, 1)


def _distances(spec: ModelSpec, fake: torch.Tensor, real: torch.Tensor, real_feats: torch.Tensor | None,
               z: torch.Tensor) -> torch.Tensor:
    """The loss of each candidate (B,): pixels at full and half size, classifier features (when
    ``real_feats`` is given), the prior."""
    loss = (fake - real).pow(2).mean((1, 2, 3))
    loss = loss + (F.avg_pool2d(fake, 2) - F.avg_pool2d(real, 2)).pow(2).mean((1, 2, 3))
    if real_feats is not None:
        feats = _digit_features().features(fake)  # type: ignore[union-attr]
        loss = loss + FEATURES * (feats - real_feats).pow(2).mean(1) / real_feats.pow(2).mean().clamp_min(1e-6)
    return loss + PRIOR * z.pow(2).mean(1)


def project(name: str | ModelSpec, image: Any, *, steps: int | None = None, label: int | None = None,
            seed: int = 0, starts: int | None = None, weights: str | Path | None = None,
            progress: Progress | None = None) -> Projection:
    """Find the latent whose image is closest to ``image``: the way to edit or morph one's own picture.

    Args:
        name: a noise->image model with weights.
        image: a path, PIL image, array or bytes; any size or mode (it is prepared as the model's images are).
        steps: Adam steps (1 to ``checks.MAX_PROJECTION_STEPS``); default: 120 for one-channel models, 300 for RGB.
        label: conditional models: the class to project under; None tries every class and keeps the best.
        seed: the seed of the starting latents; the same image and seed give the same latent.
        starts: starting latents optimised together (1 to ``checks.MAX_PROJECTION_STARTS``), per class; default 4.
        weights: use these weights instead of the registry's.
        progress: called as progress(fraction, message) after each step.

    Example:
        >>> p = gan.project("mnist-dcgan", "my_three.png")
        >>> p.label, round(p.psnr, 1)
        >>> edited = gan.sample("mnist-dcgan", z=p.z[None], label=p.label, edits=[1.5])
    """
    import time

    import gan

    started = time.perf_counter()
    spec = as_spec(name)
    if spec.task != "noise":
        raise ValueError(f"{spec.name!r} is a translator; only noise->image models can project an image")
    default_steps, default_starts = DEFAULTS.get(spec.channels, DEFAULTS[3])
    steps = checks.number("steps", default_steps if steps is None else steps, 1, checks.MAX_PROJECTION_STEPS,
                          integer=True)
    starts = default_starts if starts is None else starts
    starts = checks.number("starts", starts, 1, checks.MAX_PROJECTION_STARTS, integer=True)
    seed = checks.number("seed", seed, 0, checks.MAX_SEED, integer=True)
    if label is not None:
        latent.class_labels(spec, int(label), 1)  # a clear message for a label out of range, or on an unconditional model
        label = int(label)
    g = _generator(spec.name, None if weights is None else str(weights))
    real = target(spec, image)[None]  # (1, C, S, S)
    reader = _digit_features() if spec.channels == 1 and tuple(real.shape[-2:]) == (28, 28) else None
    with torch.no_grad():
        real_feats = None if reader is None else reader.features(real)  # (1, F)

    classes = [label] if label is not None or not spec.conditional else list(range(len(spec.classes)))
    z0 = latent.seeded_latents(seed, starts, spec.latent_dim)  # (starts, D)
    z = z0.repeat(len(classes), 1).clone().requires_grad_(True)  # (classes * starts, D): class-major
    labels = (torch.tensor(classes).repeat_interleave(starts) if spec.conditional else None)
    opt = torch.optim.Adam([z], lr=LR)
    prune = max(1, round(steps * PRUNE_AT))
    with torch.enable_grad():
        for step in range(steps):
            for group in opt.param_groups:  # cosine decay to 5% of LR
                group["lr"] = LR * (0.05 + 0.95 * 0.5 * (1 + torch.cos(torch.tensor(step / steps * torch.pi))).item())
            fake = g(z, labels)
            losses = _distances(spec, fake, real, real_feats, z)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            if step + 1 == prune and z.shape[0] > KEEP:
                best = losses.detach().argsort()[:KEEP]
                z, labels, opt = _keep(z, labels, opt, best)
            if progress is not None:
                progress((step + 1) / steps, f"projecting: step {step + 1} of {steps}")
    with torch.no_grad():
        fake = g(z, labels)
        best = int(_distances(spec, fake, real, real_feats, z).argmin())
        image_best = fake[best:best + 1]
        mse = float(((image_best - real) / 2).pow(2).mean())  # in [0, 1] pixel units
    found = None if labels is None else int(labels[best])
    return Projection(
        z=z[best].detach().clone(), label=found, reconstruction=gan.to_images(image_best)[0],
        target=gan.to_images(real)[0], distance=mse ** 0.5, psnr=10 * float(torch.log10(torch.tensor(1 / max(mse, 1e-10)))),
        seconds=time.perf_counter() - started)


def _keep(z: torch.Tensor, labels: torch.Tensor | None, opt: torch.optim.Adam, rows: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor | None, torch.optim.Adam]:
    """Only the candidates ``rows``, with their Adam moments, go on."""
    kept = z.detach()[rows].clone().requires_grad_(True)
    state = opt.state[z]
    new = torch.optim.Adam([kept], lr=opt.param_groups[0]["lr"])
    if state:
        new.state[kept] = {"step": state["step"].clone(), "exp_avg": state["exp_avg"][rows].clone(),
                           "exp_avg_sq": state["exp_avg_sq"][rows].clone()}
    return kept, None if labels is None else labels[rows], new


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) per image between (B, C, H, W) batches in [-1, 1]."""
    mse = ((a - b) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image between (B, C, H, W) batches in [-1, 1].

    A Gaussian window (sigma 1.5) of ``window`` pixels, constants K1 = 0.01, K2 = 0.03 on a data range of 1,
    as skimage's ``structural_similarity(gaussian_weights=True)``; the mean over pixels and channels."""
    a, b = (a + 1) / 2, (b + 1) / 2
    coords = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-coords.pow(2) / (2 * 1.5 ** 2))
    g = (g / g.sum())
    kernel = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=x.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)
