"""The expert: what a model's discriminator thinks of an image.

``judge(name, images)`` gives one ``Verdict`` per image: the discriminator's raw logit and its
probability, and the same score placed among the model's own real validation images and its own
generated samples (a saturated discriminator still reads meaningfully: "more real-looking than 80% of
real digits"). Conditional models are asked under every class; PatchGAN models (Pix2Pix, CycleGAN)
also give their per-patch map, at the input's own size and aspect, as a heatmap over the image.

A discriminator that uses the minibatch standard deviation (mnist-dcgan) judges a batch, not an
image: each image is judged in a group with three real validation digits of the same class, the
kind of batch it was trained on, so that one image alone does not look "without variety".
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from gan import data, images, serving
from gan.registry import ModelSpec, Preprocess, get_spec

CALIBRATION_SIZE = 400  # real validation images and generated samples the percentiles are taken among
GROUP = 4  # minibatch-std discriminators judge groups of this many


@dataclass
class Verdict:
    """What the expert thinks of one image."""

    logit: float  # the discriminator's raw output (mean over patches for PatchGANs)
    probability: float  # sigmoid(logit): its belief that the image is real
    real_percentile: float | None  # % of the model's real validation images it scores at or below this one
    fake_percentile: float | None  # % of the model's generated samples it scores at or below this one
    label: int | None = None  # conditional models: the class it was judged as
    per_class: list[float] = field(default_factory=list)  # conditional: P(real) under each class
    patches: np.ndarray | None = None  # PatchGANs: P(real) per patch, (h, w)
    heatmap: Image.Image | None = None  # PatchGANs: the image with the patch map over it, at its own size

    @property
    def sentence(self) -> str:
        """One plain sentence on what the numbers mean."""
        if self.real_percentile is None:
            return (f"The expert gives it {100 * self.probability:.0f}% chance of being real (no real images "
                    f"here to compare with).")
        looks = f"it looks more real than {self.real_percentile:.0f}% of real images"
        than_fakes = f" and than {self.fake_percentile:.0f}% of the forger's own fakes" \
            if self.fake_percentile is not None else ""
        return f"To the expert, {looks}{than_fakes}."


def _digit_frame(spec: ModelSpec) -> Preprocess:
    """Digit models judge any drawing framed as MNIST frames its digits (the registry's translators do so)."""
    return replace(spec.preprocess, invert_light=True, fit=20) if spec.channels == 1 else spec.preprocess


@functools.lru_cache(maxsize=8)
def _discriminator(name: str, weights: str | None) -> nn.Module:
    import gan

    return gan.load_discriminator(name, weights=weights, pretrained=True).eval().requires_grad_(False)


def _prepare(spec: ModelSpec, image: Any) -> tuple[torch.Tensor, Image.Image]:
    """An image -> (model input (C, S, S), the decoded image)."""
    import gan

    img = gan.load_image(image)
    pre = _digit_frame(spec) if spec.task == "noise" else spec.preprocess
    return images.prepare_input(replace(spec, preprocess=pre), img), img


@functools.lru_cache(maxsize=8)
def _real_digits(k: int = CALIBRATION_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Real held-out MNIST digits in [-1, 1], (k, 1, 28, 28), and their labels, classes interleaved."""
    from gan.evaluate import interleaved

    images, labels = data.mnist_offline("heldout")
    order = interleaved(labels)[:k]  # 0, 1, ..., 9, 0, 1, ...: every prefix is class-balanced
    return images[order].float()[:, None] / 127.5 - 1, labels[order]


def _logits(d: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, company: torch.Tensor | None
            ) -> torch.Tensor:
    """D's logit per image (B,), patch logits (B, 1, h, w) for PatchGANs. With ``company`` (GROUP - 1 real
    images per input, (B, GROUP - 1, C, S, S)), each image is judged in a group with them."""
    with torch.inference_mode():
        if company is None:
            return d(x, labels) if labels is not None else d(x)
        groups = torch.cat([x[:, None], company], 1)  # (B, GROUP, C, S, S): minibatch std groups are consecutive
        b = x.shape[0]
        flat = groups.reshape(b * GROUP, *x.shape[1:])  # group i holds rows GROUP * i ... GROUP * i + GROUP - 1
        lab = None if labels is None else labels.repeat_interleave(GROUP)
        return d(flat, lab)[::GROUP]


def _company(spec: ModelSpec, d: nn.Module, labels: torch.Tensor | None, b: int) -> torch.Tensor | None:
    if not getattr(d, "minibatch_std", False):
        return None
    real, real_labels = _real_digits()
    picks = []
    for i in range(b):
        pool = real if labels is None else real[real_labels == labels[i]]
        picks.append(pool[: GROUP - 1])
    return torch.stack(picks)


@functools.lru_cache(maxsize=1)
def _digit_reader() -> nn.Module | None:
    """The bundled digit classifier (gan.evaluate), or None when its weights are missing."""
    from gan import evaluate
    from gan.weights import WeightsUnavailableError

    try:
        return evaluate.load_classifier()
    except (WeightsUnavailableError, FileNotFoundError):
        return None


def _shown_digits(x: torch.Tensor) -> list[int] | None:
    """The digit each image (B, 1, 28, 28) in [-1, 1] shows, as the bundled digit classifier reads it."""
    from gan import evaluate

    reader = _digit_reader()
    if reader is None or x.shape[1:] != (1, 28, 28):
        return None
    probs, _ = evaluate.classify(reader, x)
    return [int(i) for i in probs.argmax(1)]


def _translate(spec: ModelSpec, x: torch.Tensor, weights: str | None) -> torch.Tensor:
    return serving.serving_generator(spec.name, weights)(x)


@functools.lru_cache(maxsize=8)
def _calibration(name: str, weights: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Sorted scores of real validation images and of generated samples, or None where there are none."""
    import gan

    spec = get_spec(name)
    d = _discriminator(name, weights)
    if spec.channels != 1 or spec.evaluation is None:
        return None, None  # no real images of this model's domain ship with the package
    if spec.task == "noise":
        real, labels = _real_digits()
        fake_labels = labels if spec.conditional else None
        z = gan.latent.seeded_latents(0, len(real), spec.latent_dim)
        fake = torch.cat([gan.generate(name, z[i:i + 200], None if fake_labels is None else fake_labels[i:i + 200],
                                       weights=weights) for i in range(0, len(z), 200)])
        real_lab = labels if spec.conditional else None
        scores = [_score(_logits(d, x, real_lab, _company(spec, d, real_lab, len(x)))) for x in (real, fake)]
        return tuple(np.sort(s) for s in scores)
    from gan.evaluate import translator_inputs, translator_test_set

    inputs, labels, _ = translator_test_set(name)
    x = translator_inputs(spec, inputs[:CALIBRATION_SIZE])
    fake = torch.cat([_translate(spec, x[i:i + 50], weights) for i in range(0, len(x), 50)])
    lab = labels[:CALIBRATION_SIZE] if getattr(d, "num_classes", 0) else None
    if spec.family == "pix2pix":  # real pairs: the sketches of held-out digits and the digits themselves
        ds = data.Sketch2DigitDataset("heldout", size=spec.image_size)
        order = torch.arange(min(CALIBRATION_SIZE, len(ds)))
        real_pairs = torch.stack([torch.cat(ds[int(i)][:2]) for i in order])
        fake_pairs = torch.cat([x, fake], 1)
        scores = [_score(_logits(d, p, None, None)) for p in (real_pairs, fake_pairs)]
        return tuple(np.sort(s) for s in scores)
    real_images = _target_domain(spec)
    real_lab = None if lab is None else real_images[1]
    scores = [_score(_logits(d, real_images[0], real_lab, None)), _score(_logits(d, fake, lab, None))]
    return tuple(np.sort(s) for s in scores)


def _target_domain(spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Real images of a CycleGAN's output domain, preprocessed as its inputs are, and their labels."""
    from gan.evaluate import translator_inputs, translator_test_set

    images, labels, _ = translator_test_set(spec.reverse)  # the reverse translator reads our output domain
    return translator_inputs(get_spec(spec.reverse), images[:CALIBRATION_SIZE]), labels[:CALIBRATION_SIZE]


def _score(logits: torch.Tensor) -> np.ndarray:
    """One number per image: the logit, averaged over patches for PatchGANs."""
    return logits.float().reshape(logits.shape[0], -1).mean(1).numpy()


def _percentile(sorted_scores: np.ndarray | None, value: float) -> float | None:
    if sorted_scores is None or len(sorted_scores) == 0:
        return None
    return 100.0 * np.searchsorted(sorted_scores, value, side="right") / len(sorted_scores)


def _heatmap(image: Image.Image, patches: np.ndarray) -> Image.Image:
    """The image in grey with the patch map over it, at the image's own size: green real, red fake."""
    size = image.size
    grey = np.asarray(image.convert("L").convert("RGB"), dtype=np.float32)
    p = np.asarray(Image.fromarray((patches * 255).astype(np.uint8), "L").resize(size, Image.Resampling.BILINEAR),
                   dtype=np.float32)[..., None] / 255.0
    colour = np.concatenate([(1 - p) * 255, p * 255, np.zeros_like(p)], axis=2)
    return Image.fromarray((0.45 * grey + 0.55 * colour).clip(0, 255).astype(np.uint8), "RGB")


def judge(name: str, images: Any, *, label: int | None = None, inputs: Any = None,
          weights: str | Path | None = None) -> list[Verdict]:
    """The expert's verdict on each image (a PIL image, path, array, or a list of them).

    Args:
        name: a model with a discriminator (``gan.load_discriminator(name, pretrained=True)``).
        images: images of the model's output domain: digits for the digit models, the translated side
            for translators.
        label: conditional models: the class to judge under. Default: for experts of the ten digits, the digit
            the image shows (read by the bundled digit classifier), which is what the expert was trained to
            judge ("is this a real 3?"); otherwise the class under which it finds the image most real.
        inputs: Pix2Pix only: the input image of each pair (the sketch of a drawn digit); without them each
            image is taken as an input and the pair (image, its translation) is judged.
        weights: a weights folder with a discriminator.safetensors, instead of the registry's.

    Example:
        >>> gan.judge("mnist-dcgan", "my_seven.png")[0].sentence
    """
    import gan

    spec = get_spec(name)
    items = images if isinstance(images, (list, tuple)) else [images]
    if not 1 <= len(items) <= gan.checks.MAX_IMAGES:
        raise ValueError(f"judge 1 to {gan.checks.MAX_IMAGES} images at a time, got {len(items)}")
    key = None if weights is None else str(weights)
    d = _discriminator(name, key)
    prepared = [_prepare(spec, im) for im in items]
    x = torch.stack([p[0] for p in prepared])
    if spec.family == "pix2pix":
        if inputs is None:
            a, x = x, _translate(spec, x, key)
        else:
            extra = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            a = torch.stack([_prepare(spec, im)[0] for im in extra])
        x = torch.cat([a, x], 1)
    classes = len(spec.classes) or getattr(d, "num_classes", 0)
    shown = _shown_digits(x) if classes == 10 and label is None and spec.family != "pix2pix" else None
    real_scores, fake_scores = _calibration(name, key)
    verdicts = []
    for i, (_, img) in enumerate(prepared):
        xi = x[i:i + 1]
        per_class: list[float] = []
        chosen = None
        if classes:
            all_labels = torch.arange(classes)
            logits = _logits(d, xi.expand(classes, *xi.shape[1:]), all_labels,
                             _company(spec, d, all_labels, classes))
            scores = _score(logits)
            per_class = [float(torch.sigmoid(torch.tensor(s))) for s in scores]
            chosen = int(label) if label is not None else shown[i] if shown is not None else int(np.argmax(scores))
            logit = logits[chosen:chosen + 1]
        else:
            logit = _logits(d, xi, None, _company(spec, d, None, 1))
        score = float(_score(logit)[0])
        patches = heat = None
        if logit.dim() == 4:  # a PatchGAN: (1, 1, h, w)
            patches = torch.sigmoid(logit[0, 0].float()).numpy()
            heat = _heatmap(img, patches)
        verdicts.append(Verdict(
            logit=score, probability=float(torch.sigmoid(torch.tensor(score))),
            real_percentile=_percentile(real_scores, score), fake_percentile=_percentile(fake_scores, score),
            label=chosen, per_class=per_class, patches=patches, heatmap=heat))
    return verdicts
