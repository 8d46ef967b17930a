"""The fully-connected GAN of Goodfellow et al. 2014 ("Generative Adversarial Nets"), on 28x28 MNIST.

The generator is an MLP; the discriminator an MLP with LeakyReLU and dropout (the paper
used maxout; LeakyReLU is the usual modern stand-in). Unlike the 2014 paper, the
generator's hidden layers after the first use BatchNorm and LeakyReLU: without them a
fully-connected generator trained on the 2,500 offline digits collapsed to a few speckled
modes within 3,000 steps.
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """MLP generator: z -> 784 pixels in [-1, 1].

    Args:
        latent_dim: size of the noise vector z.
        hidden: widths of the hidden layers.
        image_size: side of the square output image.
        channels: output channels.
    """

    conditional = False

    def __init__(self, latent_dim: int = 100, hidden: tuple[int, ...] = (128, 256, 512, 1024),
                 image_size: int = 28, channels: int = 1) -> None:
        super().__init__()
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden[0]), nn.LeakyReLU(0.2, inplace=True)]
        for w_in, w_out in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(w_in, w_out), nn.BatchNorm1d(w_out), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Linear(hidden[-1], channels * image_size * image_size), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Activations of the first hidden layer, (B, hidden[0]); used for GANSpace directions."""
        return self.main[:2](z)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.main(z)  # (B, C*H*W)
        return x.view(-1, self.channels, self.image_size, self.image_size)


class Discriminator(nn.Module):
    """MLP discriminator: image -> one logit per image, (B,)."""

    def __init__(self, hidden: tuple[int, ...] = (512, 256), image_size: int = 28, channels: int = 1,
                 dropout: float = 0.3) -> None:
        super().__init__()
        widths = [channels * image_size * image_size, *hidden]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout)]
        layers += [nn.Linear(widths[-1], 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(x.flatten(1)).squeeze(1)
