"""What a training run is asked to do: ``TrainConfig`` and the choices its fields take.

Its own module so that the loop, the shared trainer parts and every family trainer can import it
without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOSSES = ("bce", "hinge", "lsgan")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("cpu", "cuda", "auto")


@dataclass
class TrainConfig:
    """Everything a training run needs; None means "the family's recipe" (see ``python -m gan train -h``)."""

    model: str  # registry name, e.g. "mnist-dcgan"
    data: str | None = None  # dataset keyword or folder; None: the registry's default (spec.data)
    steps: int | None = None  # training steps (one batch each); or give epochs; neither: the recipe's
    epochs: int | None = None  # passes over the data (may be fractional), instead of steps
    batch_size: int | None = None  # None: the recipe's (cifar10-gan 20, noise 64, small pix2pix 16 / cyclegan 4, big 1)
    lr: float | None = None  # the generator's learning rate; None: the recipe's (D's follows the recipe's ratio)
    out: Path | None = None  # the run folder (checkpoint.pt, samples/, weights/); None: runs/<model>
    resume: bool = False  # continue from out/checkpoint.pt (exactly where it stopped)
    sample_every: int = 200  # a sample grid (out/samples/step_XXXXXX.png) every this many steps
    device: str = "auto"  # cpu | cuda | auto
    precision: str = "bf16"  # fp32 | bf16: autocast where a step measures faster on this machine, else fp32
    loss: str = "bce"  # noise models: bce (non-saturating) | hinge | lsgan; pix2pix is bce, CycleGAN lsgan
    ema: float | None = None  # e.g. 0.999: keep an EMA of the generator and export it instead of the raw one
    classes: list[str] | None = None  # keep only these classes: CIFAR-10 names (["frog"]) or MNIST digits (["3"])
    workers: int | None = None  # processes decoding folders; None: min(4, CPUs) (in-memory data uses none)
    seed: int = 0  # model init, data order, latents: the same seed gives the same run
    checkpoint_every: int = 500  # also save out/checkpoint.pt every this many steps
    augment: bool | None = None  # noise models: DiffAugment on D's inputs; None: the recipe's (on for mnist-dcgan)
    mode_seeking: float | None = None  # conditional noise models: MSGAN weight; None: the recipe's (mnist-dcgan's)
    class_loss: float | None = None  # conditional noise models: weight of D's and G's classification loss (P2GAN);
    #                                  None: the recipe's (0.3 for mnist-dcgan)
    pool: bool | None = None  # CycleGAN: D sees fakes from a pool of the last 50 (Shrivastava et al.); None: the
    #                           recipe's (on)
    identity: float | None = None  # CycleGAN: identity loss weight, times the cycle weight; 0 turns it off; None:
    #                                the recipe's (0.5 where both domains have the same channels, else 0)
    fp16_export: bool = False  # store the exported weights in float16 (half the size)
    minutes: float | None = None  # a time budget: the run ends (checkpoint, export) after this much training
    log_every: int | None = None  # read the losses (a host sync on a GPU) every this many steps; None: every
    #                               step on a CPU, where reading them costs nothing, every 10 on a GPU
    sample_seconds: float | None = 10.0  # also a sample grid when this long has passed since the last one

    def __post_init__(self) -> None:
        self.out = Path(self.out) if self.out is not None else Path("runs") / self.model
        if self.classes is not None:
            self.classes = [str(c) for c in self.classes]
