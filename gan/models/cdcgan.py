"""A class-conditional convolutional GAN for 28x28 digits: the user chooses the digit.

The generator embeds the label, joins it to z, and upsamples with transposed
convolutions (DCGAN style). The discriminator is a projection discriminator
(Miyato & Koyama 2018): logit = linear(h) + <embed(y), h>.
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """(z, label) -> image in [-1, 1], (B, channels, 28, 28).

    Args:
        latent_dim: size of z.
        num_classes: number of labels.
        ngf: feature maps in the last hidden layer.
        channels: output channels.
        embed_dim: size of the label embedding.
    """

    conditional = True

    def __init__(self, latent_dim: int = 100, num_classes: int = 10, ngf: int = 64, channels: int = 1,
                 embed_dim: int = 50) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.ngf = latent_dim, num_classes, ngf
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + embed_dim, ngf * 2 * 7 * 7, bias=False),
            nn.BatchNorm1d(ngf * 2 * 7 * 7),
            nn.ReLU(inplace=True),
        )
        self.main = nn.Sequential(
            # state size: (ngf*2) x 7 x 7
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(inplace=True),
            # state size: (ngf) x 14 x 14
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1),
            nn.Tanh(),
            # state size: (channels) x 28 x 28
        )

    def features(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Labels are class indices (B,), or class weights (B, num_classes) to blend digits."""
        if labels is None:
            labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        if labels.is_floating_point():
            embedding = labels.to(self.embed.weight.dtype) @ self.embed.weight  # (B, embed_dim)
        else:
            embedding = self.embed(labels)
        return self.project(torch.cat([z, embedding], 1))  # (B, ngf*2*7*7)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(z, labels).view(-1, self.ngf * 2, 7, 7)
        return self.main(h)


def minibatch_std(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append the minibatch standard deviation as one more feature map (Karras et al. 2018).

    (B, C, H, W) -> (B, C + 1, H, W). Images are split into groups of ``group`` consecutive images
    (0-3, 4-7, ...); the extra map of an image is the mean over C, H, W of the per-feature std within
    its group. A generator that makes the same digit for every z gives a std near 0, which D can then
    see and punish.

    Consecutive groups, so that a batch split among processes (each a consecutive part) keeps whole
    groups: N processes with batch b give what one process with batch N * b gives, when ``group``
    divides b. (The bundled mnist-dcgan was trained with strided groups, i, i + B/4, ...: in a shuffled
    batch, with mode-seeking pairs of neighbours, a group is the same kind of sample either way.)
    """
    b, c, height, width = h.shape
    g = min(group, b)
    while b % g:  # a group size that divides the batch
        g -= 1
    x = h.float().view(b // g, g, c, height, width)
    # the variance within each group as the mean squared deviation, not Tensor.var: torch's CPU var (a Welford
    # kernel) took 14 ms forward and backward here against 2.7 ms, a third of mnist-dcgan's training step
    std = (x - x.mean(1, keepdim=True)).square().mean(1).add(1e-8).sqrt()  # (B/g, C, H, W)
    std = std.mean((1, 2, 3)).to(h.dtype)  # (B/g,)
    return torch.cat([h, std.repeat_interleave(g).view(b, 1, 1, 1).expand(b, 1, height, width)], 1)


class Discriminator(nn.Module):
    """(image, label) -> one logit per image, (B,).

    ``minibatch_std`` adds the minibatch standard deviation feature before the last convolution.
    """

    def __init__(self, num_classes: int = 10, ndf: int = 64, channels: int = 1, minibatch_std: bool = False) -> None:
        super().__init__()
        self.minibatch_std = minibatch_std
        self.main = nn.Sequential(
            # input: (channels) x 28 x 28
            nn.Conv2d(channels, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (ndf) x 14 x 14
        )
        self.down = nn.Sequential(
            nn.Conv2d(ndf + minibatch_std, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size: (ndf*2) x 7 x 7
            nn.Flatten(),
        )
        features = ndf * 2 * 7 * 7
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, classes: bool = False):
        """``classes``: also return the class logits (B, num_classes), <embed(c), h> for every class c
        (the projection read as a classifier, as in P2GAN: Han et al. 2021)."""
        h = self.main(x)  # (B, ndf, 14, 14)
        h = self.down(minibatch_std(h) if self.minibatch_std else h)  # (B, ndf*2*7*7)
        out = self.linear(h).squeeze(1)
        if labels is not None:
            out = out + (self.embed(labels) * h).sum(1)
        if classes:
            return out, h @ self.embed.weight.t()
        return out
