"""The DCGAN of Radford et al. 2016 at 64x64, laid out exactly as the PyTorch DCGAN tutorial.

The generator's state_dict matches the tutorial key for key (``main.0.weight`` ...
``main.12.weight``), so checkpoints from the tutorial, pytorch/examples and the
``gan-face-generate`` package load unchanged.
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """z (nz) -> image in [-1, 1], (B, nc, 64, 64). Accepts z as (B, nz) or (B, nz, 1, 1).

    Args:
        latent_dim: nz, the size of z.
        ngf: feature maps in the generator.
        channels: nc, output channels.
    """

    conditional = False

    def __init__(self, latent_dim: int = 100, ngf: int = 64, channels: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.main = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size: (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size: (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size: (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size: (ngf) x 32 x 32
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size: (nc) x 64 x 64
        )

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main[:3](z.view(z.shape[0], -1, 1, 1)).flatten(1)  # (B, ngf*8*4*4)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """64x64 image -> one logit per image, (B,). The tutorial's layout without the final sigmoid."""

    def __init__(self, ndf: int = 64, channels: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            # input: (nc) x 64 x 64
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (ndf) x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x).flatten()
