"""The training loop every family shares: data -> D step -> G step -> log -> sample -> checkpoint.

``train(config)`` prepares everything first (so a missing dataset, an empty folder or unpaired
A/B files raise before the first step), then yields one ``TrainEvent`` per step. At the end, or
when ``stop`` is set, or on KeyboardInterrupt, it saves a checkpoint, exports the weights and
yields a last event with ``done=True``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import random
import shlex
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gan import checks
from gan.data import KEYWORDS, open_dataset
from gan.folder_cache import decoded
from gan.registry import ModelSpec, get_spec
from gan.train import precision
from gan.train.common import (
    CHECKPOINT_FORMAT, CHECKPOINT_NAME, EMA, Hardware, Trainer, batches, detach, epochs_of, evaluating,
    export_weights, image_grid, load_checkpoint, out_of_memory_hint, pick_hardware, rng_state, save_checkpoint,
    set_rng_state, steps_for_epochs, unwrap,
)
from gan.train.config import DEVICES, LOSSES, PRECISIONS, TrainConfig
from gan.train.distributed import process_mean
from gan.train.diversity import Diversity, DiversityMonitor

log = logging.getLogger(__name__)

LOSSES_NAME = "losses.jsonl"  # the run's losses, one JSON line per step read (every step on a CPU)
DIVERSITY_NAME = "diversity.jsonl"  # the collapse alarm's measurements, one JSON line per sample grid
# What a resumed run keeps from its checkpoint, whatever the new config says.
RECIPE_FIELDS = ("data", "classes", "batch_size", "lr", "loss", "ema", "seed", "augment", "mode_seeking",
                 "class_loss", "pool", "identity")
# What a checkpoint written before a recipe field existed ran with.
BEFORE_FIELD = {"class_loss": 0.0}


@dataclass
class TrainEvent:
    """What happened in one step (or, with ``done``, at the end of the run)."""

    step: int  # steps done so far
    total: int  # steps the run will do
    losses: dict[str, float]  # this step's losses, e.g. {"D": 0.61, "G": 1.02}; {} between log_every steps
    grid: Image.Image | None = None  # a sample grid, every sample_every steps and at the end
    checkpoint: Path | None = None  # the checkpoint written at this step, if any
    done: bool = False  # the last event of the run
    weights: Path | None = None  # done: the exported weights folder (loadable with gan.load_generator)
    message: str = ""  # done: what happened, in words
    finished: bool = False  # done: the run ended by itself (all its steps, or its time budget), not stopped
    diversity: Diversity | None = None  # noise models, with each grid: how varied the samples are (the collapse alarm)


@dataclass
class Start:
    """A run that starts from trained weights, on data given in memory: fine-tuning (``gan.train.finetune``)."""

    dataset: Any  # what the run trains on, instead of config.data's dataset (config.data then only describes it)
    reference: tuple[torch.Tensor, torch.Tensor]  # real images and labels the collapse alarm compares with
    weights: str | Path | None = None  # the generator's and discriminator's weights folder; None: the model's own
    command: str = ""  # how to run it again, for the model card


def trainer_class(spec: ModelSpec) -> type[Trainer]:
    """The family trainer for a model."""
    if spec.task == "noise":
        from gan.train.noise import NoiseTrainer
        return NoiseTrainer
    if spec.family == "pix2pix":
        from gan.train.pix2pix import Pix2PixTrainer
        return Pix2PixTrainer
    if spec.family == "cyclegan":
        from gan.train.cyclegan import CycleGANTrainer
        return CycleGANTrainer
    raise ValueError(f"no trainer for family {spec.family!r}")


# ---------------------------------------------------------------------------- setup


# Bounds on a run's numbers: checked before anything is allocated, for new and resumed runs alike.
BOUNDS = {"minutes": (0.01, 100_000, False), "sample_seconds": (0.1, 100_000, False),
          "steps": (1, 10_000_000, True), "epochs": (1e-6, 100_000, False), "batch_size": (1, checks.MAX_BATCH_SIZE, True),
          "lr": (1e-12, 1.0, False), "sample_every": (1, 10**12, True), "checkpoint_every": (1, 10**12, True),
          "log_every": (1, 10**12, True), "workers": (0, 256, True)}


def _check(config: TrainConfig) -> None:
    for name, (lo, hi, integer) in BOUNDS.items():
        value = getattr(config, name)
        if value is not None:
            checks.number(name, value, lo, hi, integer=integer)
    if config.steps is not None and config.epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; use one of {', '.join(LOSSES)}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {config.precision!r}; use fp32 or bf16")
    if config.device not in DEVICES:
        raise ValueError(f"unknown device {config.device!r}; use cpu, cuda or auto")
    if config.ema is not None and not 0.0 < config.ema < 1.0:
        raise ValueError(f"ema must be a decay between 0 and 1 (e.g. 0.999), got {config.ema}")
    for name in ("mode_seeking", "class_loss", "identity"):
        value = getattr(config, name)
        if value is not None and not 0 <= value <= 100:
            raise ValueError(f"{name} must be 0 (off) or a positive weight up to 100, got {value}")


def _from_checkpoint(config: TrainConfig, saved: dict[str, Any]) -> TrainConfig:
    """A resumed run keeps its recipe; only the length, the output and the hardware may change."""
    defaults = TrainConfig(model=config.model)
    changes: dict[str, Any] = {}
    for name in RECIPE_FIELDS:
        new, old = getattr(config, name), saved.get(name, BEFORE_FIELD.get(name))
        if new != old and new != getattr(defaults, name):
            log.warning("resuming: the run keeps %s=%r (ignoring %r)", name, old, new)
        changes[name] = old
    if config.steps is None and config.epochs is None:
        changes["steps"] = saved["steps"]
    return dataclasses.replace(config, **changes)


def _resolve(config: TrainConfig, spec: ModelSpec, family: type[Trainer]) -> TrainConfig:
    """Fill what the config leaves None from the registry and the family's recipe."""
    recipe = family.defaults(spec)
    data, classes = config.data, config.classes
    if data is None:
        words = spec.data.split()
        data = words[0] if words else ""
        if classes is None and "--classes" in words:
            classes = words[words.index("--classes") + 1:]
        if data not in KEYWORDS[family.task] and not Path(data).is_dir():
            raise ValueError(f"{spec.name!r} has no dataset here: pass data=PATH (--data PATH), e.g. {spec.data}")
    if spec.task != "noise" and config.loss != "bce":
        log.warning("%s trains with its paper's loss; ignoring loss=%r", spec.family, config.loss)
    augment = config.augment if config.augment is not None else recipe.get("augment", False)
    if augment and spec.task != "noise":
        raise ValueError("augment (DiffAugment) is for noise models only")
    mode_seeking = config.mode_seeking if config.mode_seeking is not None else recipe.get("mode_seeking", 0.0)
    if mode_seeking and not spec.conditional:
        raise ValueError("mode_seeking (MSGAN) is for class-conditional noise models, such as mnist-dcgan")
    class_loss = config.class_loss if config.class_loss is not None else recipe.get("class_loss", 0.0)
    if class_loss and not spec.conditional:
        raise ValueError("class_loss (P2GAN) is for class-conditional noise models, such as mnist-dcgan")
    pool = config.pool if config.pool is not None else recipe.get("pool", False)
    identity = config.identity if config.identity is not None else recipe.get("identity", 0.0)
    if (pool or identity) and spec.family != "cyclegan":
        raise ValueError("pool and identity (the image pool, the identity loss) are for CycleGAN models only")
    return dataclasses.replace(config, data=data, classes=classes, augment=augment, mode_seeking=mode_seeking,
                               class_loss=class_loss, pool=pool, identity=identity,
                               batch_size=config.batch_size or recipe["batch_size"], lr=config.lr or recipe["lr"])


def _command(config: TrainConfig, total: int, recipe: dict[str, Any]) -> str:
    parts = ["python -m gan train", config.model, "--data", shlex.quote(str(config.data))]
    if config.classes:
        parts += ["--classes", *config.classes]
    parts += ["--steps", str(total), "--batch-size", str(config.batch_size), "--lr", f"{config.lr:g}"]
    if config.loss != "bce":
        parts += ["--loss", config.loss]
    if config.ema:
        parts += ["--ema", str(config.ema)]
    if config.augment != recipe.get("augment", False):
        parts += ["--augment" if config.augment else "--no-augment"]
    if config.mode_seeking != recipe.get("mode_seeking", 0.0):
        parts += ["--mode-seeking", f"{config.mode_seeking:g}"]
    if config.class_loss != recipe.get("class_loss", 0.0):
        parts += ["--class-loss", f"{config.class_loss:g}"]
    if config.pool != recipe.get("pool", False):
        parts += ["--pool" if config.pool else "--no-pool"]
    if config.identity != recipe.get("identity", 0.0):
        parts += ["--identity", f"{config.identity:g}"]
    if config.seed:
        parts += ["--seed", str(config.seed)]
    return " ".join(parts)


@dataclass
class _Run:
    """A prepared run: everything the loop needs."""

    config: TrainConfig
    spec: ModelSpec
    hw: Hardware
    trainer: Trainer
    dataset: Any
    fixed: dict[str, Any]
    total: int
    step: int = 0
    elapsed: float = 0.0  # training seconds before this session (resumed runs)
    ema: dict[str, EMA] = field(default_factory=dict)
    start: Start | None = None  # fine-tuning: where the run started
    monitor: DiversityMonitor | None = None  # noise models: the collapse alarm
    shown: torch.Tensor | None = None  # the last sample grid's images (N, C, H, W)

    @property
    def checkpoint_path(self) -> Path:
        return self.config.out / CHECKPOINT_NAME

    @property
    def losses_path(self) -> Path:
        return self.config.out / LOSSES_NAME

    def start_losses_log(self) -> None:
        """A new run starts its losses log empty; a resumed one keeps the lines up to its checkpoint's step."""
        path = self.losses_path
        lines = path.read_text().splitlines() if self.step and path.exists() else []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines if json.loads(line)["step"] <= self.step))

    def log_losses(self, step: int, losses: dict[str, float]) -> None:
        """One JSON line per step read: {"step": 3, "D": 0.61, "G": 1.02, ...}."""
        with self.losses_path.open("a") as f:
            f.write(json.dumps({"step": step, **losses}) + "\n")

    def diversity(self, step: int) -> Diversity | None:
        """The collapse alarm's measurement now (noise models, on the main process; for the digit models of the
        live generator, not of its EMA, which lags), logged to diversity.jsonl."""
        if self.monitor is None or not self.hw.is_main:
            return None
        if self.monitor.classifier is None and self.shown is not None:  # measured in pixels: the grid's images
            found = self.monitor.measure_images(self.shown, step)
        else:  # the digit models: the live generator on the monitor's own latents, in the classifier's features
            found = self.monitor.measure(unwrap(getattr(self.trainer, self.trainer.generators[0])), step)
        with (self.config.out / DIVERSITY_NAME).open("a") as f:
            f.write(json.dumps(found.as_dict()) + "\n")
        if found.alarm:
            log.info("step %d: %s", step, found.alarm)
        return found

    def generators(self) -> dict[str, torch.nn.Module]:
        """The generators to sample and export: the EMA copies when there are some (never a DDP wrapper,
        whose state_dict keys start with "module.")."""
        return {name: self.ema[name].model if name in self.ema else unwrap(getattr(self.trainer, name))
                for name in self.trainer.generators}

    def final_generators(self) -> dict[str, torch.nn.Module]:
        """What gets exported: the generators, EMA copies with BatchNorm statistics of their own."""
        gens = self.generators()
        if self.ema:  # the copied statistics belong to the live weights, not to the average
            gens = {name: self.trainer.recalibrated(g) for name, g in gens.items()}
        return gens

    def grid(self, gens: dict[str, torch.nn.Module] | None = None) -> Image.Image:
        gens = self.generators() if gens is None else gens
        with torch.no_grad(), evaluating(*gens.values()), self.hw.autocast():
            images, nrow = self.trainer.samples(gens, self.fixed)
        self.shown = images.detach().float().cpu()
        return image_grid(images, nrow)

    def save_grid(self, grid: Image.Image, step: int) -> None:
        path = self.config.out / "samples" / f"step_{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid.save(path)

    def checkpoint(self, step: int, elapsed: float, losses: dict[str, float]) -> Path:
        config = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self.config).items()}
        config["steps"], config["epochs"] = self.total, None
        return save_checkpoint(self.checkpoint_path, {
            "format": CHECKPOINT_FORMAT,
            "model": self.spec.name,
            "family": self.spec.family,
            "model_args": {"generator": self.spec.generator, "discriminator": self.spec.discriminator},
            "config": config,
            "step": step,
            "total": self.total,
            "elapsed": elapsed,
            "losses": losses,
            "trainer": self.trainer.state_dict(),
            "ema": {name: e.model.state_dict() for name, e in self.ema.items()},
            "fixed": self.fixed,
            "rng": rng_state(self.trainer.noise),
        })

    def training_facts(self, step: int, elapsed: float, losses: dict[str, float]) -> dict[str, Any]:
        c = self.config
        return {
            "model": self.spec.name, "data": c.data, "classes": c.classes, "dataset_size": len(self.dataset),
            "steps": step, "batch_size": c.batch_size, "epochs": epochs_of(step, c.batch_size, len(self.dataset),
                                                                           self.hw.world),
            "lr": c.lr, "loss": c.loss if self.spec.task == "noise" else None, "ema": c.ema, "seed": c.seed,
            "recipe": self.trainer.describe() + (f"; EMA {c.ema} of the generator exported" if c.ema else ""),
            "precision": "bf16 autocast" if self.hw.bf16 else "fp32",
            "train_seconds": round(elapsed, 1), "hardware": self.hw.describe(),
            "final_losses": losses,
            "command": self.start.command if self.start is not None and self.start.command else
            _command(c, self.total, self.trainer.defaults(self.spec)),
        }


def _remove_leftovers(out: Path) -> None:
    """Delete the half-written files (``.NAME.*.tmp`` of atomic writes) that a killed run left behind."""
    for folder in [out, *(out / "weights").glob("*")] if out.exists() else []:
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
            log.info("removing %s, left by an interrupted run", tmp.name)
            tmp.unlink(missing_ok=True)


def _monitor(spec: ModelSpec, dataset: Any, seed: int, start: Start | None) -> DiversityMonitor:
    """The collapse alarm, measuring against real images of the run's data (a seeded choice of them), or
    against the reference images a fine-tuning run gives."""
    from gan.train.diversity import SAMPLES

    if start is not None:
        return DiversityMonitor(spec, *start.reference, seed=seed)
    index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:SAMPLES]
    items = [dataset[int(i)] for i in index]
    labels = torch.tensor([int(label) for _, label in items])
    return DiversityMonitor(spec, torch.stack([image for image, _ in items]), labels, seed)


def _start_from(trainer: Trainer, spec: ModelSpec, start: Start) -> None:
    """Load the start's weights into the trainer's generator and discriminator (before any EMA copy is made)."""
    import gan

    if trainer.generators != ("G",) or trainer.discriminators != ("D",):
        raise ValueError(f"{spec.name}: only models with one generator and one discriminator can be fine-tuned")
    G = gan.load_generator(spec.name, weights=start.weights)
    D = gan.load_discriminator(spec.name, weights=start.weights, pretrained=True)
    unwrap(trainer.G).load_state_dict(G.state_dict())
    unwrap(trainer.D).load_state_dict(D.state_dict())


def prepare(config: TrainConfig, start: Start | None = None) -> _Run:
    """Open the data, build (or restore) the models: everything that can fail before the first step.
    ``start``: fine-tune from trained weights on the data it holds."""
    _check(config)
    spec = get_spec(config.model)
    family = trainer_class(spec)
    checkpoint = None
    if config.resume:
        path = config.out / CHECKPOINT_NAME
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint to resume at {path}; start the run without --resume")
        checkpoint = load_checkpoint(path)
        if checkpoint["model"] != spec.name:
            raise ValueError(f"{path} is a checkpoint of {checkpoint['model']!r}, not {spec.name!r}")
        config = _from_checkpoint(config, checkpoint["config"])
        try:
            _check(config)  # the settings read back from the checkpoint are checked like new ones
        except (ValueError, TypeError, AttributeError) as e:
            raise ValueError(f"{path.name} holds settings that are not valid ({e}): the checkpoint is damaged; "
                             f"start the run again without --resume") from None
    _remove_leftovers(config.out)
    if not config.resume and (config.out / CHECKPOINT_NAME).exists():
        log.warning("starting a new run in %s: its checkpoint will be replaced (use --resume to continue it)",
                    config.out)
    config = _resolve(config, spec, family)
    if start is not None:
        if config.resume:
            raise ValueError("a fine-tuning run starts from its weights: it cannot resume")
        dataset = start.dataset
    else:
        dataset = open_dataset(config.data, task=family.task, image_size=spec.image_size, channels=spec.channels,
                               classes=config.classes, fit=spec.preprocess.fit)
    if len(dataset) == 0:
        raise ValueError(f"dataset {config.data!r} is empty")
    dataset = decoded(dataset, config.workers)  # a folder that fits: decoded once (or read from the cache)
    hw = pick_hardware(config.device, config.precision)
    if config.steps is not None:
        total = config.steps
    elif config.epochs is not None:
        total = steps_for_epochs(config.epochs, config.batch_size, len(dataset), hw.world)
    else:
        total = family.defaults(spec)["steps"]
    config = dataclasses.replace(config, steps=total, epochs=None)

    # Seed everything, then build: the same seed gives the same initial networks.
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    trainer = family(spec, config, hw, total)
    if start is not None:
        _start_from(trainer, spec, start)
    run = _Run(config, spec, hw, trainer, dataset, fixed={}, total=total, start=start)
    if config.ema is not None:
        run.ema = {name: EMA(getattr(trainer, name), config.ema) for name in trainer.generators}
    if checkpoint is None:
        run.fixed = trainer.fixed_inputs(dataset)
    else:
        trainer.load_state_dict(checkpoint["trainer"])
        for name, state in checkpoint["ema"].items():
            run.ema[name].model.load_state_dict(state)
        run.fixed = checkpoint["fixed"]
        run.step, run.elapsed = checkpoint["step"], checkpoint["elapsed"]
        set_rng_state(checkpoint["rng"], trainer.noise)  # every process's: they all draw for the global batch
        log.info("resuming %s at step %d of %d", spec.name, run.step, total)
    if spec.task == "noise" and hw.is_main:
        run.monitor = _monitor(spec, dataset, config.seed, start)
    if hw.bf16 and hw.world == 1:  # bf16 asked for: kept only where a training step measures faster
        first_batch = lambda: next(batches(dataset, config.batch_size, config.seed, 0, hw, workers=0))  # noqa: E731
        precision.pick(trainer, first_batch, spec.name, config.batch_size)
    hw.distribute(trainer)
    return run


# ---------------------------------------------------------------------------- the loop


def train(config: TrainConfig, *, stop: threading.Event | None = None, start: Start | None = None
          ) -> Iterator[TrainEvent]:
    """Train ``config.model``; yields one TrainEvent per step and a last one with ``done=True``.

    Everything that can fail before training (unknown model, missing or empty dataset, A/B
    files that do not pair up, a checkpoint of another model) raises here, at the call.
    Setting ``stop`` (or a KeyboardInterrupt) ends the run cleanly after the current step:
    checkpoint, export, done event. Resume with ``resume=True``: the run continues exactly
    (same losses as an uninterrupted run on the same machine). ``start`` fine-tunes trained weights on data
    given in memory (``gan.train.finetune``).

    Example:
        >>> for event in train(TrainConfig("mnist-dcgan", steps=2000)):
        ...     if event.done:
        ...         g = gan.load_generator("mnist-dcgan", weights=event.weights)
    """
    return _loop(prepare(config, start), stop)


def _loop(run: _Run, stop: threading.Event | None) -> Iterator[TrainEvent]:
    config, trainer, hw = run.config, run.trainer, run.hw
    data = batches(run.dataset, config.batch_size, config.seed, run.step, hw, config.workers)
    step, losses, interrupted, out_of_time = run.step, {}, False, False
    started = last_grid = time.perf_counter()
    budget = None if config.minutes is None else config.minutes * 60.0 - run.elapsed  # seconds left
    log_every = config.log_every or (1 if hw.device.type == "cpu" else 10)
    if hw.is_main:
        run.start_losses_log()
        (config.out / DIVERSITY_NAME).unlink(missing_ok=True)  # measured again from this session's first grid
    try:
        while step < run.total and not (stop is not None and stop.is_set()):
            if budget is not None and time.perf_counter() - started >= budget:
                out_of_time = True
                break
            batch = next(data)
            with out_of_memory_hint(config.batch_size, hw.device):
                fake = trainer.generate(batch)  # G forward, kept for the G step
                d_losses = trainer.d_step(batch, detach(fake))  # D learns real vs fake.detach()
                g_losses = trainer.g_step(batch, fake)  # G learns to fool the D that just learned
            trainer.end_step()
            for name, ema in run.ema.items():
                ema.update(getattr(trainer, name))
            step += 1

            grid = checkpoint = diversity = None
            now = time.perf_counter()
            # a grid every sample_every steps, after the first step (something to see at once), and whenever
            # sample_seconds have passed: a slow machine still shows progress every few seconds
            due = step % config.sample_every == 0 or step == 1 or (
                config.sample_seconds is not None and now - last_grid >= config.sample_seconds)
            saving = step % config.checkpoint_every == 0 and step < run.total and hw.is_main
            shown = {}
            named = {**d_losses, **g_losses}
            # the mean over processes: every process takes part at every step (on a GPU without waiting for it)
            values = process_mean(torch.stack([v.detach().float() for v in named.values()]))
            if step % log_every == 0 or due or saving or step == run.total:  # reading the losses waits for the GPU
                losses = shown = dict(zip(named, values.tolist()))
                if hw.is_main:
                    run.log_losses(step, losses)
                if not all(np.isfinite(v) for v in losses.values()):
                    raise RuntimeError(
                        f"the losses are not finite at step {step} ({losses}); try a lower --lr or --precision fp32. "
                        f"The last good checkpoint is {run.checkpoint_path} (if any); resume with --resume")
            if due and step < run.total:
                last_grid = now
                grid = run.grid()
                diversity = run.diversity(step)
                if hw.is_main:
                    run.save_grid(grid, step)
            if saving:
                checkpoint = run.checkpoint(step, run.elapsed + time.perf_counter() - started, losses)
            yield TrainEvent(step, run.total, shown, grid, checkpoint, diversity=diversity)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted at step %d; saving a checkpoint", step)
    yield _finish(run, step, run.elapsed + time.perf_counter() - started, losses, interrupted, out_of_time)


def _finish(run: _Run, step: int, elapsed: float, losses: dict[str, float], interrupted: bool,
            out_of_time: bool = False) -> TrainEvent:
    """Checkpoint, final grid, export: the last event of every run."""
    config, hw = run.config, run.hw
    final = run.final_generators()
    grid = run.grid(final)
    diversity = run.diversity(step)
    checkpoint = folder = None
    folders: list[Path] = []
    if hw.is_main:
        run.save_grid(grid, step)
        checkpoint = run.checkpoint(step, elapsed, losses)
        dtype = torch.float16 if config.fp16_export else torch.float32
        folders = export_weights(run.trainer, config.out, final,
                                 run.training_facts(step, elapsed, losses), grid, dtype)
        folder = folders[0]
    if hw.accelerator is not None:
        hw.accelerator.wait_for_everyone()
    finished = step >= run.total or out_of_time
    also = f" (reverse direction: {folders[1]})" if len(folders) > 1 else ""
    if out_of_time:
        message = (f"time budget of {config.minutes:g} min reached: trained {run.spec.name} for {step} steps "
                   f"({elapsed:.0f} s); weights in {folder}{also}")
    elif step < run.total:
        how = "interrupted" if interrupted else "stopped"
        message = (f"{how} at step {step} of {run.total}; checkpoint saved to {checkpoint}, "
                   f"weights to {folder}; resume with: python -m gan train {config.model} "
                   f"--out {shlex.quote(str(config.out))} --resume")
    else:
        message = f"trained {run.spec.name} for {step} steps ({elapsed:.0f} s); weights in {folder}{also}"
    log.info(message)
    return TrainEvent(step, run.total, losses, grid, checkpoint, done=True, weights=folder, message=message,
                      finished=finished, diversity=diversity)
