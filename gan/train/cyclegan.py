"""CycleGAN training (Zhu et al. 2017), the official recipe.

Two generators, G_A: A -> B and G_B: B -> A, and two PatchGAN discriminators, D_A judging
domain B (G_A's outputs) and D_B judging domain A, as in the official code. Losses: LSGAN,
cycle consistency lambda = 10 (both directions), identity 0.5 * lambda. The discriminators see
fakes drawn from a pool of the last 50 generated images (Shrivastava et al. 2017). Adam lr 2e-4,
betas (0.5, 0.999), constant for the first half of training then linearly to zero.

The digit models (cyclegan-digits2mnist and its reverse) have class-conditional discriminators
(``num_classes`` in the registry): the pairs stay unpaired, but each real or translated digit is
judged with its own label, which UCI and MNIST digits both have. With plain PatchGANs the
generators kept the cycle but not the digit: framed UCI 9s came out as MNIST-style 3s, 1s with a
base as 2s (label kept 79%; with the label, 91%).

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
    Export, Trainer, as_channels, belief, d_loss, frozen, g_loss, linear_decay, normal_init, unwrap,
)
from gan.train.distributed import gather, own_part

LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5  # times LAMBDA_CYCLE
POOL_SIZE = 50
GRID_SIZE = 8  # images of each domain in the sample grid


class ImagePool:
    """A history of generated images: once full, each new fake is, with probability 1/2, swapped
    for a stored one (which is returned instead). Its randomness comes from ``generator``.
    With labels (class-conditional discriminators), each image keeps its label."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator = size, generator
        self.images: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, labels: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images (B, C, H, W), labels (B,) or None) -> the images for D and their labels (None without)."""
        keyed = torch.zeros(len(images), dtype=torch.long, device=images.device) if labels is None else labels
        out, out_labels = [], []
        for image, label in zip(images.detach().split(1), keyed.split(1)):  # (1, C, H, W), (1,) each
            if len(self.images) < self.size:
                self.images.append(image.clone())
                self.labels.append(label.clone())
            elif torch.rand((), generator=self.generator, device=self.generator.device) < 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator, device=self.generator.device))
                self.images[i], image = image.clone(), self.images[i].clone()
                self.labels[i], label = label.clone(), self.labels[i].clone()
            out.append(image)
            out_labels.append(label)
        return torch.cat(out), None if labels is None else torch.cat(out_labels)

    def state(self) -> dict[str, torch.Tensor]:
        if not self.images:
            return {"images": torch.empty(0), "labels": torch.empty(0, dtype=torch.long)}
        return {"images": torch.cat(self.images).cpu(), "labels": torch.cat(self.labels).cpu()}

    def load(self, state: dict[str, torch.Tensor] | torch.Tensor, device: torch.device) -> None:
        if isinstance(state, torch.Tensor):  # checkpoints written before pools kept labels
            state = {"images": state, "labels": torch.zeros(len(state), dtype=torch.long)}
        images, labels = state["images"], state["labels"]
        self.images = list(images.to(device).split(1)) if images.numel() else []
        self.labels = list(labels.to(device).split(1)) if labels.numel() else []


class CycleGANTrainer(Trainer):
    task = "unpaired"
    generators = ("G_A", "G_B")
    discriminators = ("D_A", "D_B")

    @staticmethod
    def defaults(spec: ModelSpec) -> dict[str, Any]:
        # The paper trains 256x256 models with batch 1; small models learn faster with 4. The identity loss needs
        # both domains to have the same channels (G_A(b) must be comparable to b).
        g = spec.generator
        return {"batch_size": 4 if spec.image_size <= 64 else 1, "lr": 2e-4, "steps": 2000, "pool": True,
                "identity": LAMBDA_IDENTITY if g["input_nc"] == g["output_nc"] else 0.0}

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
        recipe = self.defaults(spec)
        self.identity = recipe["identity"] if config.identity is None else config.identity
        if self.identity and g["input_nc"] != g["output_nc"]:
            raise ValueError(f"the identity loss needs both domains to have the same channels ({spec.name}: "
                             f"{g['input_nc']} -> {g['output_nc']}); use identity=0")
        self.pool = recipe["pool"] if config.pool is None else config.pool  # False: D sees this step's fakes
        self.opt_g = self.adam(itertools.chain(self.G_A.parameters(), self.G_B.parameters()), config.lr)
        self.opt_d = self.adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), config.lr)
        self.optimizers = {"G": self.opt_g, "D": self.opt_d}
        self.schedulers = {name: linear_decay(o, total) for name, o in self.optimizers.items()}
        self.pool_a, self.pool_b = ImagePool(POOL_SIZE, self.noise), ImagePool(POOL_SIZE, self.noise)
        self.conditional = bool(spec.discriminator.get("num_classes"))

    def describe(self) -> str:
        return (f"Adam lr {self.config.lr:g} betas (0.5, 0.999), linear decay to 0 over the second half; "
                f"LSGAN loss, cycle {LAMBDA_CYCLE:g}, identity {self.identity:g} * {LAMBDA_CYCLE:g}, "
                + (f"image pool of {POOL_SIZE}" if self.pool else "no image pool")) + (
                ", class-conditional discriminators (each image judged with its digit's label)" if self.conditional else "")

    def _labels(self, batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The (label A, label B) of a batch; (None, None) for unconditional discriminators."""
        return (batch[2], batch[3]) if self.conditional else (None, None)

    @staticmethod
    def _judge(D, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return D(images) if labels is None else D(images, labels)

    @classmethod
    def _together(cls, net, x: torch.Tensor, y: torch.Tensor, x_labels: torch.Tensor | None = None,
                  y_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``net`` on x and on y in one pass: CycleGAN's networks (the ResNet generator, the PatchGAN) normalise
        each image on its own (InstanceNorm), so each image's output is what it is alone, with half the calls
        (the digit models' steps are mostly the cost of the calls: 28x28 images in batches of 4)."""
        dtype = torch.promote_types(x.dtype, y.dtype)  # a bf16 fake beside a float32 image: exact in float32
        labels = None if x_labels is None else torch.cat([x_labels, y_labels])
        out = cls._judge(net, torch.cat([x.to(dtype), y.to(dtype)]), labels)
        return out[:len(x)], out[len(x):]

    def generate(self, batch):
        a, b = batch[:2]
        with self.hw.autocast():
            return self.G_A(a), self.G_B(b)  # fake B, fake A

    def _pooled(self, pool: ImagePool, images: torch.Tensor, labels: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``pool.query`` on the global batch, this process's part of the answer: with several processes
        each keeps the same pool (the same draws on the same images), as one process would. Without the
        pool: the images themselves."""
        if not self.pool:
            return images, labels
        images, labels = pool.query(gather(images), gather(labels))
        return own_part(images), own_part(labels)

    def d_step(self, batch, fake):
        a, b = batch[:2]
        label_a, label_b = self._labels(batch)
        # a fake keeps the label of the image it was translated from (None: unconditional discriminators)
        fake_b, fake_b_labels = self._pooled(self.pool_b, fake[0], label_a)
        fake_a, fake_a_labels = self._pooled(self.pool_a, fake[1], label_b)
        with self.hw.autocast():
            real_a, fake_a_logits = self._together(self.D_A, b, fake_b, label_b, fake_b_labels)
            real_b, fake_b_logits = self._together(self.D_B, a, fake_a, label_a, fake_a_labels)
            loss_a = d_loss("lsgan", real_a, fake_a_logits)
            loss_b = d_loss("lsgan", real_b, fake_b_logits)
        self.update(self.opt_d, loss_a + loss_b)  # (B, 1, H', W') patches above
        # both experts together: their mean belief in real images, and in the fakes they were shown
        return {"D_A": loss_a, "D_B": loss_b,
                "D(real)": (belief("lsgan", real_a) + belief("lsgan", real_b)) / 2,
                "D(fake)": (belief("lsgan", fake_a_logits) + belief("lsgan", fake_b_logits)) / 2}

    def g_step(self, batch, fake):
        a, b = batch[:2]
        label_a, label_b = self._labels(batch)
        fake_b, fake_a = fake
        losses = {}
        with frozen(self.D_A, self.D_B), self.hw.autocast():
            losses["G_A"] = g_loss("lsgan", self._judge(unwrap(self.D_A), fake_b, label_a))
            losses["G_B"] = g_loss("lsgan", self._judge(unwrap(self.D_B), fake_a, label_b))
            if self.identity:  # G_A should leave B images alone, G_B A images: with the cycle, one pass each
                back_a, same_a = self._together(self.G_B, fake_b, a)
                back_b, same_b = self._together(self.G_A, fake_a, b)
            else:
                back_a, back_b = self.G_B(fake_b), self.G_A(fake_a)
            losses["cycle_A"] = F.l1_loss(back_a.float(), a) * LAMBDA_CYCLE  # A -> B -> A
            losses["cycle_B"] = F.l1_loss(back_b.float(), b) * LAMBDA_CYCLE  # B -> A -> B
            if self.identity:
                losses["idt_A"] = F.l1_loss(same_b.float(), b) * LAMBDA_CYCLE * self.identity
                losses["idt_B"] = F.l1_loss(same_a.float(), a) * LAMBDA_CYCLE * self.identity
        self.update(self.opt_g, sum(losses.values()))
        return losses

    def extra_state(self):
        return {"pool_A": self.pool_a.state(), "pool_B": self.pool_b.state()}

    def load_extra_state(self, state):
        self.pool_a.load(state["pool_A"], self.hw.device)
        self.pool_b.load(state["pool_B"], self.hw.device)

    def fixed_inputs(self, dataset):
        if self.conditional and not getattr(dataset, "labelled", False):  # checked before the first step
            raise ValueError(f"{self.spec.name}'s discriminators judge each digit against its label: train it on "
                             f"labelled data ({self.spec.data}), not an unlabelled folder")
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
