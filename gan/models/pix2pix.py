"""Pix2Pix (Isola et al. 2017): a U-Net generator and a 70x70 PatchGAN on (input, output) pairs.

Key-compatible with ``UnetGenerator`` / ``UnetSkipConnectionBlock`` of the official
junyanz/pytorch-CycleGAN-and-pix2pix repo, so its pretrained models (facades_label2photo,
edges2shoes, map2sat, sat2map, day2night) load unchanged.

Inference follows the official test script's default (no ``--eval``): BatchNorm
normalises with the statistics of the image itself, while dropout stays off so that
the same input always gives the same output. ``ImageStatsBatchNorm2d`` does that in
eval mode without touching the running buffers. ``with_mode`` gives the official code's
two other behaviours: 'paper' (test.py without --eval: image statistics and dropout on,
here from a seeded generator) and 'eval' (test.py --eval: running statistics, no dropout).
"""
from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from gan.models.patchgan import NLayerDiscriminator


class ImageStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in eval mode, normalises with the statistics of the batch at hand.

    Training is plain BatchNorm. The running buffers are kept (for key compatibility)
    but never updated at inference, and used only with ``running_stats`` (the official --eval).
    """

    running_stats = False  # at inference: True normalises with the running buffers, as nn.BatchNorm2d.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.running_stats:
            return super().forward(x)
        if torch.onnx.is_in_onnx_export():  # the same statistics as plain ops, which ONNX runtimes support
            var, mean = torch.var_mean(x, dim=(0, 2, 3), keepdim=True, correction=0)
            w, b = self.weight[None, :, None, None], self.bias[None, :, None, None]
            return (x - mean) * torch.rsqrt(var + self.eps) * w + b
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class SeededDropout(nn.Dropout):
    """Dropout; at inference off, unless given a ``generator`` (the paper's test-time noise, reproducible)."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        if self.generator is None:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=self.generator.device) >= self.p
        return x * keep.to(x.device, x.dtype) / (1.0 - self.p)


class UnetSkipConnectionBlock(nn.Module):
    """down -> submodule -> up, with the block's input concatenated to its output (except outermost)."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 use_dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=False)
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
            layers = [downconv, submodule, *up]
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False),
                  ImageStatsBatchNorm2d(outer_nc)]
            layers = [nn.LeakyReLU(0.2, True), downconv, *up]
        else:
            down = [nn.LeakyReLU(0.2, True), downconv, ImageStatsBatchNorm2d(inner_nc)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False),
                  ImageStatsBatchNorm2d(outer_nc)]
            layers = [*down, submodule, *up] + ([SeededDropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class Generator(nn.Module):
    """U-Net: image (B, input_nc, S, S) -> image (B, output_nc, S, S), S divisible by 2**num_downs.

    Args:
        input_nc: input channels.
        output_nc: output channels.
        num_downs: downsamplings; 8 is the official unet_256.
        ngf: feature maps in the outermost layer.
        use_dropout: dropout in the middle blocks (only active while training).
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 use_dropout: bool = True) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5, got {num_downs}")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


MODES = ("deterministic", "paper", "eval")


def with_mode(model: Generator, mode: str, seed: int = 0) -> Generator:
    """A copy of ``model`` that shares its weights, in eval mode, behaving as the official code does in ``mode``:

    - 'deterministic': image statistics, no dropout (``model`` itself behaves so);
    - 'paper': test.py without --eval (the network stays in train mode): image statistics, dropout on,
      drawn from a generator seeded with ``seed``;
    - 'eval': test.py --eval (``model.eval()``): running statistics, no dropout.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    out = copy.deepcopy(model, shared).eval()
    device = next(model.parameters()).device
    for m in out.modules():
        if isinstance(m, ImageStatsBatchNorm2d):
            m.running_stats = mode == "eval"
        elif isinstance(m, SeededDropout):
            m.generator = torch.Generator(device).manual_seed(seed) if mode == "paper" else None
    return out


class Discriminator(NLayerDiscriminator):
    """70x70 PatchGAN on the pair: D(cat(A, B)) -> patch logits."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__(input_nc + output_nc, ndf, n_layers, norm="batch")
