"""CycleGAN (Zhu et al. 2017): a 9-block ResNet generator and a PatchGAN discriminator.

Key-compatible with ``ResnetGenerator`` of junyanz/pytorch-CycleGAN-and-pix2pix
(reflection padding, InstanceNorm without affine parameters, no dropout), so the
official pretrained generators (horse2zebra, style_monet, ...) load unchanged once
the InstanceNorm running-stat keys that old PyTorch versions saved are dropped
(``gan.weights.drop_instancenorm_stats``).
"""
from __future__ import annotations

import torch
from torch import nn

from gan.models.patchgan import NLayerDiscriminator, norm_layer


class ResnetBlock(nn.Module):
    """x + conv_block(x), with reflection padding and InstanceNorm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm_layer("instance", dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm_layer("instance", dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class Generator(nn.Module):
    """ResNet generator: image (B, input_nc, H, W) -> image (B, output_nc, H, W), H and W divisible by 4.

    Args:
        input_nc: input channels.
        output_nc: output channels.
        ngf: feature maps in the first layer.
        n_blocks: residual blocks; 9 is the official resnet_9blocks.
        n_downsampling: stride-2 convolutions before the blocks (2 officially).
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 n_downsampling: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=True),
                                   norm_layer("instance", ngf), nn.ReLU(True)]
        for i in range(n_downsampling):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                       norm_layer("instance", ngf * mult * 2), nn.ReLU(True)]
        # state size: (ngf * 2**n_downsampling) x H/4 x W/4
        mult = 2 ** n_downsampling
        layers += [ResnetBlock(ngf * mult) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=True),
                       norm_layer("instance", ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Discriminator(NLayerDiscriminator):
    """70x70 PatchGAN with InstanceNorm on single images of one domain.

    With ``num_classes``, D also sees each image's class (a projection discriminator, Miyato &
    Koyama 2018): every patch logit gets <embed(y), mean of the last features>, so D judges "a real
    digit 7" rather than "a real digit". Inputs are then (images, labels).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, num_classes: int = 0) -> None:
        super().__init__(input_nc, ndf, n_layers, norm="instance")
        self.num_classes = num_classes
        if num_classes:
            self.embed = nn.Embedding(num_classes, self.model[-1].in_channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not self.num_classes:
            return self.model(x)
        if labels is None:
            raise ValueError("this discriminator is class-conditional: call it with (images, labels)")
        h = self.model[:-1](x)  # (B, C, H'', W'')
        projection = (self.embed(labels) * h.mean((2, 3))).sum(1)  # (B,)
        return self.model[-1](h) + projection[:, None, None, None]
