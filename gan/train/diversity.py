"""The collapse alarm: how varied a noise model's samples are while it trains, against real images.

A collapsing GAN draws the same few images whatever the latent, while its losses can look fine. Every time
the loop makes a sample grid (after the first step, then every few seconds), ``DiversityMonitor`` measures
samples: for the digit models, ``SAMPLES`` fixed latents through the live generator (cheap: it is small); for
the others, the sample grid's own images (no extra forward pass: cifar10-gan's generator costs 7.75 GFLOP an
image). It measures:

- **spread**: the mean pairwise distance between the samples, divided by the same for real training images
  (1: as varied as the data; near 0: one image). For class-conditional models the pairs are taken within
  each requested class, on both sides, so a model that draws one image per digit reads as collapsed.
  Distances are in the bundled digit classifier's features (``gan.evaluate``) for the digit models, else in
  pixels (downsampled to at most 32x32);
- **the class histogram** (digit models): how many samples the classifier reads as each digit, and its
  effective number of classes, exp(entropy): 10 for an even spread over ten digits, 1 for one digit.

The alarm (``Diversity.alarm``, a plain sentence) goes off when a figure *falls*: the spread to ``FALL`` of
the highest it reached in the run and below ``LOW`` of the real images', or the effective number of classes
to ``FALL`` of its highest, once that reached ``REACHED`` of all classes, and below ``LOW`` of them. A fall,
not a low value: an untrained generator's first samples are not varied either. The thresholds and the runs
that chose them are in ``docs/notes/collapse-alarm.md``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gan import latent
from gan.registry import ModelSpec
from gan.train.common import evaluating

log = logging.getLogger(__name__)

SAMPLES = 100  # latents per measurement (10 per class for a 10-class model)
FALL = 0.6  # the spread fell to this share of its highest in the run ...
LOW = 0.6  # ... and is below this share of the real images' spread (of all classes, for the kinds of class)
REACHED = 0.5  # the kinds of class read count once they reached this share of all classes (an untrained
#                generator's blobs are read as one or two digits, and then as more: no fall)
PIXELS = 32  # pixel distances on images downsampled to at most this side


@dataclass
class Diversity:
    """One measurement of the live samples."""

    step: int
    spread: float  # mean pairwise distance of the samples / that of real images (1: as varied as the data)
    histogram: list[int] | None = None  # digit models: samples the classifier reads as each class
    classes: float | None = None  # digit models: the histogram's effective number of classes, exp(entropy)
    alarm: str = ""  # a plain warning while the samples look collapsed; "" otherwise
    space: str = "pixels"  # where distances are measured: "classifier features" or "pixels"

    def as_dict(self) -> dict:
        return {"step": self.step, "spread": round(self.spread, 4), "histogram": self.histogram,
                "classes": None if self.classes is None else round(self.classes, 3), "alarm": self.alarm}


def _classifier(spec: ModelSpec) -> nn.Module | None:
    """The digit classifier, for the digit models (those ``gan.evaluate`` judges with it); None otherwise
    or when its weights are missing (distances are then in pixels)."""
    if spec.evaluation is None or spec.channels != 1:
        return None
    from gan.evaluate.classifier import load_classifier
    from gan.weights import WeightsUnavailableError

    try:
        return load_classifier()
    except (WeightsUnavailableError, FileNotFoundError):
        log.warning("no digit classifier: the collapse alarm measures pixel distances")
        return None


def _mean_pairwise(x: torch.Tensor, groups: torch.Tensor | None) -> float:
    """The mean Euclidean distance between the rows of x (N, F), over pairs within each group (all pairs when
    ``groups`` is None); groups with one row are skipped."""
    if groups is None:
        return float(torch.pdist(x).mean()) if len(x) > 1 else 0.0
    means = [torch.pdist(x[groups == g]).mean() for g in groups.unique() if int((groups == g).sum()) > 1]
    return float(torch.stack(means).mean()) if means else 0.0


@dataclass
class DiversityMonitor:
    """Measures a generator's samples against ``real`` images (N, C, H, W) in [-1, 1] from its training data
    (``labels`` (N,) for conditional models: the samples are asked for the same classes)."""

    spec: ModelSpec
    real: torch.Tensor
    labels: torch.Tensor | None = None
    seed: int = 0
    best: float = 0.0  # the highest spread so far
    best_classes: float = 0.0  # the highest effective number of classes so far
    history: list[Diversity] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.real = self.real[:SAMPLES].float().cpu()
        if not self.spec.conditional:
            self.labels = None
        elif self.labels is None:
            raise ValueError("a conditional model's collapse alarm needs the real images' labels")
        else:
            self.labels = self.labels[:SAMPLES].cpu()
        with torch.random.fork_rng(devices=[]):  # building the classifier draws its initial weights: the run's
            self.classifier = _classifier(self.spec)  # own random stream (dropout, resumes) must not move
        self.space = "classifier features" if self.classifier is not None else "pixels"
        if self.classifier is None:  # measured on the sample grid's images (measure_images), over all of them
            self.labels = None
        self.z = latent.seeded_latents(self.seed, len(self.real), self.spec.latent_dim)
        self.reference = _mean_pairwise(self._features(self.real)[0], self.labels)

    def _features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features (N, F), the classifier's probabilities (N, classes) or None)."""
        images = images.float().cpu()
        if self.classifier is not None:
            from gan.evaluate.classifier import classify

            probs, feats = classify(self.classifier, images)
            return feats, probs
        if max(images.shape[-2:]) > PIXELS:
            images = F.adaptive_avg_pool2d(images, PIXELS)
        return images.flatten(1), None

    @torch.no_grad()
    def measure(self, generator: nn.Module, step: int) -> Diversity:
        """Sample the fixed latents with ``generator`` (in eval mode, as the sample grid), compare with the real
        images."""
        device = next(generator.parameters()).device
        labels = None if self.labels is None else self.labels.to(device)
        with evaluating(generator):
            fake = generator(self.z.to(device), labels).float()
        return self.measure_images(fake, step, self.labels)

    @torch.no_grad()
    def measure_images(self, fake: torch.Tensor, step: int, labels: torch.Tensor | None = None) -> Diversity:
        """Compare samples already drawn (N, C, H, W) in [-1, 1] (asked for ``labels``, or all together) with the
        real images, and sound the alarm if the figure fell."""
        feats, probs = self._features(fake)
        spread = _mean_pairwise(feats, None if labels is None else labels.cpu()) / max(self.reference, 1e-8)
        histogram = classes = None
        if probs is not None:
            counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1])
            share = counts[counts > 0].double() / len(probs)
            histogram, classes = counts.tolist(), float(torch.exp(-(share * share.log()).sum()))
        alarm = self._alarm(spread, classes, None if probs is None else probs.shape[1])
        self.best = max(self.best, spread)
        self.best_classes = max(self.best_classes, classes or 0.0)
        found = Diversity(step, spread, histogram, classes, alarm, self.space)
        self.history.append(found)
        return found

    def _alarm(self, spread: float, classes: float | None, total: int | None) -> str:
        words = []
        if self.history and spread < FALL * self.best and spread < LOW:
            words.append(f"the samples are {spread:.0%} as varied as real images, down from {self.best:.0%}")
        if self.history and classes is not None and self.best_classes >= REACHED * total \
                and classes < FALL * self.best_classes and classes < LOW * total:
            words.append(f"they look like {classes:.1f} kinds of digit, down from {self.best_classes:.1f}")
        if not words:
            return ""
        return ("Collapse alarm: " + "; ".join(words) + ". The generator is drawing the same few images: stop "
                "and try a lower learning rate, or a shorter run.")
