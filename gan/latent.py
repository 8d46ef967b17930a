"""Latent vectors: seeded noise, truncation, interpolation, and GANSpace directions for sliders.

The same seed gives the same latent on every machine: latents are drawn with NumPy's
PCG64 generator (platform-independent and sequential, so row i of a batch does not
depend on the batch size), whatever device the model runs on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gan import checks
from gan.registry import ModelSpec


def seeded_latents(seed: int, n: int, dim: int, truncation: float = 1.0) -> torch.Tensor:
    """(n, dim) standard-normal latents from ``seed``; row i does not depend on n.

    ``truncation`` < 1 pulls every latent towards the mean (0), trading variety for quality.
    """
    z = np.random.default_rng(int(seed)).standard_normal((n, dim), dtype=np.float32)
    return torch.from_numpy(z) * float(truncation)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line interpolation; ``t`` has shape (T,), a and b (D,) -> (T, D)."""
    t = t[:, None]
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016): keeps the norm typical of Gaussian latents. (T, D)."""
    t = t[:, None]
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:  # (nearly) parallel: slerp degenerates to lerp
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolation_path(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    if mode not in ("slerp", "lerp"):
        raise ValueError(f"unknown interpolation mode {mode!r}; use 'slerp' or 'lerp'")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    t = torch.linspace(0, 1, steps)
    return slerp(a, b, t) if mode == "slerp" else lerp(a, b, t)


@torch.no_grad()
def pca_directions(generator: nn.Module, k: int = 8, n: int = 2000, seed: int = 0) -> torch.Tensor:
    """Top-k GANSpace directions (Härkönen et al. 2020) in latent space, (k, latent_dim), unit norm.

    PCA runs on the generator's early features (``generator.features``); the principal
    components are carried back to latent space by least squares, as GANSpace does for
    models without a style space (BigGAN). Moving z along a direction changes the image
    along one of its main modes of variation.

    The directions depend on the generator and ``seed`` only, never on the global RNG: a slider's value means
    the same in every process (a share link's sliders after a restart, a saved latent's edits).
    """
    z = seeded_latents(seed, n, generator.latent_dim)
    labels = (torch.arange(n) % generator.num_classes) if getattr(generator, "conditional", False) else None
    device = next(generator.parameters()).device
    with torch.inference_mode():
        feats = generator.features(z.to(device), None if labels is None else labels.to(device))
    feats = feats.float().flatten(1).cpu()  # (n, F)
    feats = feats - feats.mean(0)
    v = top_components(feats, k, seed)  # (F, k)
    coords = feats @ v  # (n, k): each sample's coordinates along the components
    # Least squares: z ≈ coords @ U, so row i of U is the latent direction of component i.
    u = torch.linalg.lstsq(coords, z - z.mean(0)).solution  # (k, latent_dim)
    u = u / u.norm(dim=1, keepdim=True)
    # a direction's sign is arbitrary: the one whose largest entry is positive, whatever the SVD returned
    return u * torch.sign(u.gather(1, u.abs().argmax(1, keepdim=True)))


def top_components(x: torch.Tensor, k: int, seed: int = 0, niter: int = 4, oversample: int = 10) -> torch.Tensor:
    """The top-k right singular vectors of ``x`` (n, F) as columns, (F, k): a randomized range finder with power
    iterations (Halko et al. 2011, as ``torch.pca_lowrank``), whose random matrix comes from a generator of its
    own seeded with ``seed`` (``torch.pca_lowrank`` draws from the global RNG: other directions in every process)."""
    q = min(k + oversample, *x.shape)
    omega = torch.randn(x.shape[1], q, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)  # (F, q)
    basis = torch.linalg.qr(x @ omega).Q  # (n, q)
    for _ in range(niter):
        basis = torch.linalg.qr(x.T @ basis).Q  # (F, q)
        basis = torch.linalg.qr(x @ basis).Q  # (n, q)
    _, _, vh = torch.linalg.svd(basis.T @ x, full_matrices=False)  # (q, F)
    return vh[:k].T


def class_labels(spec: ModelSpec, label: int | Sequence[int] | None, n: int) -> torch.Tensor | None:
    """The class indices (n,) of a conditional model's images: ``label`` for all, one per image, or 0, 1, 2, ...
    by default; None for an unconditional model (which refuses a label)."""
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


def end_latent(spec: ModelSpec, what: str, seed: int | None, z: Any, truncation: float) -> torch.Tensor:
    """One end of an interpolation, (latent_dim,): the latent of ``seed``, or the given latent ``z``."""
    if z is None:
        seed = checks.number(what, seed, 0, checks.MAX_SEED, integer=True)
        return seeded_latents(seed, 1, spec.latent_dim, truncation)[0]
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.numel() != spec.latent_dim or not torch.isfinite(z).all():
        raise ValueError(f"the latent of {what[-1]} must hold {spec.latent_dim} finite numbers, got shape "
                         f"{tuple(z.shape)}")
    return z.reshape(spec.latent_dim)  # as gan.sample: truncation scales seeded latents, a given one is used as it is
