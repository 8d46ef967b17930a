"""One model evaluated: its outputs on the test inputs, every metric with its reference and target (``evaluate``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from gan import data, latent
from gan.evaluate.classifier import DigitClassifier, _shared_classifier, classify, mnist_framed
from gan.evaluate.metrics import (
    REAL_HALF_SIZE, TARGETS, InceptionUnavailable, _metric, _real_images, _real_view, _to_uint8, attach_targets,
    digit_metrics, fid_kid, inception_weights, interleaved, label_metrics,
)
from gan.registry import ModelSpec, get_spec, list_specs
from gan.weights import WeightsUnavailableError

# The models the digit classifier judges, and how: the registry's ``evaluation`` of each.
DIGIT_MODELS = tuple(s.name for s in list_specs() if s.evaluation is not None)
# Translators that turn digits into MNIST-style digits (their outputs are in the classifier's domain).
TO_MNIST = tuple(s.name for s in list_specs() if s.evaluation is not None and s.evaluation.to_mnist)


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


# ---------------------------------------------------------------------------- one entry point


def evaluate(name: str, *, n: int | None = None, seed: int = 0, weights: str | Path | None = None,
             pretrained: bool = True, real: str | Path | None = None,
             inception: str | Path | None = None, classifier: str | Path | nn.Module | None = None,
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
        model = classifier if isinstance(classifier, nn.Module) else _shared_classifier(
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
