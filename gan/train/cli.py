"""python -m gan train MODEL ... | finetune MODEL HAND | refine-expert MODEL | push OUT --repo user/name (registered by
gan.__main__)."""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any


def follow(start: Callable[[threading.Event], Iterator[Any]], desc: str) -> tuple[Any, bool]:
    """Run a training (``start(stop)`` returns its events) with a progress bar: (the last event or None, whether
    this is the main process). The first Ctrl-C ends the run after the current step (checkpoint, export); a
    second one at once. The collapse alarm is written above the bar when it goes off."""
    from tqdm import tqdm

    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)
        tqdm.write("stopping after this step: saving a checkpoint and the weights (Ctrl-C again to abort)",
                   file=sys.stderr)

    events = start(stop)  # errors in the data or the config raise here, before any step
    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch / torchrun, only the first process talks
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        signal.signal(signal.SIGINT, on_sigint)
    bar, last, alarm = None, None, ""
    try:
        while True:
            try:
                event = next(events)
            except StopIteration:
                break
            try:
                last = event
                if bar is None:
                    bar = tqdm(total=event.total, initial=event.step - (0 if event.done else 1), unit="step",
                               desc=desc, dynamic_ncols=True, disable=not main)
                if event.diversity is not None:
                    if event.diversity.alarm and not alarm and main:
                        tqdm.write(f"step {event.step}: {event.diversity.alarm}", file=sys.stderr)
                    alarm = event.diversity.alarm
                if not event.done:
                    bar.update(1)
                    if event.losses:  # read every log_every steps
                        bar.set_postfix({k: f"{v:.3f}" for k, v in event.losses.items()}, refresh=False)
            except KeyboardInterrupt:  # Ctrl-C while showing progress: let the run finish cleanly
                stop.set()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    return last, main


def cpu_threads(threads: int | None, device: str) -> int:
    """Set and return torch's CPU threads: ``threads`` (--threads), or, training on the CPU, as many as the cores
    other processes leave idle now (at least 1, at most torch's default). Two threads on 2 cores, one of them
    kept busy by another process, made 14 steps of mnist-dcgan in a minute where one thread made 84: each
    parallel op waits for the thread that shares its core."""
    import torch

    from gan import hardware

    if threads:
        torch.set_num_threads(threads)
    elif torch.get_num_threads() > 1 and not (device in ("cuda", "auto") and torch.cuda.is_available()):
        idle = hardware.idle_cores()
        if idle is not None:
            torch.set_num_threads(max(1, min(torch.get_num_threads(), round(idle))))
    return torch.get_num_threads()


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gan.train import TrainConfig, train

    config = TrainConfig(
        model=args.model, data=args.data, steps=args.steps, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, out=Path(args.out) if args.out else None, resume=args.resume, sample_every=args.sample_every,
        device=args.device, precision=args.precision, loss=args.loss, ema=args.ema, classes=args.classes,
        workers=args.workers, seed=args.seed, checkpoint_every=args.checkpoint_every, fp16_export=args.fp16_export,
        augment=args.augment, mode_seeking=args.mode_seeking, class_loss=args.class_loss, pool=args.pool,
        identity=args.identity, minutes=args.minutes,
        sample_seconds=args.sample_seconds, log_every=args.log_every,
    )
    cpu_threads(args.threads, args.device)
    last, main = follow(lambda stop: train(config, stop=stop), args.model)
    if last is None or not last.done:
        return 1
    if not main:
        return 0 if last.finished else 130
    if not last.finished:
        print(f"interrupted; checkpoint saved to {last.checkpoint}, resume with: python -m gan train {args.model} "
              f"--out {shlex.quote(str(config.out))} --resume", file=sys.stderr)
        return 130
    from gan.registry import get_spec

    weights = shlex.quote(str(last.weights))
    try_it = (f"python -m gan sample {args.model} --weights {weights} -n 16" if get_spec(args.model).task == "noise"
              else f"python -m gan translate {args.model} IMAGE --weights {weights}")
    print(last.message)
    print(f"samples: {config.out / 'samples' / f'step_{last.step:06d}.png'}; try: {try_it}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import json

    from gan.evaluate.style import hand_report
    from gan.train.finetune import finetune, read_hand

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    hand = read_hand(args.hand, args.model)
    last, _ = follow(lambda stop: finetune(
        hand, model=args.model, out=args.out, steps=args.steps, lr=args.lr, anchor=args.anchor, ema=args.ema or None,
        batch_size=args.batch_size, weights=args.weights, seed=args.seed, minutes=args.minutes,
        precision=args.precision, device=args.device, stop=stop), f"{args.model} on your hand")
    if last is None or not last.done:
        return 1
    print(last.message)
    report = hand_report(args.model, hand.images, str(last.weights), before=args.weights)
    (last.weights / "handwriting.json").write_text(json.dumps(report, indent=2) + "\n")
    b, a, h, m = report["before"], report["after"], report["hand"], report["mnist"]
    print(f"digit asked for, read by the digit classifier: {b['requested_digit']:.1%} before, "
          f"{a['requested_digit']:.1%} after ({report['samples']} samples)")
    for stat, unit in (("thickness", "px"), ("slant", "degrees")):
        moved = report["shift"].get(stat)
        print(f"{stat}: MNIST {m[stat]:.2f}, your hand {h[stat]:.2f}, samples before {b[stat]:.2f}, after "
              f"{a[stat]:.2f} {unit}" + ("" if moved is None else f" ({moved:.0%} of the way to your hand)"))
    weights = shlex.quote(str(last.weights))
    print(f"try: python -m gan sample {args.model} --weights {weights} --label 7 -n 16")
    return 0 if last.finished else 130


def cmd_push(args: argparse.Namespace) -> int:
    from gan.train import push_run

    url = push_run(args.out, args.repo, token=args.token, private=args.private, model=args.model)
    print(f"uploaded to {url}")
    return 0


def cmd_refine_expert(args: argparse.Namespace) -> int:
    from gan.train.expert import refine_expert

    path = refine_expert(args.model, args.out, weights=args.weights, steps=args.steps, seed=args.seed)
    print(f"wrote {path}; try: python -m gan judge {args.model} IMAGE --weights {path.parent}")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``train``, ``refine-expert`` and ``push`` on the ``python -m gan`` subparsers."""
    from gan.train.config import DEVICES, LOSSES, PRECISIONS, TrainConfig

    s = sub.add_parser(
        "train", help="train a model (any family) on a dataset keyword or folder",
        description="Train a registered model. Writes OUT/checkpoint.pt, OUT/samples/step_XXXXXX.png, "
                    "OUT/losses.jsonl and, at the end (or on Ctrl-C), OUT/weights/MODEL (loadable with --weights). "
                    "Unset options follow the family's recipe (paper or book).")
    s.add_argument("model", help="a registered model, e.g. mnist-dcgan (see: python -m gan list)")
    s.add_argument("--data", help="mnist-offline | mnist | cifar10 | sketch2digit | digits2mnist, or a folder "
                                  "(images; pix2pix: train/ of A|B images or A/ + B/; CycleGAN: trainA/ + trainB/); "
                                  "default: the model's own dataset")
    s.add_argument("--classes", nargs="+",
                   help="keep only these classes, e.g. --classes frog (CIFAR-10) or 3 8 (MNIST)")
    length = s.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="training steps (default: the recipe's, 2000)")
    length.add_argument("--epochs", type=float, help="passes over the data, instead of --steps")
    s.add_argument("--minutes", type=float,
                   help="a time budget: stop (checkpoint, export) after this many minutes of training, or at "
                        "--steps (the recipe's by default), whichever comes first")
    s.add_argument("--batch-size", type=int, help="default: the recipe's")
    s.add_argument("--lr", type=float, help="the generator's learning rate (default: the recipe's)")
    s.add_argument("--out", help="the run folder (default: runs/MODEL)")
    s.add_argument("--resume", action="store_true", help="continue the run in OUT exactly where it stopped")
    s.add_argument("--sample-every", type=int, default=TrainConfig.sample_every,
                   help="steps between sample grids (default: %(default)s)")
    s.add_argument("--sample-seconds", type=float, default=TrainConfig.sample_seconds,
                   help="also a sample grid whenever this many seconds have passed (default: %(default)s)")
    s.add_argument("--log-every", type=int,
                   help="read the losses every this many steps (default: every step on a CPU, every 10 on a GPU, "
                        "where reading them waits for the GPU)")
    s.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every,
                   help="steps between checkpoints (default: %(default)s)")
    s.add_argument("--device", choices=DEVICES, default=TrainConfig.device, help="default: %(default)s")
    s.add_argument("--precision", choices=PRECISIONS, default=TrainConfig.precision,
                   help="bf16: autocast where a training step measures faster on this machine (the choice is "
                        "cached), else fp32 (default: %(default)s)")
    s.add_argument("--loss", choices=LOSSES, default=TrainConfig.loss,
                   help="noise models' GAN loss (default: %(default)s)")
    s.add_argument("--ema", type=float,
                   help="keep an EMA of the generator with this decay (e.g. 0.999) and export it")
    s.add_argument("--workers", type=int, default=TrainConfig.workers,
                   help="processes decoding folders (default: min(4, CPUs); none for in-memory data)")
    s.add_argument("--seed", type=int, default=TrainConfig.seed, help="default: %(default)s")
    s.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   help="noise models: DiffAugment (translation, cutout) on D's inputs (default: the recipe's, "
                        "on for the class-conditional family, cdcgan)")
    s.add_argument("--mode-seeking", type=float, metavar="WEIGHT",
                   help="class-conditional models: mode-seeking loss weight (MSGAN; 0 turns it off; default: the "
                        "recipe's, 0.1 for the class-conditional family, cdcgan)")
    s.add_argument("--class-loss", type=float, metavar="WEIGHT",
                   help="class-conditional models: D also learns to name the class of real images, and G to make "
                        "fakes D names as the requested class (P2GAN; 0 turns it off; default: the recipe's, 0.3 "
                        "for the class-conditional family, cdcgan)")
    s.add_argument("--identity", type=float, metavar="WEIGHT",
                   help="CycleGAN: identity loss weight, times the cycle weight (0 turns it off; default: the "
                        "paper's 0.5 where both domains have the same channels)")
    s.add_argument("--pool", action=argparse.BooleanOptionalAction,
                   help="CycleGAN: D sees fakes from a pool of the last 50 generated images (default: on, the paper's)")
    s.add_argument("--threads", type=int,
                   help="CPU threads (default: torch's, or fewer: as many as the cores other processes leave idle)")
    s.add_argument("--fp16-export", action="store_true", help="store the exported weights in float16")
    s.set_defaults(func=cmd_train)

    from gan.train import finetune as ft

    s = sub.add_parser(
        "finetune", help="teach a digit model your handwriting: fine-tune it on a few labelled digits of yours",
        description=f"Fine-tune a class-conditional digit model from its weights on at least {ft.MIN_DIGITS} of "
                    f"your own labelled digits (HAND/0/*.png, HAND/1/*.png, ...: any size, dark on light or light "
                    f"on dark), so that it draws every digit in your hand. Writes OUT/weights/MODEL (loadable with "
                    f"--weights) with handwriting.json: the share of samples read as the digit asked for and the "
                    f"stroke thickness and slant of the samples before and after, against your digits.")
    s.add_argument("model", help=f"a class-conditional digit model: {', '.join(ft.hand_models())}")
    s.add_argument("hand", help="a folder with one subfolder per digit, named by the digit, holding its images")
    s.add_argument("--steps", type=int, default=ft.STEPS, help="default: %(default)s")
    s.add_argument("--minutes", type=float, help="a time budget: stop (and export) after this many minutes")
    s.add_argument("--lr", type=float, default=ft.LR, help="default: %(default)s")
    s.add_argument("--anchor", type=float, default=ft.ANCHOR,
                   help="share of each batch from the model's own training digits (default: %(default)s)")
    s.add_argument("--ema", type=float, default=ft.EMA,
                   help="export an EMA of the generator with this decay; 0 turns it off (default: %(default)s)")
    s.add_argument("--batch-size", type=int, default=ft.BATCH, help="default: %(default)s")
    s.add_argument("--weights", help="the weights folder to start from (default: the model's own)")
    s.add_argument("--out", help="the run folder (default: runs/MODEL-hand)")
    s.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    s.add_argument("--device", choices=DEVICES, default=TrainConfig.device, help="default: %(default)s")
    s.add_argument("--precision", choices=PRECISIONS, default=TrainConfig.precision, help="default: %(default)s")
    s.add_argument("--threads", type=int, help="CPU threads (default: torch's; 1 is fastest on a busy machine)")
    s.set_defaults(func=cmd_finetune)

    s = sub.add_parser(
        "refine-expert", help="train a model's discriminator more, against its frozen generator and corrupted "
                              "real images, so that it also rejects what the forger never tried",
        description="Writes OUT/discriminator.safetensors (and copies the generator's files into OUT). See "
                    "gan/train/expert.py for the method.")
    s.add_argument("model", help="a noise->image model whose discriminator judges one image at a time, e.g. mnist-gan")
    s.add_argument("--out", required=True, help="the weights folder to write")
    s.add_argument("--weights", help="the weights folder to start from (default: the bundled one)")
    s.add_argument("--steps", type=int, default=6000, help="default: %(default)s")
    s.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    s.set_defaults(func=cmd_refine_expert)

    s = sub.add_parser("push", help="upload a run's exported weights to the Hugging Face Hub",
                       description="Upload OUT/weights/MODEL with a model card (samples, data, steps, and the "
                                   "metrics of OUT/metrics.json if present).")
    s.add_argument("out", help="a run folder (runs/MODEL) or a weights folder")
    s.add_argument("--repo", required=True, help="the Hub repo, user/name (created if needed)")
    s.add_argument("--token", help="a Hub token with write access (default: your login or HF_TOKEN)")
    s.add_argument("--private", action="store_true", help="create the repo private")
    s.add_argument("--model", help="which exported model, when OUT holds several (CycleGAN's two directions)")
    s.set_defaults(func=cmd_push)
