"""Noise -> image training: the fully connected, DCGAN, class-conditional DCGAN and Keras-book families.

Each model's recipe (optimiser, batch, augmentation, mode-seeking loss) and the experiments that chose
it are in ``docs/notes/noise-recipes.md``.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan import latent
from gan.models import family_module
from gan.models import mnist as mlp_family
from gan.registry import ModelSpec
from gan.train.common import (Trainer, belief, d_loss, evaluating, frozen, g_loss, linear_decay, normal_init,
                              unwrap)
from gan.train.distributed import Draws, process_mean

MODE_SEEKING = 0.1  # mnist-dcgan's MSGAN weight
# mnist-dcgan's classification loss weight (P2GAN). In a minute on 2 cores (539 steps) the share of samples that are
# the requested digit went from 83% to 98% with 0.3 (99% with 1.0, but less varied: FD 4.0 against 2.8)
CLASS_LOSS = 0.3
# DiffAugment's cutout: a square of this fraction of the side. 0.5 (the paper's) hides the loop that tells a 9 from
# a 4 or a 7: in a minute on 2 cores 0-10% of the 9s asked for were 9s; 0.25 gave 74% (docs/notes/noise-recipes.md)
CUTOUT = 0.25
# mnist-gan (the MLP GAN of 2014): spectral normalisation of D's linear layers (Miyato et al. 2018) in place of its
# dropout, one-sided label smoothing (D's target for real digits 1 - this; Salimans et al. 2016) and the learning rate
# linearly to zero over the second half of the run; with 80,000 steps it raised the confident share of its samples
# from 0.84x to 0.91x real's under the bundled classifier (issue 27, docs/notes/noise-recipes.md)
LABEL_SMOOTHING = 0.1
RECALIBRATION = (16, 256)  # batches x size that give an exported EMA generator its BatchNorm statistics
GRID_SIDE = 8  # unconditional models: a GRID_SIDE x GRID_SIDE sample grid; conditional: one row per class


def mlp_discriminator_recipe(D: nn.Module) -> nn.Module:
    """mnist-gan's D as its recipe trains it, in place: each linear layer spectrally normalised, and its dropout off
    (the normalisation regularises it)."""
    for m in D.modules():
        if isinstance(m, nn.Linear):
            nn.utils.parametrizations.spectral_norm(m)
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return D


def diff_augment(x: torch.Tensor, draw: Draws, translation: float = 0.125, cutout: float = 0.5) -> torch.Tensor:
    """DiffAugment's translation and cutout: differentiable, one random draw per image, from ``draw``.

    (B, C, H, W) -> (B, C, H, W): shifted by up to ``translation`` * size with the background (-1)
    coming in, then a square of ``cutout`` * size (centred anywhere, clipped at the border) set to -1.
    """
    b, c, h, w = x.shape
    s = int(h * translation + 0.5)
    shift = draw(torch.randint, -s, s + 1, size=(2, b, 1, 1), dim=1).to(x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) + shift[0]  # (B, H, 1): source rows
    xs = torch.arange(w, device=x.device).view(1, 1, w) + shift[1]  # (B, 1, W): source columns
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)  # (B, H, W)
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(b, 1, h * w).expand(b, c, h * w)
    x = torch.where(inside[:, None], x.flatten(2).gather(2, index).view(b, c, h, w), -1.0)
    size = int(h * cutout + 0.5)
    corner = draw(torch.randint, 0, h + 1 - size % 2, size=(2, b, 1, 1), dim=1).to(x.device) - size // 2
    ys, xs = torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)
    cut = (ys >= corner[0]) & (ys < corner[0] + size) & (xs >= corner[1]) & (xs < corner[1] + size)
    return torch.where(cut[:, None], -1.0, x)


def keras_init(model: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class NoiseTrainer(Trainer):
    task = "noise"

    @staticmethod
    def defaults(spec: ModelSpec) -> dict[str, Any]:
        if spec.family == "cifar":
            return {"batch_size": 20, "lr": 4e-4, "steps": 2000, "augment": False}
        conditional = spec.family == "cdcgan"
        # mnist-dcgan: batch 32, twice the steps of 64 in the same time; with the class loss, lr 4e-4 gets 94-95% of
        # samples to the requested digit in 200-300 steps (2e-4: 85% at 300) and 99% in a quiet minute (~540
        # steps), and stays stable (100%, FD 1.8 at 1,500 steps) (docs/notes/noise-recipes.md)
        return {"batch_size": 32 if conditional else 64, "lr": 4e-4 if conditional else 2e-4, "steps": 2000,
                "augment": conditional,
                "mode_seeking": MODE_SEEKING if conditional else 0.0, "class_loss": CLASS_LOSS if conditional else 0.0}

    def __init__(self, spec, config, hw, total) -> None:
        super().__init__(spec, config, hw, total)
        family = family_module(spec.family)
        self.G = family.Generator(**spec.generator)
        self.D = family.Discriminator(**spec.discriminator)
        self.mlp = family is mlp_family  # the 2014 MLP GAN: spectral norm in D, no dropout, label smoothing, LR decay
        if self.mlp:  # the exported D has the normalised weights baked in (saved_discriminator)
            mlp_discriminator_recipe(self.D)
        self.num_classes = len(spec.classes)
        self.book = spec.family == "cifar"
        if self.book:
            keras_init(self.G)
            keras_init(self.D)
        elif spec.family in ("dcgan", "cdcgan"):
            normal_init(self.G)
            normal_init(self.D)
            for m in self.D.modules():  # the projection discriminator's class embedding: small, like the rest
                if isinstance(m, nn.Embedding):  # (N(0, 1) makes the first logits ~50 and saturates D)
                    nn.init.normal_(m.weight, 0.0, 0.02)
        self.G, self.D = self.place(self.G), self.place(self.D)
        if self.book:  # the book: RMSprop(lr=0.0008, clipvalue=1.0) for D, RMSprop(lr=0.0004, clipvalue=1.0) for G
            self.opt_g = torch.optim.RMSprop(self.G.parameters(), lr=config.lr, alpha=0.9, eps=1e-7)
            self.opt_d = torch.optim.RMSprop(self.D.parameters(), lr=2 * config.lr, alpha=0.9, eps=1e-7)
            self.clip_value, self.label_noise = 1.0, 0.05
        else:
            self.opt_g = self.adam(self.G.parameters(), config.lr)
            self.opt_d = self.adam(self.D.parameters(), config.lr)
            self.clip_value, self.label_noise = None, 0.0
        self.optimizers = {"G": self.opt_g, "D": self.opt_d}
        self.label_smoothing = LABEL_SMOOTHING if self.mlp else 0.0
        if self.mlp:
            self.schedulers = {name: linear_decay(opt, total) for name, opt in self.optimizers.items()}
        self.augment = config.augment
        self.mode_seeking = config.mode_seeking or 0.0
        self.class_loss = config.class_loss or 0.0

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None, D: nn.Module | None = None):
        """D's logits (B,), through DiffAugment when the recipe has it; with the class loss on, also
        D's class logits (B, num_classes)."""
        if self.augment:
            images = diff_augment(images, self.draw, cutout=CUTOUT)
        D = self.D if D is None else D
        if self.class_loss:
            return D(images, labels, classes=True)
        return D(images, labels if self.num_classes else None)

    def describe(self) -> str:
        c = self.config
        if self.book:
            return (f"RMSprop (rho 0.9) lr {2 * c.lr:g} D / {c.lr:g} G, gradient values clipped to 1.0, "
                    f"{self.label_noise} * U(0, 1) label noise, {c.loss} loss (Chollet, DLwP 8.5)")
        return f"Adam lr {c.lr:g} betas (0.5, 0.999), {c.loss} loss" + (
            ", real labels for real images and random labels for fakes" if self.num_classes else "") + (
            f", DiffAugment (translation 1/8, cutout {CUTOUT:g}) on D's inputs" if self.augment else "") + (
            f", mode-seeking loss (MSGAN) weight {self.mode_seeking:g}" if self.mode_seeking else "") + (
            f", classification loss (P2GAN) weight {self.class_loss:g}" if self.class_loss else "") + (
            f", spectral normalisation in D (its dropout off), one-sided label smoothing (D's target for real images "
            f"{1 - self.label_smoothing:g}), the learning rate linearly to zero over the second half"
            if self.mlp else "")

    def _targets(self, n: int) -> tuple[Any, Any]:
        """D's targets for real and fake images: 1 and 0, 1 - label_smoothing and 0, or noisy ones (real
        1 - 0.05u, fake 0.05u)."""
        if not self.label_noise:
            return 1.0 - self.label_smoothing, 0.0
        noise = self.label_noise * self.draw(torch.rand, size=(2, n), dim=1)
        return 1.0 - noise[0], noise[1]

    def generate(self, batch):
        real, _ = batch
        n = real.shape[0]
        z = self.draw(torch.randn, size=(n, self.spec.latent_dim))  # drawn on the training device
        labels = None
        if self.num_classes:
            labels = self.draw(torch.randint, self.num_classes, size=(n,))
            if self.mode_seeking:  # pairs (2k, 2k + 1) share a label (pairs of neighbours: see g_step)
                labels[1:2 * (n // 2):2] = labels[0:2 * (n // 2):2]
        with self.hw.autocast():
            return self.G(z, labels), labels, z  # (B, C, H, W), (B,) or None, (B, latent_dim)

    def d_step(self, batch, fake):
        real, real_labels = batch
        fake_images, fake_labels, _ = fake
        real_target, fake_target = self._targets(real.shape[0])
        with self.hw.autocast():
            real_logits = self.discriminate(real, real_labels)  # (B,)
            fake_logits = self.discriminate(fake_images, fake_labels)
            losses = {}
            if self.class_loss:  # D also learns to name the digit of real images
                (real_logits, real_classes), (fake_logits, _) = real_logits, fake_logits
                losses["D_class"] = self.class_loss * F.cross_entropy(real_classes.float(), real_labels)
            losses["D"] = d_loss(self.config.loss, real_logits, fake_logits, real_target, fake_target)
        self.update(self.opt_d, sum(losses.values()), self.clip_value)
        kind = self.config.loss
        return {**losses, "D(real)": belief(kind, real_logits), "D(fake)": belief(kind, fake_logits)}

    def g_step(self, batch, fake):
        fake_images, fake_labels, z = fake
        losses = {}
        with frozen(self.D), self.hw.autocast():
            logits = self.discriminate(fake_images, fake_labels, unwrap(self.D))
            if self.class_loss:  # G makes fakes that D names as the requested digit
                logits, classes = logits
                losses["G_class"] = self.class_loss * F.cross_entropy(classes.float(), fake_labels)
            losses["G"] = g_loss(self.config.loss, logits)
        if self.mode_seeking:
            # Neighbours (2k, 2k + 1) are pairs, so that each process's part of a batch holds whole pairs;
            # the mean ratio is over the global batch (process_mean), as with one process.
            first, second = slice(0, 2 * (len(z) // 2), 2), slice(1, 2 * (len(z) // 2), 2)
            images = fake_images.float()
            ratio = ((images[first] - images[second]).abs().mean((1, 2, 3))
                     / (z[first] - z[second]).abs().mean(1))  # (B/2,): image change per latent change
            losses["mode_seeking"] = self.mode_seeking / (process_mean(ratio.mean()) + 1e-5)
        self.update(self.opt_g, sum(losses.values()), self.clip_value)
        return losses

    def saved_discriminator(self, attribute: str) -> nn.Module:
        """mnist-gan's D with its spectral normalisation baked into plain weights (W / sigma, as the running D
        computes it in eval mode), so its weights file is the registry's plain MLP: the Expert loads it like any
        other. (A copy, not ``remove_parametrizations`` on a deep copy: that edits the class both share.)"""
        D = super().saved_discriminator(attribute)
        if not self.mlp:
            return D
        plain = family_module(self.spec.family).Discriminator(**self.spec.discriminator)
        state = {k: v for k, v in D.state_dict().items() if ".parametrizations." not in k}
        with torch.no_grad(), evaluating(D):
            state.update({f"{name}.weight": m.weight.detach().clone() for name, m in D.named_modules()
                          if nn.utils.parametrize.is_parametrized(m, "weight")})
        plain.load_state_dict(state)
        return plain

    @torch.no_grad()
    def recalibrated(self, generator: nn.Module) -> nn.Module:
        """A copy of an EMA generator whose BatchNorm statistics are its own: the average over
        RECALIBRATION batches of fresh latents (and labels) run through it in training mode (large
        batches, whatever the training batch, so that each layer sees population-like inputs)."""
        generator = copy.deepcopy(generator)
        norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return generator
        momentum = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average
        noise = torch.Generator().manual_seed(self.config.seed)
        generator.train()
        batches, size = RECALIBRATION
        for _ in range(batches):
            z = torch.randn(size, self.spec.latent_dim, generator=noise).to(self.hw.device)
            labels = torch.randint(self.num_classes, (len(z),), generator=noise).to(self.hw.device) \
                if self.num_classes else None
            with self.hw.autocast():
                generator(z, labels)
        for m, value in zip(norms, momentum):
            m.momentum = value
        return generator.eval()

    def fixed_inputs(self, dataset):
        n = 10 if self.num_classes else GRID_SIDE * GRID_SIDE
        return {"z": latent.seeded_latents(self.config.seed, n, self.spec.latent_dim)}

    def samples(self, generators, fixed):
        z = fixed["z"].to(self.hw.device)
        if not self.num_classes:
            return generators["G"](z, None), math.isqrt(len(z))
        columns = z.shape[0]
        labels = torch.arange(self.num_classes, device=z.device).repeat_interleave(columns)  # row = class
        return generators["G"](z.repeat(self.num_classes, 1), labels), columns
