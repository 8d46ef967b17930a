"""Pix2Pix training (Isola et al. 2017), the official recipe.

The discriminator, a PatchGAN, sees the pair: D(cat(A, B)) real, D(cat(A, G(A))) fake, with the
BCE ("vanilla") GAN loss; the generator adds lambda * L1(G(A), B) with lambda = 100. Adam lr 2e-4,
betas (0.5, 0.999); the learning rate stays constant for the first half of training and decays
linearly to zero over the second (the official n_epochs / n_epochs_decay, per step here).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gan.models import family_module
from gan.registry import ModelSpec
from gan.train.common import Trainer, as_channels, belief, d_loss, frozen, g_loss, linear_decay, normal_init, unwrap

LAMBDA_L1 = 100.0
GRID_SIZE = 8  # pairs in the sample grid


class Pix2PixTrainer(Trainer):
    task = "paired"

    @staticmethod
    def defaults(spec: ModelSpec) -> dict[str, Any]:
        # The paper trains 256x256 models with batch 1; small models learn faster with 16.
        return {"batch_size": 16 if spec.image_size <= 64 else 1, "lr": 2e-4, "steps": 2000}

    def __init__(self, spec, config, hw, total) -> None:
        super().__init__(spec, config, hw, total)
        family = family_module(spec.family)
        self.G, self.D = family.Generator(**spec.generator), family.Discriminator(**spec.discriminator)
        normal_init(self.G)
        normal_init(self.D)
        self.G, self.D = self.place(self.G), self.place(self.D)
        self.opt_g = self.adam(self.G.parameters(), config.lr)
        self.opt_d = self.adam(self.D.parameters(), config.lr)
        self.optimizers = {"G": self.opt_g, "D": self.opt_d}
        self.schedulers = {name: linear_decay(o, total) for name, o in self.optimizers.items()}

    def describe(self) -> str:
        return (f"Adam lr {self.config.lr:g} betas (0.5, 0.999), linear decay to 0 over the second half; "
                f"BCE PatchGAN loss on (A, B) pairs + {LAMBDA_L1:g} * L1")

    def generate(self, batch):
        a, _ = batch
        with self.hw.autocast():
            return self.G(a)  # fake B, (B, output_nc, S, S)

    def d_step(self, batch, fake_b):
        a, b = batch
        with self.hw.autocast():
            fake_logits = self.D(torch.cat([a, fake_b.to(a.dtype)], 1))  # (B, 1, S', S') patches
            real_logits = self.D(torch.cat([a, b], 1))
            loss = d_loss("bce", real_logits, fake_logits)
        self.update(self.opt_d, loss)
        return {"D": loss, "D(real)": belief("bce", real_logits), "D(fake)": belief("bce", fake_logits)}

    def g_step(self, batch, fake_b):
        a, b = batch
        with frozen(self.D), self.hw.autocast():
            gan = g_loss("bce", unwrap(self.D)(torch.cat([a, fake_b.to(a.dtype)], 1)))
            l1 = F.l1_loss(fake_b.float(), b) * LAMBDA_L1
        self.update(self.opt_g, gan + l1)
        return {"G_gan": gan, "G_L1": l1}

    def fixed_inputs(self, dataset):
        n = min(GRID_SIZE, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.config.seed))[:n]
        pairs = [dataset[int(i)] for i in order]
        return {"A": torch.stack([p[0] for p in pairs]), "B": torch.stack([p[1] for p in pairs])}

    def samples(self, generators, fixed):
        a, b = fixed["A"].to(self.hw.device), fixed["B"].to(self.hw.device)
        # One image at a time: at inference the U-Net normalises with each image's own statistics.
        fake = torch.cat([generators["G"](a[i:i + 1]).float() for i in range(len(a))])
        channels = max(a.shape[1], b.shape[1])
        return torch.cat([as_channels(a, channels), as_channels(fake, channels), as_channels(b, channels)]), len(a)
