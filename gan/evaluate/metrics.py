"""The metrics: distances and real-digit references, the digit-classifier metrics with their targets, FID / KID."""
from __future__ import annotations

import functools
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan import data
from gan.cards import format_metric
from gan.evaluate.classifier import DigitClassifier, _mnist_split, _shared_classifier, classify
from gan.registry import ModelSpec, list_specs

log = logging.getLogger(__name__)

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
        elif op == ">= x ref":
            threshold = value * metric["reference"]
            metric["passed"] = bool(metric["value"] >= threshold)
            metric["target"] = f">= {value:g}x reference ({format_metric(threshold, key)})"
        else:
            threshold = value
            metric["passed"] = bool(metric["value"] >= threshold)
            metric["target"] = f">= {format_metric(value, key)}"
        metric["threshold"] = threshold
        verdicts.append(metric["passed"])
    return all(verdicts) if verdicts else None


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


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


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
