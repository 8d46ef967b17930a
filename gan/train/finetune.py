"""Your handwriting, in a minute: a class-conditional digit GAN fine-tuned from its weights on a few labelled
digits of one hand, so that it draws every digit in that hand.

``finetune(hand)`` runs the training loop (``gan.train.loop``) from the model's weights (generator and
discriminator) on a dataset made of the hand and of the model's own training digits, with the recipe's
on-device augmentation (DiffAugment) and classification loss, and the regularisation below, which keeps 10-50
images from collapsing it. It yields the loop's events; the last one's ``weights`` folder loads anywhere a
trained run's does (``gan.sample(name, weights=...)``, the app's Train tab).

The regularisation, each measured on a synthetic hand (``gan.evaluate.style.synthetic_hand``; the runs are in
``docs/notes/handwriting.md``):

- **anchor**: ``ANCHOR`` of each batch are real MNIST digits of the model's own training set, so the
  discriminator keeps what every digit looks like while it learns the hand's strokes;
- **few steps at a low learning rate** (``STEPS``, ``LR``), with an **EMA** of the generator (``EMA``) exported;
- the classification loss (P2GAN) of the recipe: the discriminator, shown the anchors and the hand with their
  labels, names the digit, and the generator keeps drawing the digit asked for.
"""
from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan import checks
from gan.data import IMAGE_EXTENSIONS, TensorImageDataset, open_dataset
from gan.catalog import hand_models
from gan.registry import ModelSpec, get_spec
from gan.train.config import TrainConfig
from gan.train.loop import Start, TrainEvent, train

log = logging.getLogger(__name__)

MIN_DIGITS = 10  # a hand needs at least this many labelled digits
MAX_DIGITS = 200  # ... and at most this many (files are read and framed one by one)
STEPS = 200  # fine-tuning steps (batch BATCH)
BATCH = 32
LR = 2e-4  # the generator's (and the discriminator's) learning rate
ANCHOR = 0.25  # share of each batch drawn from the model's own training digits
EMA = 0.99  # the exported generator is this exponential moving average of the fine-tuned one
DATASET_SIZE = 10_000  # items in the fine-tuning dataset: the anchors, and the hand repeated to fill the rest


def _spec(model: str | None) -> ModelSpec:
    models = hand_models()
    if model is None:
        if not models:
            raise ValueError("no registered model can learn a hand")
        model = models[0]
    spec = get_spec(model)
    if spec.name not in models:
        raise ValueError(f"{spec.name!r} cannot learn a hand: only class-conditional digit models can "
                         f"({', '.join(models)})")
    return spec


@dataclass
class Hand:
    """Digits of one hand, as the model sees them: framed as MNIST frames its digits."""

    images: torch.Tensor  # (N, 1, S, S) in [-1, 1], white on black
    labels: torch.Tensor  # (N,) class indices

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} digits but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


def hand_from_images(images: Sequence[Any], labels: Sequence[Any], model: str | None = None) -> Hand:
    """Digits (paths, PIL images, arrays, bytes: any size, dark on light or light on dark) and their labels
    (class names or indices, e.g. "7" or 7) -> a ``Hand`` for ``model``: each digit framed as MNIST frames
    its digits (``gan.projection.target``: long side 20 of 28, centred by mass)."""
    from gan.projection import target

    spec = _spec(model)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} digits but {len(labels)} labels")
    checks.number("digits", len(images), 0, MAX_DIGITS, integer=True)
    index = []
    for label in labels:
        name = str(label).strip()
        if name not in spec.classes:
            raise ValueError(f"unknown digit {label!r}; the labels of {spec.name} are {', '.join(spec.classes)}")
        index.append(spec.classes.index(name))
    framed = [target(spec, image) for image in images]
    return Hand(torch.stack(framed) if framed else torch.empty(0, spec.channels, spec.image_size, spec.image_size),
                torch.tensor(index, dtype=torch.int64))


def read_hand(folder: str | Path, model: str | None = None) -> Hand:
    """A folder of labelled digits, one subfolder per digit (``folder/7/any-name.png``) -> a ``Hand``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"no folder {folder}")
    spec = _spec(model)
    files, labels = [], []
    for label in spec.classes:
        for path in sorted((folder / label).glob("*")) if (folder / label).is_dir() else []:
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                files.append(path)
                labels.append(label)
    if not files:
        raise ValueError(f"no digits in {folder}: put each digit's images in a subfolder named by the digit, "
                         f"e.g. {folder / '7' / 'my-seven.png'}")
    if len(files) > MAX_DIGITS:
        raise ValueError(f"{len(files)} digits in {folder}; at most {MAX_DIGITS}")
    return hand_from_images(files, labels, spec.name)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def hand_dataset(hand: Hand, spec: ModelSpec, anchor: float = ANCHOR, size: int = DATASET_SIZE,
                 seed: int = 0) -> tuple[TensorImageDataset, TensorImageDataset]:
    """(the fine-tuning dataset, the anchor digits): ``size`` items, ``anchor`` of them real digits of the
    model's own training set (a seeded choice, as many of each class), the rest the hand repeated, so that a
    batch holds on average ``anchor`` of anchors."""
    real = open_dataset(spec.data, task="noise", image_size=spec.image_size, channels=spec.channels)
    if not isinstance(real, TensorImageDataset):
        raise ValueError(f"{spec.name}'s own data ({spec.data}) is not held in memory; it cannot anchor a hand")
    count = round(anchor * size)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:count]
    anchors = TensorImageDataset(real.stored[order], real.labels[order], spec.image_size, spec.channels)
    repeats = -(-(size - count) // len(hand))  # ceil
    images = torch.cat([anchors.stored, _to_uint8(hand.images).repeat(repeats, 1, 1, 1)[:size - count]])
    labels = torch.cat([anchors.labels, hand.labels.repeat(repeats)[:size - count]])
    return TensorImageDataset(images, labels, spec.image_size, spec.channels), anchors


def finetune(hand: Hand, *, model: str | None = None, out: str | Path | None = None, steps: int = STEPS,
             lr: float = LR, anchor: float = ANCHOR, ema: float | None = EMA, batch_size: int = BATCH,
             weights: str | Path | None = None, seed: int = 0, minutes: float | None = None,
             precision: str = "bf16", device: str = "auto", sample_seconds: float | None = 5.0,
             stop: Any = None, command: str | None = None) -> Iterator[TrainEvent]:
    """Fine-tune ``model`` (default: the first of ``hand_models()``) on ``hand``; yields the training loop's
    events (``gan.train.TrainEvent``), the last with ``done=True`` and the exported ``weights`` folder.

    Args:
        hand: at least MIN_DIGITS labelled digits (``read_hand``, ``hand_from_images``).
        out: the run folder (default runs/<model>-hand).
        steps, lr, anchor, ema, batch_size: the recipe (module constants); ``anchor`` is the share of each
            batch taken from the model's own training digits.
        weights: the weights folder to start from (default: the model's own, as ``gan.load_generator`` finds them).
        minutes: a time budget, as in ``train``; ``stop`` a threading.Event that ends the run after a step.
        command: how to run it again, for the model card (default: the ``python -m gan finetune`` line).

    Example:
        >>> events = finetune(read_hand("my_digits/"))            # my_digits/0/a.png, my_digits/7/b.png, ...
        >>> last = [e for e in events][-1]
        >>> gan.sample("mnist-dcgan", n=8, label=7, weights=last.weights)  # doctest: +SKIP
    """
    spec = _spec(model)
    if len(hand) < MIN_DIGITS:
        raise ValueError(f"a hand needs at least {MIN_DIGITS} labelled digits to learn from; got {len(hand)}")
    checks.number("anchor", anchor, 0.0, 0.9)
    if hand.images.shape[1:] != (spec.channels, spec.image_size, spec.image_size):
        raise ValueError(f"the digits must be framed for {spec.name} ({spec.channels}x{spec.image_size}x"
                         f"{spec.image_size}); use hand_from_images or read_hand")
    dataset, anchors = hand_dataset(hand, spec, anchor, seed=seed)
    shown = sorted({spec.classes[i] for i in hand.labels.tolist()})
    config = TrainConfig(
        model=spec.name, steps=steps, batch_size=batch_size, lr=lr, ema=ema, seed=seed, minutes=minutes,
        out=Path(out) if out is not None else Path("runs") / f"{spec.name}-hand", precision=precision,
        device=device, sample_seconds=sample_seconds, sample_every=max(1, steps // 10), checkpoint_every=10**9,
        data=f"a hand of {len(hand)} digits ({', '.join(shown)}), with {anchor:.0%} of each batch real digits of "
             f"{spec.data}; fine-tuned from {'the weights ' + str(weights) if weights else 'its own weights'}")
    if command is None:
        command = " ".join(["python -m gan finetune", spec.name, "HAND_FOLDER", "--steps", str(steps), "--lr",
                            f"{lr:g}", "--anchor", f"{anchor:g}", "--ema", f"{ema or 0:g}", "--seed", str(seed)]
                           + (["--weights", shlex.quote(str(weights))] if weights else []))
    start = Start(dataset, (anchors.images, anchors.labels), weights, command)
    return train(config, stop=stop, start=start)
