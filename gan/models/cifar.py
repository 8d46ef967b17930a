"""The CIFAR-10 GAN of Chollet, *Deep Learning with Python* (1st ed.), section 8.5.

Layer for layer the book's Keras model: 6,264,579 generator and 790,913
discriminator parameters. Every hidden activation is LeakyReLU with slope 0.3,
the Keras default the book used.
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """z (32) -> 32x32x3 image in [-1, 1]."""

    conditional = False

    def __init__(self, latent_dim: int = 32, channels: int = 3, slope: float = 0.3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.dense = nn.Linear(latent_dim, 128 * 16 * 16)
        self.main = nn.Sequential(
            # state size: 128 x 16 x 16
            nn.LeakyReLU(slope),
            nn.Conv2d(128, 256, 5, padding=2),
            nn.LeakyReLU(slope),
            # state size: 256 x 16 x 16
            nn.ConvTranspose2d(256, 256, 4, stride=2, padding=1),
            nn.LeakyReLU(slope),
            # state size: 256 x 32 x 32
            nn.Conv2d(256, 256, 5, padding=2),
            nn.LeakyReLU(slope),
            nn.Conv2d(256, 256, 5, padding=2),
            nn.LeakyReLU(slope),
            nn.Conv2d(256, channels, 7, padding=3),
            nn.Tanh(),
            # state size: 3 x 32 x 32
        )

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.dense(z)  # (B, 128*16*16)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(self.dense(z).view(-1, 128, 16, 16))


class Discriminator(nn.Module):
    """32x32x3 image -> one logit per image, (B,). All convolutions use valid padding."""

    def __init__(self, channels: int = 3, slope: float = 0.3, dropout: float = 0.4) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, 128, 3),
            nn.LeakyReLU(slope),
            # state size: 128 x 30 x 30
            nn.Conv2d(128, 128, 4, stride=2),
            nn.LeakyReLU(slope),
            # state size: 128 x 14 x 14
            nn.Conv2d(128, 128, 4, stride=2),
            nn.LeakyReLU(slope),
            # state size: 128 x 6 x 6
            nn.Conv2d(128, 128, 4, stride=2),
            nn.LeakyReLU(slope),
            # state size: 128 x 2 x 2
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(128 * 2 * 2, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x).squeeze(1)
