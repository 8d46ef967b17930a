"""Training step time: each trainer (``gan.train``) against a plain fp32 loop in the pytorch/examples
style, the same recipe on both sides, and what each extra of the trainer costs.

Per model, in one process, one torch thread, step by step in turns (reference, trainer, trainer + one
extra, ..., so that a machine busy with something else slows them alike; medians over the steps):

- **reference**: the plain loop (D on real and fake.detach(), then G; the official pix2pix / CycleGAN
  ``optimize_parameters``) on one real batch of the same data, kept in memory as the examples' inner loop
  has it after the DataLoader; the trainer's initialisation, optimizers, schedules, targets and clipping;
  the optimizers as a user writes them (``torch.optim.Adam(params, lr, betas)``).
- **trainer, extras off**: ``gan.train`` with the recipe the reference runs (no DiffAugment, mode-seeking,
  class loss, EMA, image pool or identity loss), fp32, timed from its event stream (one ``next`` = one step:
  its data pipeline, the step, reading and logging the losses). The speedup is reference / this.
- **+ extra**: the trainer with that extra on as well, its cost in ms/step over extras-off.
- **as shipped**: the model's default recipe (its extras) and ``--precision bf16`` (bf16 autocast where a
  step measures faster here, else fp32).

For models whose data is not shipped (cifar10-gan, dcgan-faces) a folder of random PNGs stands in: fine for
timing only.
"""
from __future__ import annotations

import contextlib
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from benchmarks.common import Row, count_flops, log
from gan.models import family_module
from gan.registry import ModelSpec, get_spec

# (model, batch size: the recipe's, data, timed steps of each run: more where a step is short and noisier)
CASES = [
    ("cifar10-gan", 20, "folder", 6),
    ("dcgan-faces", 64, "folder", 8),
    ("mnist-gan", 64, "mnist-offline", 30),
    ("mnist-dcgan", 32, "mnist-offline", 20),
    ("pix2pix-sketch2digit", 16, "sketch2digit", 20),
    ("cyclegan-digits2mnist", 4, "digits2mnist", 20),
]
TARGETS = {"cifar10-gan": 3.0, "dcgan-faces": 3.0}  # issue 11: speedup as shipped (needs AMX or a GPU for bf16)
# The trainer with every extra off: the recipe of the reference loop.
OFF = {"augment": False, "mode_seeking": 0.0, "class_loss": 0.0, "pool": False, "identity": 0.0, "ema": None}
EMA = {"EMA 0.999": {"ema": 0.999}}  # an option of every family, off by default


def image_folder(size: int, n: int = 256, root: Path | None = None) -> Path:
    """A folder of n random RGB PNGs of size x size (smooth blobs, so they compress like photos)."""
    root = Path(root or tempfile.mkdtemp(prefix=f"forger-bench-images{size}-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(root / f"{i:04d}.png")
    return root


def extras(spec: ModelSpec) -> dict[str, dict[str, Any]]:
    """Each extra the model's recipe adds to the plain loop, as the config that turns just it on, and EMA."""
    from gan.train.loop import trainer_class

    recipe = trainer_class(spec).defaults(spec)
    found = {}
    if recipe.get("augment"):
        found["DiffAugment"] = {"augment": True}
    if recipe.get("mode_seeking"):
        found["mode-seeking"] = {"mode_seeking": recipe["mode_seeking"]}
    if recipe.get("class_loss"):
        found["class loss"] = {"class_loss": recipe["class_loss"]}
    if recipe.get("pool"):
        found["image pool"] = {"pool": True}
    if recipe.get("identity"):
        found["identity loss"] = {"identity": recipe["identity"]}
    return {**found, **EMA}


EXTRA_COLUMNS = ("DiffAugment", "mode-seeking", "class loss", "image pool", "identity loss", *EMA)


# ---------------------------------------------------------------------------- ours: the trainer


def trainer_steps(model: str, batch: int, data: str, out: Path, precision: str = "fp32",
                  **config: Any) -> Iterator[None]:
    """Each ``next`` runs one step of ``gan.train`` (data, step, losses read and logged)."""
    from gan.train import TrainConfig, train

    events = train(TrainConfig(model=model, data=data, steps=10**6, batch_size=batch, precision=precision,
                               device="cpu", out=out, sample_every=10**9, sample_seconds=None,
                               checkpoint_every=10**9, **config))
    try:
        for _ in events:
            yield
    finally:
        events.close()  # no checkpoint, no export


# ---------------------------------------------------------------------------- the reference loops


def real_batch(model: str, batch: int, data: str) -> tuple[torch.Tensor, ...]:
    """The first batch the trainer reads from ``data``: (images, labels), (A, B) or (A, B, label A, label B)."""
    from gan.data import open_dataset
    from gan.folder_cache import decoded
    from gan.train.common import batches, pick_hardware
    from gan.train.loop import trainer_class

    spec = get_spec(model)
    dataset = decoded(open_dataset(data, task=trainer_class(spec).task, image_size=spec.image_size,
                                   channels=spec.channels, fit=spec.preprocess.fit), workers=0)
    return next(batches(dataset, batch, 0, 0, pick_hardware("cpu", "fp32"), workers=0))


def _initialised(spec: ModelSpec, *nets: nn.Module) -> None:
    """The trainer's initialisation (gan.train.noise / common): Keras' for the book's model, DCGAN's N(0, 0.02)
    for the convolutional families (and a small class embedding), PyTorch's own for mnist-gan."""
    from gan.train.common import normal_init
    from gan.train.noise import keras_init

    for net in nets:
        if spec.family == "cifar":
            keras_init(net)
        elif spec.family != "mnist-gan":
            normal_init(net)
            for m in net.modules():
                if isinstance(m, nn.Embedding):
                    nn.init.normal_(m.weight, 0.0, 0.02)


def _decay(optimizer: torch.optim.Optimizer, total: int = 2000) -> torch.optim.lr_scheduler.LambdaLR:
    """The pix2pix / CycleGAN schedule the trainer steps after every step (constant for the first half)."""
    half = total // 2
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - max(0, step - half) / (total - half + 1))


def reference_step(model: str, batch: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    """One fp32 training step in the pytorch/examples style on ``batch`` (kept in memory), with the recipe's
    initialisation, optimizers, learning rates, schedules, targets and clipping. Returns a function doing one
    step."""
    from gan.train import noise
    from gan.train.loop import trainer_class

    spec = get_spec(model)
    family = family_module(spec.family)
    lr = trainer_class(spec).defaults(spec)["lr"]
    torch.manual_seed(0)
    adam = {"lr": lr, "betas": (0.5, 0.999)}
    if spec.task == "noise":
        g, d = family.Generator(**spec.generator), family.Discriminator(**spec.discriminator)
        _initialised(spec, g, d)
        # mnist-gan's recipe: spectral normalisation in D (its dropout off), one-sided label smoothing and the learning
        # rate's linear decay, where the trainer has them
        smoothing = getattr(noise, "LABEL_SMOOTHING", 0.0) if spec.family == "mnist-gan" else 0.0
        if smoothing:
            noise.mlp_discriminator_recipe(d)
        book = spec.family == "cifar"
        if book:  # the book: RMSprop, gradient values clipped to 1, 0.05 * U(0, 1) label noise
            opt_g = torch.optim.RMSprop(g.parameters(), lr=lr, alpha=0.9, eps=1e-7)
            opt_d = torch.optim.RMSprop(d.parameters(), lr=2 * lr, alpha=0.9, eps=1e-7)
        else:
            opt_g, opt_d = torch.optim.Adam(g.parameters(), **adam), torch.optim.Adam(d.parameters(), **adam)
        real, labels = batch
        n = len(real)
        cond = bool(spec.classes)
        criterion = nn.BCEWithLogitsLoss()
        ones, zeros = torch.ones(n), torch.zeros(n)
        schedules = [_decay(opt_g), _decay(opt_d)] if smoothing else []

        def step() -> None:
            d.zero_grad()
            real_target, fake_target = (1 - 0.05 * torch.rand(n), 0.05 * torch.rand(n)) if book else \
                (ones - smoothing, zeros)
            err_real = criterion(d(real, labels if cond else None), real_target)
            err_real.backward()
            z = torch.randn(n, spec.latent_dim)
            fake_labels = torch.randint(len(spec.classes), (n,)) if cond else None
            fake = g(z, fake_labels)
            err_fake = criterion(d(fake.detach(), fake_labels), fake_target)
            err_fake.backward()
            if book:
                nn.utils.clip_grad_value_(d.parameters(), 1.0)
            opt_d.step()
            g.zero_grad()
            err_g = criterion(d(fake, fake_labels), ones)
            err_g.backward()
            if book:
                nn.utils.clip_grad_value_(g.parameters(), 1.0)
            opt_g.step()
            for s in schedules:
                s.step()
        return step

    if spec.family == "pix2pix":
        g, d = family.Generator(**spec.generator), family.Discriminator(**spec.discriminator)
        _initialised(spec, g, d)
        opt_g, opt_d = torch.optim.Adam(g.parameters(), **adam), torch.optim.Adam(d.parameters(), **adam)
        schedules = [_decay(opt_g), _decay(opt_d)]
        a, b = batch

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
            for s in schedules:
                s.step()
        return step

    # CycleGAN: the official cycle_gan_model.optimize_parameters without the image pool and the identity loss
    # (the extras-off recipe); the digit models' discriminators also take each image's label, as in
    # gan.train.cyclegan
    gk = spec.generator
    g_a = family.Generator(**gk)
    g_b = family.Generator(**{**gk, "input_nc": gk["output_nc"], "output_nc": gk["input_nc"]})
    d_a = family.Discriminator(**{**spec.discriminator, "input_nc": gk["output_nc"]})
    d_b = family.Discriminator(**{**spec.discriminator, "input_nc": gk["input_nc"]})
    _initialised(spec, g_a, g_b, d_a, d_b)
    opt_g = torch.optim.Adam(itertools.chain(g_a.parameters(), g_b.parameters()), **adam)
    opt_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()), **adam)
    schedules = [_decay(opt_g), _decay(opt_d)]
    a, b, *labelled = batch
    conditional = bool(spec.discriminator.get("num_classes"))
    label_a, label_b = labelled if conditional else (None, None)
    mse = nn.MSELoss()

    def gan_loss(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return mse(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

    def judge(d: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return d(x, labels) if conditional else d(x)

    def step() -> None:
        fake_b, fake_a = g_a(a), g_b(b)
        rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        for p in itertools.chain(d_a.parameters(), d_b.parameters()):
            p.requires_grad_(False)
        opt_g.zero_grad()
        loss_g = gan_loss(judge(d_a, fake_b, label_a), True) + gan_loss(judge(d_b, fake_a, label_b), True) \
            + 10.0 * (F.l1_loss(rec_a, a) + F.l1_loss(rec_b, b))
        loss_g.backward()
        opt_g.step()
        for p in itertools.chain(d_a.parameters(), d_b.parameters()):
            p.requires_grad_(True)
        opt_d.zero_grad()
        loss_da = 0.5 * (gan_loss(judge(d_a, b, label_b), True) + gan_loss(judge(d_a, fake_b.detach(), label_a), False))
        loss_db = 0.5 * (gan_loss(judge(d_b, a, label_a), True) + gan_loss(judge(d_b, fake_a.detach(), label_b), False))
        (loss_da + loss_db).backward()
        opt_d.step()
        for s in schedules:
            s.step()
    return step


# ---------------------------------------------------------------------------- the section


def _load() -> float:
    """The 1-minute load average (nan where /proc/loadavg is missing)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def interleaved(runs: dict[str, Callable[[], Any]], steps: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """{"cpu": {run: seconds of each call}, "wall": ...} for ``steps`` calls of every run, the runs taking turns
    step by step, after ``warmup`` turns, in a new (seeded) order each turn: a run that leaves the caches or the
    allocator in some state does not always hand it to the same next run. "cpu" is this process's CPU time: with
    one torch thread every op of a step runs on the calling thread, and the time other processes hold the cores
    does not count (their share of the caches and of memory bandwidth still does)."""
    times: dict[str, dict[str, list[float]]] = {"cpu": {name: [] for name in runs}, "wall": {name: [] for name in runs}}
    order = list(runs)
    for turn in range(warmup + steps):
        if turn >= warmup:
            random.Random(turn).shuffle(order)
        for name in order:
            run = runs[name]
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            if turn >= warmup:
                times["cpu"][name].append(time.process_time() - cpu)
                times["wall"][name].append(time.perf_counter() - wall)
    return times


def measure(model: str, batch: int, data: str, tmp: Path, steps: int, warmup: int,
            shipped: bool = True) -> dict[str, Any]:
    """One model's cells: reference, trainer extras off, each extra's cost, as shipped."""
    spec = get_spec(model)
    load_before = _load()
    with contextlib.ExitStack() as stack:
        runs: dict[str, Callable[[], Any]] = {"reference": reference_step(model, real_batch(model, batch, data))}

        def trainer(name: str, **config: Any) -> None:
            steps_of = trainer_steps(model, batch, data, tmp / f"{model}-{len(runs)}", **config)
            stack.callback(steps_of.close)
            runs[name] = steps_of.__next__

        trainer("off", **OFF)
        for name, config in extras(spec).items():
            trainer(name, **{**OFF, **config})
        if shipped:
            trainer("shipped", precision="bf16")
        times = interleaved(runs, steps, warmup)
    ms = {name: 1e3 * statistics.median(t) for name, t in times["cpu"].items()}
    wall = {name: statistics.median(t) for name, t in times["wall"].items()}
    cells: dict[str, Any] = {"model": model, "batch": batch, "load average": f"{load_before:.1f} / {_load():.1f}",
                             "reference ms/step": ms["reference"], "trainer, extras off ms/step": ms["off"],
                             "speedup": ms["reference"] / ms["off"],
                             "speedup, wall clock": wall["reference"] / wall["off"]}
    for name in EXTRA_COLUMNS:
        cells[f"+ {name} ms/step"] = ms[name] - ms["off"] if name in ms else float("nan")
    if shipped:
        cells["as shipped ms/step"] = ms["shipped"]
        cells["as shipped: precision"] = "bf16 autocast" if _fast_bf16(model, batch) else "fp32 (bf16 measured slower)"
        cells["as shipped: speedup"] = ms["reference"] / ms["shipped"]
    return cells


def _fast_bf16(model: str, batch: int) -> bool:
    """Whether the trainer's precision='bf16' autocast for this model here: what its measurement chose."""
    from gan.train import precision

    entry = precision._read().get(precision.cache_key(torch.device("cpu"), model, batch))
    return bool(entry and entry.get("bf16"))


def run(quick: bool = False, threads: int = 1) -> list[Row]:
    try:
        import gan.train  # noqa: F401
    except ImportError as e:
        log.warning("gan.train is not available (%s); skipping the training benchmark", e)
        return []
    cases = CASES[2:4] if quick else CASES
    warmup = 2
    folders: dict[int, Path] = {}
    rows = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # both sides alike; one thread is what a shared machine gives
    try:
        with tempfile.TemporaryDirectory(prefix="forger-bench-train-") as tmp:
            for model, batch, data, steps in cases:
                spec = get_spec(model)
                if data == "folder":
                    if spec.image_size not in folders:
                        root = Path(tmp) / f"img{spec.image_size}"
                        folders[spec.image_size] = image_folder(spec.image_size, root=root)
                    data = str(folders[spec.image_size])
                timed = 3 if quick else steps
                cells = measure(model, batch, data, Path(tmp), timed, warmup)
                cells["torch threads"] = threads
                cells["steps timed per run"] = timed
                flops = count_flops(reference_step(model, real_batch(model, batch, data)))  # forward and backward
                cells["GFLOP/step"] = flops / 1e9
                cells["reference GFLOP per CPU s"] = flops / 1e9 / (cells["reference ms/step"] / 1e3)
                targets = [(f"{model}: training step (trainer, extras off) >= 1.0x the plain loop, same recipe",
                            cells["speedup"] >= 1.0)]
                if model in TARGETS:
                    targets.append((f"{model} training step as shipped >= {TARGETS[model]:g}x the fp32 reference",
                                    cells["as shipped: speedup"] >= TARGETS[model]))
                rows.append(Row("training", cells, targets))
                log.warning("training %s: %s", model, {k: v for k, v in cells.items() if "ms" in k or "speedup" in k})
    finally:
        torch.set_num_threads(before)
    return rows
