"""CycleGAN training (Zhu et al. 2017), the official recipe.

Two generators, G_A: A -> B and G_B: B -> A, and two PatchGAN discriminators, D_A judging
domain B (G_A's outputs) and D_B judging domain A, as in the official code. Losses: LSGAN,
cycle consistency lambda = 10 (both directions), identity 0.5 * lambda. The discriminators see
fakes drawn from a pool of the last 50 generated images (Shrivastava et al. 2017). Adam lr 2e-4,
betas (0.5, 0.999), constant for the first half of training then linearly to zero.

A run exports both directions: G_A as the model itself and, when the registry names its
``reverse`` model, G_B as that one (e.g. cyclegan-digits2mnist and cyclegan-mnist2digits).
"""
from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F

from gan.models import family_module
from gan.registry import ModelSpec
from gan.train.common import (
    Export, Trainer, as_channels, d_loss, frozen, g_loss, linear_decay, normal_init, unwrap,
)

LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5  # times LAMBDA_CYCLE
POOL_SIZE = 50
GRID_SIZE = 8  # images of each domain in the sample grid


class ImagePool:
    """A history of generated images: once full, each new fake is, with probability 1/2, swapped
    for a stored one (which is returned instead). Its randomness comes from ``generator``."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator = size, generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach().split(1):  # (1, C, H, W) each
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state(self) -> torch.Tensor:
        return torch.cat(self.images).cpu() if self.images else torch.empty(0)

    def load(self, state: torch.Tensor, device: torch.device) -> None:
        self.images = list(state.to(device).split(1)) if state.numel() else []


class CycleGANTrainer(Trainer):
    task = "unpaired"
    generators = ("G_A", "G_B")
    discriminators = ("D_A", "D_B")

    @staticmethod
    def defaults(spec: ModelSpec) -> dict[str, Any]:
        # The paper trains 256x256 models with batch 1; small models learn faster with 4.
        return {"batch_size": 4 if spec.image_size <= 64 else 1, "lr": 2e-4, "steps": 2000}

    def __init__(self, spec, config, hw, total) -> None:
        super().__init__(spec, config, hw, total)
        family = family_module(spec.family)
        g = spec.generator
        self.reverse_kwargs = {**g, "input_nc": g["output_nc"], "output_nc": g["input_nc"]}
        self.G_A, self.G_B = family.Generator(**g), family.Generator(**self.reverse_kwargs)
        self.d_kwargs = {"D_A": {**spec.discriminator, "input_nc": g["output_nc"]},  # D_A judges domain B
                         "D_B": {**spec.discriminator, "input_nc": g["input_nc"]}}  # D_B judges domain A
        self.D_A, self.D_B = (family.Discriminator(**self.d_kwargs[name]) for name in ("D_A", "D_B"))
        for name in self.nets:
            normal_init(getattr(self, name))
            setattr(self, name, self.place(getattr(self, name)))
        self.identity = LAMBDA_IDENTITY if g["input_nc"] == g["output_nc"] else 0.0
        self.opt_g = torch.optim.Adam(itertools.chain(self.G_A.parameters(), self.G_B.parameters()),
                                      lr=config.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()),
                                      lr=config.lr, betas=(0.5, 0.999))
        self.optimizers = {"G": self.opt_g, "D": self.opt_d}
        self.schedulers = {name: linear_decay(o, total) for name, o in self.optimizers.items()}
        self.pool_a, self.pool_b = ImagePool(POOL_SIZE, self.noise), ImagePool(POOL_SIZE, self.noise)

    def describe(self) -> str:
        return (f"Adam lr {self.config.lr:g} betas (0.5, 0.999), linear decay to 0 over the second half; "
                f"LSGAN loss, cycle {LAMBDA_CYCLE:g}, identity {self.identity:g} * {LAMBDA_CYCLE:g}, "
                f"image pool of {POOL_SIZE}")

    def generate(self, batch):
        a, b = batch
        with self.hw.autocast():
            return self.G_A(a), self.G_B(b)  # fake B, fake A

    def d_step(self, batch, fake):
        a, b = batch
        fake_b, fake_a = self.pool_b.query(fake[0]), self.pool_a.query(fake[1])
        with self.hw.autocast():
            loss_a = d_loss("lsgan", self.D_A(b), self.D_A(fake_b))  # (B, 1, H', W') patches
            loss_b = d_loss("lsgan", self.D_B(a), self.D_B(fake_a))
        self.update(self.opt_d, loss_a + loss_b)
        return {"D_A": loss_a, "D_B": loss_b}

    def g_step(self, batch, fake):
        a, b = batch
        fake_b, fake_a = fake
        losses = {}
        with frozen(self.D_A, self.D_B), self.hw.autocast():
            losses["G_A"] = g_loss("lsgan", unwrap(self.D_A)(fake_b))
            losses["G_B"] = g_loss("lsgan", unwrap(self.D_B)(fake_a))
            losses["cycle_A"] = F.l1_loss(self.G_B(fake_b).float(), a) * LAMBDA_CYCLE  # A -> B -> A
            losses["cycle_B"] = F.l1_loss(self.G_A(fake_a).float(), b) * LAMBDA_CYCLE  # B -> A -> B
            if self.identity:  # G_A should leave B images alone, G_B A images
                losses["idt_A"] = F.l1_loss(self.G_A(b).float(), b) * LAMBDA_CYCLE * self.identity
                losses["idt_B"] = F.l1_loss(self.G_B(a).float(), a) * LAMBDA_CYCLE * self.identity
        self.update(self.opt_g, sum(losses.values()))
        return losses

    def extra_state(self):
        return {"pool_A": self.pool_a.state(), "pool_B": self.pool_b.state()}

    def load_extra_state(self, state):
        self.pool_a.load(state["pool_A"], self.hw.device)
        self.pool_b.load(state["pool_B"], self.hw.device)

    def fixed_inputs(self, dataset):
        # Straight from the two domains (items of the A/B dataset pair them by index only).
        a_set, b_set = getattr(dataset, "a", None), getattr(dataset, "b", None)
        gen = torch.Generator().manual_seed(self.config.seed)
        if a_set is None or b_set is None:
            items = [dataset[int(i)] for i in torch.randperm(len(dataset), generator=gen)[:GRID_SIZE]]
            return {"A": torch.stack([x[0] for x in items]), "B": torch.stack([x[1] for x in items])}
        pick = [torch.randperm(len(s), generator=gen)[:GRID_SIZE] for s in (a_set, b_set)]
        return {"A": torch.stack([a_set[int(i)][0] for i in pick[0]]),
                "B": torch.stack([b_set[int(i)][0] for i in pick[1]])}

    def samples(self, generators, fixed):
        a, b = fixed["A"].to(self.hw.device), fixed["B"].to(self.hw.device)
        fake_b, fake_a = generators["G_A"](a).float(), generators["G_B"](b).float()
        n, c = min(len(a), len(b)), max(a.shape[1], b.shape[1])
        return torch.cat([as_channels(x[:n], c) for x in (a, fake_b, b, fake_a)]), n

    def exports(self):
        exports = [Export(self.spec.name, "G_A", "D_A", self.spec.generator, self.d_kwargs["D_A"])]
        if self.spec.reverse:
            exports.append(Export(self.spec.reverse, "G_B", "D_B", self.reverse_kwargs, self.d_kwargs["D_B"]))
        return exports
