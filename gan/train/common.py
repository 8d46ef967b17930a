"""What every trainer shares: hardware and precision, the resumable batch stream, losses, EMA,
checkpoints with RNG state, sample grids, and the export of weights with a model card.

A family trainer (``noise.py``, ``pix2pix.py``, ``cyclegan.py``) subclasses ``Trainer`` and only
says what differs: its networks and optimizers, how a step generates fakes, the D step, the
G step, its sample grid and what it exports. ``loop.py`` drives every family the same way.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Dataset, Sampler

from gan import hardware
from gan.cards import model_card, refresh_card
from gan.data import TensorImageDataset
from gan.folder_cache import DecodedFolder, default_workers
from gan.registry import ModelSpec
from gan.train import distributed
from gan.train.config import TrainConfig
from gan.weights import CheckpointMismatchError, atomic_write, save_pretrained

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1  # bump when the checkpoint layout changes


class TrainingOutOfMemoryError(RuntimeError):
    """A training step ran out of memory; the message suggests a smaller batch size."""


# ---------------------------------------------------------------------------- hardware


@dataclass
class Hardware:
    """Where training runs and how: device, bf16 autocast, and (under ``accelerate launch`` or ``torchrun``)
    the Accelerator that set up the processes."""

    device: torch.device
    bf16: bool  # bf16 autocast for forward passes: where it measured faster (gan.train.precision)
    accelerator: Any = None  # accelerate.Accelerator when launched on several processes, else None

    @property
    def rank(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def world(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def distribute(self, trainer: Trainer) -> None:
        """With several processes: BatchNorm and dropout layers that see the global batch
        (``gan.train.distributed``), in networks wrapped in DistributedDataParallel (averaged gradients).

        Buffers are not synced at each forward (that would overwrite them in place between the two
        discriminator passes of a step, which autograd refuses): every process computes the same
        global BatchNorm statistics anyway.
        """
        if self.accelerator is None:
            return
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        for name in trainer.nets:
            net = distributed.use_global_batch(getattr(trainer, name))
            setattr(trainer, name, DistributedDataParallel(net, device_ids=ids, forward_sync_buffers=False))

    def describe(self) -> str:
        if self.device.type == "cuda":
            what = torch.cuda.get_device_name(self.device)
        else:
            threads = torch.get_num_threads()
            what = f"{hardware.cpu_name()}, {threads} thread{'s' if threads > 1 else ''}"
        return f"{self.world} x {what}" if self.world > 1 else what


def _accelerator() -> Any:
    """An accelerate.Accelerator when launched on several processes (accelerate launch / torchrun), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    try:
        from accelerate import Accelerator
    except ImportError:
        raise RuntimeError(f"launched on {world} processes (WORLD_SIZE={world}), but the accelerate package is "
                           f"missing: pip install accelerate, or run a single process") from None
    # It sets up the processes and the device; our own --precision decides autocast.
    return Accelerator(mixed_precision="no", cpu=not torch.cuda.is_available())


def pick_hardware(device: str, precision: str) -> Hardware:
    """Resolve ``device`` (cpu | cuda | auto) and ``precision`` (fp32 | bf16) to what this machine can do."""
    accelerator = _accelerator()
    if accelerator is not None:
        dev = accelerator.device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but CUDA is not available here; use --device cpu or auto")
    elif device in ("cpu", "cuda"):
        dev = torch.device(device)
    else:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda or auto")
    # bf16 asked for: a candidate, kept or dropped by measurement once the trainer exists (gan.train.precision).
    # Several processes must agree without measuring: they use it where the device has bf16 (CUDA).
    bf16 = precision == "bf16" and (accelerator is None or (dev.type == "cuda" and torch.cuda.is_bf16_supported()))
    return Hardware(dev, bf16, accelerator)


@contextlib.contextmanager
def out_of_memory_hint(batch_size: int, device: torch.device) -> Iterator[None]:
    """Turn an out-of-memory error into one that says what to do."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as e:
        text = str(e)
        if not isinstance(e, torch.OutOfMemoryError) and "out of memory" not in text \
                and "can't allocate memory" not in text:
            raise
        smaller = max(1, batch_size // 2)
        hint = f"try a smaller batch, e.g. --batch-size {smaller}" if batch_size > 1 else \
            "the batch size is already 1: use a smaller model or a machine with more memory"
        raise TrainingOutOfMemoryError(f"out of memory on {device} at batch size {batch_size}; {hint}") from e


# ---------------------------------------------------------------------------- data


class BatchStream(Sampler):
    """Endless, seeded batches that can restart at any step.

    The data is a stream of epochs, each a fresh permutation seeded by (seed, epoch); batch k is
    items k*B .. (k+1)*B - 1 of that stream. So the position after ``step`` batches is a pure
    function of ``step``: resuming needs nothing else. Items are ``(epoch, index)`` pairs (see
    ``EpochData``). With several processes, process r takes batches r, r + world, r + 2*world, ...
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.rank, self.world = start, rank, world

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        orders: dict[int, np.ndarray] = {}
        step = self.start
        while True:
            first = (step * self.world + self.rank) * self.batch_size
            batch = []
            for position in range(first, first + self.batch_size):
                epoch, i = divmod(position, self.n)
                if epoch not in orders:
                    orders = {e: o for e, o in orders.items() if e >= epoch - 1}
                    orders[epoch] = self._order(epoch)
                batch.append((epoch, int(orders[epoch][i])))
            yield batch
            step += 1


class EpochData(Dataset):
    """Reads ``(epoch, index)`` items; datasets with ``set_epoch`` (unpaired A/B) get a fresh pairing per epoch."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


def batches(dataset: Dataset, batch_size: int, seed: int, start: int, hw: Hardware,
            workers: int | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless batches from ``start`` on, as tuples of tensors on the training device.

    An in-memory dataset (MNIST, the offline digits, CIFAR-10: ``TensorImageDataset``; a folder decoded
    once: ``gan.folder_cache.DecodedFolder``) is copied to the device once, as uint8, and each batch is
    gathered and converted there: no DataLoader, no per-item Python, no host-to-device copy of images.
    The batches are the same as the DataLoader's. Other datasets (folders too large to decode up front)
    decode in ``workers`` processes (None: min(4, CPUs), none for in-memory data), into pinned memory on CUDA."""
    stream = BatchStream(len(dataset), batch_size, seed, start, hw.rank, hw.world)
    if isinstance(dataset, (TensorImageDataset, DecodedFolder)):
        yield from _device_batches(dataset, stream, hw.device)
        return
    workers = default_workers(dataset) if workers is None else workers
    loader = DataLoader(EpochData(dataset), batch_sampler=stream, num_workers=workers,
                        pin_memory=hw.device.type == "cuda", generator=torch.Generator().manual_seed(seed),
                        persistent_workers=workers > 0)
    for batch in loader:
        yield tuple(t.to(hw.device, non_blocking=True) for t in batch)


def _device_batches(dataset: TensorImageDataset | DecodedFolder, stream: BatchStream,
                    device: torch.device) -> Iterator[tuple[torch.Tensor, ...]]:
    if isinstance(dataset, DecodedFolder):
        parts = [p.to(device) for p in dataset.parts]
        for index in _device_indices(stream, device):
            yield dataset.batch([p[index] for p in parts])
    else:
        stored, labels = dataset.stored.to(device), dataset.labels.to(device)
        for index in _device_indices(stream, device):
            yield dataset.batch(stored[index]), labels[index]


def _device_indices(stream: BatchStream, device: torch.device) -> Iterator[torch.Tensor]:
    """Each batch's item indices, as a tensor on ``device``."""
    pin = device.type == "cuda"
    for items in stream:
        index = torch.tensor([i for _, i in items])
        yield index.pin_memory().to(device, non_blocking=True) if pin else index


# ---------------------------------------------------------------------------- losses


def _target(like: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(like).reshape(-1, *[1] * (like.ndim - 1)).expand_as(like)  # one target per image
    return torch.full_like(like, value)


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor,
           real_target: float | torch.Tensor = 1.0, fake_target: float | torch.Tensor = 0.0) -> torch.Tensor:
    """The discriminator's loss on real and fake logits (any shape): the mean of the two halves.

    kind: 'bce' (Goodfellow et al.), 'lsgan' (Mao et al.: least squares) or 'hinge' (Lim & Ye).
    Targets may be tensors with one value per image (label noise, label smoothing).
    """
    real, fake = real.float(), fake.float()
    if kind == "bce":
        return 0.5 * (F.binary_cross_entropy_with_logits(real, _target(real, real_target))
                      + F.binary_cross_entropy_with_logits(fake, _target(fake, fake_target)))
    if kind == "lsgan":
        return 0.5 * (F.mse_loss(real, _target(real, real_target)) + F.mse_loss(fake, _target(fake, fake_target)))
    if kind == "hinge":
        return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
    raise ValueError(f"unknown loss {kind!r}; use bce, hinge or lsgan")


def belief(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's mean belief that its inputs are real, in [0, 1]: sigmoid of the logits for
    'bce' and 'hinge', the prediction itself (clamped) for 'lsgan', whose targets are 0 and 1. The
    D(real) and D(fake) curves of GAN Lab are this on real and on fake images."""
    logits = logits.detach().float()
    return (logits.clamp(0, 1) if kind == "lsgan" else torch.sigmoid(logits)).mean()


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for its fakes (non-saturating for 'bce')."""
    fake = fake.float()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}; use bce, hinge or lsgan")


# ---------------------------------------------------------------------------- networks


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def normal_init(model: nn.Module, std: float = 0.02) -> None:
    """Weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0: the DCGAN and official pix2pix/CycleGAN init."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


@contextlib.contextmanager
def frozen(*models: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``models`` inside (the discriminators during the G step)."""
    for m in models:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m in models:
            m.requires_grad_(True)


@contextlib.contextmanager
def evaluating(*models: nn.Module) -> Iterator[None]:
    """Eval mode inside, the previous modes after."""
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


def linear_decay(optimizer: torch.optim.Optimizer, total: int) -> LambdaLR:
    """The official pix2pix/CycleGAN schedule, per step: constant for the first half, then linearly to zero."""
    half = total // 2
    return LambdaLR(optimizer, lambda step: 1.0 - max(0, step - half) / float(total - half + 1))


class EMA:
    """An exponential moving average of a generator's weights; the average is what gets sampled and exported."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        model = unwrap(model)
        for average, p in zip(self.model.parameters(), model.parameters()):
            average.lerp_(p.detach(), 1.0 - self.decay)
        for average, b in zip(self.model.buffers(), model.buffers()):
            average.copy_(b)  # BatchNorm statistics follow the live model


@dataclass
class Export:
    """One weights folder a run writes: the model it belongs to and which networks go in it."""

    name: str  # the registry name, e.g. "cyclegan-mnist2digits"
    generator: str  # the trainer attribute holding its generator, e.g. "G_B"
    discriminator: str  # ... and its discriminator
    kwargs: dict[str, Any]  # the generator's constructor kwargs (config.json "generator")
    discriminator_kwargs: dict[str, Any]  # the discriminator's (config.json "discriminator")


class Trainer:
    """The part of a training run that differs between families. ``loop.train`` calls, per step::

        fake = trainer.generate(batch)               # G forward, kept for the G step
        trainer.d_step(batch, detach(fake))          # D learns real vs fake.detach()
        trainer.g_step(batch, fake)                  # G learns to fool the D that just learned
        trainer.end_step()                           # LR schedules

    Subclasses set ``task`` (the kind of data), the attribute names of their ``generators`` and
    ``discriminators``, fill ``self.optimizers`` / ``self.schedulers``, and implement the methods below.
    """

    task = "noise"  # the data it reads: "noise" (image, label), "paired" or "unpaired" (A, B)
    generators: tuple[str, ...] = ("G",)
    discriminators: tuple[str, ...] = ("D",)

    def __init__(self, spec: ModelSpec, config: TrainConfig, hw: Hardware, total: int) -> None:
        self.spec, self.config, self.hw, self.total = spec, config, hw, total
        # All the randomness of a step except dropout (which uses torch's global RNG): latents,
        # fake labels, label noise, augmentation, the image pool. Its state goes into the checkpoint.
        # Drawn on the training device; every process holds the same one and draws for the global
        # batch (``self.draw``, gan.train.distributed.Draws), so several processes train as one.
        self.noise = torch.Generator(hw.device).manual_seed(config.seed)
        self.draw = distributed.Draws(self.noise, hw.rank, hw.world)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, LambdaLR] = {}

    @staticmethod
    def defaults(spec: ModelSpec) -> dict[str, Any]:
        """The family's recipe for what TrainConfig leaves None: batch_size, lr, steps."""
        raise NotImplementedError

    def describe(self) -> str:
        """The recipe in words, for the model card."""
        raise NotImplementedError

    # -- one step
    def generate(self, batch: tuple[torch.Tensor, ...]) -> Any:
        raise NotImplementedError

    def d_step(self, batch: tuple[torch.Tensor, ...], fake: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def g_step(self, batch: tuple[torch.Tensor, ...], fake: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def end_step(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    # -- samples and export
    def recalibrated(self, generator: nn.Module) -> nn.Module:
        """An EMA generator ready to export; noise trainers recompute its BatchNorm statistics."""
        return generator

    def fixed_inputs(self, dataset: Dataset) -> dict[str, torch.Tensor]:
        """What every sample grid of the run is made from (fixed noise, or a fixed batch of inputs)."""
        raise NotImplementedError

    def samples(self, generators: dict[str, nn.Module], fixed: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """The grid's images (N, C, H, W) in [-1, 1] and images per row; generators are in eval mode."""
        raise NotImplementedError

    def saved_discriminator(self, attribute: str) -> nn.Module:
        """The discriminator held in ``attribute`` as its weights file stores it."""
        return unwrap(getattr(self, attribute))

    def exports(self) -> list[Export]:
        return [Export(self.spec.name, self.generators[0], self.discriminators[0], self.spec.generator,
                       self.spec.discriminator)]

    # -- shared helpers
    @property
    def nets(self) -> tuple[str, ...]:
        return self.generators + self.discriminators

    def place(self, model: nn.Module) -> nn.Module:
        return model.to(self.hw.device)

    def adam(self, params: Any, lr: float) -> torch.optim.Adam:
        """The papers' Adam (betas 0.5, 0.999), as one fused kernel per step, on a CPU as on a GPU: on a CPU,
        torch's default (a loop over the parameters, several ops each) took 20 ms of mnist-gan's 60 ms step,
        the fused one 3.5 ms; it rounds differently in the last bit (about 1 ulp)."""
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), fused=True)

    def update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip_value: float | None = None) -> None:
        """zero_grad, backward, (clip gradient values, as Keras' clipvalue), step."""
        optimizer.zero_grad(set_to_none=True)
        self.hw.backward(loss)
        if clip_value is not None:
            for group in optimizer.param_groups:
                nn.utils.clip_grad_value_(group["params"], clip_value)
        optimizer.step()

    def extra_state(self) -> dict[str, Any]:
        """Family-specific state that a checkpoint must hold for an exact resume (e.g. the image pool)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {name: unwrap(getattr(self, name)).state_dict() for name in self.nets},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.nets:
            unwrap(getattr(self, name)).load_state_dict(state["nets"][name])
        for name, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][name])
        for name, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][name])
        self.load_extra_state(state["extra"])


def detach(fake: Any) -> Any:
    """``fake.detach()`` for a tensor or a tuple of them."""
    if isinstance(fake, tuple):
        return tuple(detach(f) for f in fake)
    return fake.detach() if isinstance(fake, torch.Tensor) else fake


# ---------------------------------------------------------------------------- checkpoints


def rng_state(noise: torch.Generator) -> dict[str, Any]:
    """Python, NumPy, torch (CPU, CUDA) and the trainer's own RNG states, as tensors and plain types."""
    version, words, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    return {
        "python": [version, list(words), gauss],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)), "pos": np_state["state"]["pos"],
                  "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "noise": noise.get_state(),
    }


def set_rng_state(state: dict[str, Any], noise: torch.Generator) -> None:
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if state["noise"].numel() == noise.get_state().numel():
        noise.set_state(state["noise"])
    else:  # a checkpoint of another device type (the trainer draws where it trains): the draws restart
        log.warning("the checkpoint's random draws were made on another kind of device; they restart from the seed")


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> Path:
    """Write atomically: a crash while saving leaves the previous checkpoint whole."""
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint (``torch.load(weights_only=True)``: it can never run code).

    It describes itself: ``model``, ``family``, ``model_args``, ``config``, ``step``, ``total``,
    ``trainer`` (networks, optimizers, schedulers, extra), ``ema``, ``fixed``, ``rng``, ``elapsed``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointMismatchError(f"cannot read checkpoint {path}: {e}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(f"{path} is not a Forger training checkpoint (format {CHECKPOINT_FORMAT})")
    return checkpoint


# ---------------------------------------------------------------------------- grids and export


def image_grid(images: torch.Tensor, nrow: int) -> Image.Image:
    """(N, C, H, W) in [-1, 1] -> one PIL image, ``nrow`` images per row, thin grey lines between."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().clamp(-1, 1).add(1).div(2), nrow=nrow, padding=2, pad_value=0.5)
    arr = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, 3)
    return Image.fromarray(arr[:, :, 0], "L") if images.shape[1] == 1 else Image.fromarray(arr, "RGB")


def as_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Gray (B, 1, H, W) -> (B, channels, H, W), so that gray and colour rows fit one grid."""
    return x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x


def export_weights(trainer: Trainer, out: Path, generators: dict[str, nn.Module], training: dict[str, Any],
                   grid: Image.Image | None, dtype: torch.dtype = torch.float32) -> list[Path]:
    """Write each of the trainer's exports to ``out/weights/<name>``: weights, config.json, README.md, samples.png."""
    folders = []
    for e in trainer.exports():
        folder = out / "weights" / e.name
        extra = {"discriminator": e.discriminator_kwargs, "training": training}
        save_pretrained(generators[e.generator], folder, name=e.name, family=trainer.spec.family, generator=e.kwargs,
                        card=model_card(trainer.spec, e.name, training), extra=extra, dtype=dtype,
                        discriminator=trainer.saved_discriminator(e.discriminator))
        if grid is not None:
            atomic_write(folder / "samples.png", lambda p: grid.save(p, format="PNG"))
        folders.append(folder)
    return folders


def _find_weights(out: Path, model: str | None) -> Path:
    if (out / "model.safetensors").exists():
        return out
    found = sorted(p.parent for p in (out / "weights").glob("*/model.safetensors"))
    if model is not None:
        found = [p for p in found if p.name == model]
    elif len(found) > 1 and (out / CHECKPOINT_NAME).exists():  # CycleGAN: the run's own direction
        own = load_checkpoint(out)["model"]
        found = [p for p in found if p.name == own] or found
    if len(found) != 1:
        what = "no exported weights" if not found else f"several ({', '.join(p.name for p in found)}): pass --model"
        raise FileNotFoundError(f"{out}: {what}; expected {out}/weights/<model>/model.safetensors "
                                f"(written by python -m gan train)")
    return found[0]


def push_run(out: str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
             model: str | None = None) -> str:
    """Upload a run's exported weights folder to the Hub with a model card; returns the repo URL.

    ``out`` is a run folder (``runs/mnist-dcgan``) or a weights folder. The card is rewritten with
    the metrics of ``metrics.json`` when the run folder or the weights folder has one
    (``python -m gan evaluate MODEL --weights ... --json OUT/metrics.json``).

    Example:
        >>> push_run("runs/mnist-dcgan", "me/mnist-dcgan")  # doctest: +SKIP
    """
    from gan import weights as _weights

    out = Path(out)
    folder = _find_weights(out, model)
    metrics_file = next((p for p in (folder / "metrics.json", out / "metrics.json") if p.exists()), None)
    if metrics_file is not None and metrics_file.parent != folder:
        atomic_write(folder / "metrics.json", lambda p: p.write_text(metrics_file.read_text()))
    refresh_card(folder)
    return _weights.push_to_hub(folder, repo_id, token=token, private=private)


def epochs_of(steps: int, batch_size: int, dataset_size: int, world: int = 1) -> float:
    return steps * batch_size * world / max(1, dataset_size)


def steps_for_epochs(epochs: float, batch_size: int, dataset_size: int, world: int = 1) -> int:
    return max(1, math.ceil(epochs * dataset_size / (batch_size * world)))
