"""Training step time: each trainer (``gan.train``) against a plain fp32 loop in the pytorch/examples
style on the same batch size.

Ours is timed from the trainer's event stream (one event per step; the first steps are warm-up),
so it includes the trainer's data pipeline; the reference reuses one in-memory batch, as the
examples' inner loop does after the DataLoader. For models whose data is not shipped (cifar10-gan,
dcgan-faces) a folder of random PNGs stands in: fine for timing only.
"""
from __future__ import annotations

import contextlib
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from benchmarks.common import Row, count_flops, log
from gan.models import family_module
from gan.registry import get_spec

# (model, batch size, data): the brief's two targets first, then the small models of every family.
CASES = [
    ("cifar10-gan", 20, "folder"),
    ("dcgan-faces", 64, "folder"),
    ("mnist-gan", 64, "mnist-offline"),
    ("mnist-dcgan", 64, "mnist-offline"),
    ("pix2pix-sketch2digit", 16, "sketch2digit"),
    ("cyclegan-digits2mnist", 4, "digits2mnist"),
]
TARGETS = {"cifar10-gan": 3.0, "dcgan-faces": 3.0}  # speedup over the reference the brief asks for


def image_folder(size: int, n: int = 256, root: Path | None = None) -> Path:
    """A folder of n random RGB PNGs of size x size (smooth blobs, so they compress like photos)."""
    root = Path(root or tempfile.mkdtemp(prefix=f"forger-bench-images{size}-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(root / f"{i:04d}.png")
    return root


# ---------------------------------------------------------------------------- ours: the trainer


def trainer_step_times(model: str, batch: int, data: str, steps: int, warmup: int, precision: str,
                       out: Path) -> list[float]:
    """Seconds between consecutive step events of ``gan.train`` after ``warmup`` steps."""
    from gan.train import TrainConfig, train

    config = TrainConfig(model=model, data=data, steps=warmup + steps, batch_size=batch, precision=precision,
                         device="cpu", out=out, sample_every=10**9, sample_seconds=None, checkpoint_every=10**9)
    stop = threading.Event()
    times, last = [], None
    for event in train(config, stop=stop):
        now = time.perf_counter()
        if event.done:
            break
        if last is not None and event.step > warmup:
            times.append(now - last)
        last = now
        if event.step >= warmup + steps:
            stop.set()
    return times


# ---------------------------------------------------------------------------- the reference loops


def _real_batch(spec, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(batch, spec.channels, spec.image_size, spec.image_size) * 2 - 1
    return x, torch.randint(max(1, len(spec.classes)), (batch,))


def reference_step(model: str, batch: int, channels_last: bool = False, bf16: bool = False,
                   fused: bool = False) -> Callable[[], None]:
    """One fp32 training step in the pytorch/examples style (D on real and fake.detach(), then G), on a
    fixed in-memory batch, with the recipe's optimizers. Returns a function doing one step.

    The flags make the variants the trainer could adopt: channels_last networks and batches, bf16
    autocast around the forward passes, fused (single-kernel) Adam / RMSprop updates."""
    spec = get_spec(model)
    family = family_module(spec.family)
    torch.manual_seed(0)
    adam = dict(lr=2e-4, betas=(0.5, 0.999), **({"fused": True} if fused else {}))
    layout = (lambda m: m.to(memory_format=torch.channels_last)) if channels_last else (lambda m: m)
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    if spec.task == "noise":
        g, d = layout(family.Generator(**spec.generator)), layout(family.Discriminator(**spec.discriminator))
        book = spec.family == "cifar"
        if book:
            extra = {"foreach": True} if fused else {}  # RMSprop has no fused kernel
            opt_g = torch.optim.RMSprop(g.parameters(), lr=4e-4, alpha=0.9, eps=1e-7, **extra)
            opt_d = torch.optim.RMSprop(d.parameters(), lr=8e-4, alpha=0.9, eps=1e-7, **extra)
        else:
            opt_g, opt_d = torch.optim.Adam(g.parameters(), **adam), torch.optim.Adam(d.parameters(), **adam)
        real, labels = _real_batch(spec, batch)
        if channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        cond = bool(spec.classes)
        criterion = nn.BCEWithLogitsLoss()
        ones, zeros = torch.ones(batch), torch.zeros(batch)

        def step() -> None:
            d.zero_grad()
            with cast():
                err_real = criterion(d(real, labels if cond else None).float(), ones)
            err_real.backward()
            z = torch.randn(batch, spec.latent_dim)
            fake_labels = torch.randint(len(spec.classes), (batch,)) if cond else None
            with cast():
                fake = g(z, fake_labels)
                err_fake = criterion(d(fake.detach(), fake_labels).float(), zeros)
            err_fake.backward()
            if book:
                nn.utils.clip_grad_value_(d.parameters(), 1.0)
            opt_d.step()
            g.zero_grad()
            with cast():
                err_g = criterion(d(fake, fake_labels).float(), ones)
            err_g.backward()
            if book:
                nn.utils.clip_grad_value_(g.parameters(), 1.0)
            opt_g.step()
        return step

    if spec.family == "pix2pix":
        g, d = family.Generator(**spec.generator), family.Discriminator(**spec.discriminator)
        opt_g, opt_d = torch.optim.Adam(g.parameters(), **adam), torch.optim.Adam(d.parameters(), **adam)
        a, _ = _real_batch(spec, batch)
        b, _ = _real_batch(spec, batch)

        def step() -> None:  # the official pix2pix_model.optimize_parameters
            fake = g(a)
            opt_d.zero_grad()
            pred_fake = d(torch.cat([a, fake.detach()], 1))
            pred_real = d(torch.cat([a, b], 1))
            loss_d = 0.5 * (F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
                            + F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real)))
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            pred_fake = d(torch.cat([a, fake], 1))
            loss_g = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake)) \
                + 100.0 * F.l1_loss(fake, b)
            loss_g.backward()
            opt_g.step()
        return step

    # CycleGAN: the official cycle_gan_model.optimize_parameters (without the image pool); the digit
    # models' discriminators also take each image's label, as in gan.train.cyclegan
    gk = spec.generator
    g_a = family.Generator(**gk)
    g_b = family.Generator(**{**gk, "input_nc": gk["output_nc"], "output_nc": gk["input_nc"]})
    d_a = family.Discriminator(**{**spec.discriminator, "input_nc": gk["output_nc"]})
    d_b = family.Discriminator(**{**spec.discriminator, "input_nc": gk["input_nc"]})
    opt_g = torch.optim.Adam(itertools.chain(g_a.parameters(), g_b.parameters()), **adam)
    opt_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()), **adam)
    a, _ = _real_batch(spec, batch)
    b, _ = _real_batch(spec, batch)
    label_a, label_b = (torch.randint(spec.discriminator.get("num_classes", 1), (batch,)) for _ in "ab")
    conditional = bool(spec.discriminator.get("num_classes"))
    mse = nn.MSELoss()

    def gan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return mse(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

    def judge(d: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return d(x, labels) if conditional else d(x)

    def step() -> None:
        fake_b, fake_a = g_a(a), g_b(b)
        rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        for p in itertools.chain(d_a.parameters(), d_b.parameters()):
            p.requires_grad_(False)
        opt_g.zero_grad()
        loss_idt = (F.l1_loss(g_a(b), b) + F.l1_loss(g_b(a), a)) * 10.0 * 0.5
        loss_g = gan_loss(judge(d_a, fake_b, label_a), True) + gan_loss(judge(d_b, fake_a, label_b), True) \
            + 10.0 * (F.l1_loss(rec_a, a) + F.l1_loss(rec_b, b)) + loss_idt
        loss_g.backward()
        opt_g.step()
        for p in itertools.chain(d_a.parameters(), d_b.parameters()):
            p.requires_grad_(True)
        opt_d.zero_grad()
        loss_da = 0.5 * (gan_loss(judge(d_a, b, label_b), True) + gan_loss(judge(d_a, fake_b.detach(), label_a), False))
        loss_db = 0.5 * (gan_loss(judge(d_b, a, label_a), True) + gan_loss(judge(d_b, fake_a.detach(), label_b), False))
        (loss_da + loss_db).backward()
        opt_d.step()
    return step


def reference_step_times(model: str, batch: int, steps: int, warmup: int, **variant: bool) -> list[float]:
    step = reference_step(model, batch, **variant)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------------- the section


def _fast_bf16(model: str, batch: int) -> bool:
    """Whether the trainer's precision='bf16' autocast for this model here: what its measurement chose."""
    try:
        import torch

        from gan.train import precision

        entry = precision._read().get(precision.cache_key(torch.device("cpu"), model, batch))
        return bool(entry and entry.get("bf16"))
    except Exception:  # noqa: BLE001 - only a label depends on it
        return True


def run(quick: bool = False, precisions: tuple[str, ...] = ("fp32", "bf16"),
        peak: dict[str, float] | None = None) -> list[Row]:
    try:
        import gan.train  # noqa: F401
    except ImportError as e:
        log.warning("gan.train is not available (%s); skipping the training benchmark", e)
        return []
    cases = CASES[:2] if quick else CASES
    steps, warmup, rounds = (3, 2, 1) if quick else (5, 2, 2)
    folders: dict[int, Path] = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="forger-bench-train-") as tmp:
        for model, batch, data in cases:
            spec = get_spec(model)
            if data == "folder":
                if spec.image_size not in folders:
                    folders[spec.image_size] = image_folder(spec.image_size, root=Path(tmp) / f"img{spec.image_size}")
                data = str(folders[spec.image_size])
            samples: dict[str, list[float]] = {"ref": [], "ref_cl": []}
            convolutional = spec.family != "mnist-gan"
            for r in range(rounds):  # alternate reference and trainer runs
                samples["ref"] += reference_step_times(model, batch, steps, warmup)
                if convolutional:  # what channels_last would give the trainer
                    samples["ref_cl"] += reference_step_times(model, batch, steps, warmup, channels_last=True)
                for precision in precisions:
                    samples.setdefault(precision, []).extend(trainer_step_times(
                        model, batch, data, steps, warmup, precision, Path(tmp) / f"{model}-{precision}-{r}"))
            ref = statistics.median(samples["ref"])
            cells: dict[str, Any] = {"model": model, "batch": batch, "reference fp32 ms/step": ref * 1e3}
            flops = count_flops(reference_step(model, batch))  # one step: forward and backward passes
            cells["GFLOP/step"] = flops / 1e9
            if peak:  # how close the plain loop already is to what this CPU can do in fp32
                cells["reference % of fp32 peak"] = 100 * flops / ref / peak["fp32"]
            targets = []
            best = None
            for precision in precisions:
                ours = statistics.median(samples[precision])
                label = precision if precision == "fp32" or _fast_bf16(model, batch) else \
                    f"{precision} (measured slower: runs fp32)"
                cells[f"trainer {label} ms/step"] = ours * 1e3
                cells[f"speedup {label}"] = ref / ours
                best = max(best or 0.0, ref / ours)
            cells["fp32 loop + channels_last: speedup"] = \
                ref / statistics.median(samples["ref_cl"]) if samples["ref_cl"] else float("nan")
            if model in TARGETS:
                targets.append((f"{model} training step >= {TARGETS[model]:g}x the fp32 reference (best precision)",
                                best >= TARGETS[model]))
            rows.append(Row("training", cells, targets))
    return rows
