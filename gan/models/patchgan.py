"""The PatchGAN discriminator shared by Pix2Pix and CycleGAN (Isola et al. 2017).

Key-compatible with ``NLayerDiscriminator`` of junyanz/pytorch-CycleGAN-and-pix2pix.
With n_layers=3 each output logit sees a 70x70 patch of the input.
"""
from __future__ import annotations

from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """'batch' -> BatchNorm2d with affine; 'instance' -> InstanceNorm2d without affine or running stats."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"unknown norm {kind!r}; use 'batch' or 'instance'")


class NLayerDiscriminator(nn.Module):
    """image (B, input_nc, H, W) -> patch logits (B, 1, H', W').

    Args:
        input_nc: input channels (A and B concatenated for Pix2Pix).
        ndf: feature maps in the first layer.
        n_layers: strided convolutions; 3 gives the 70x70 PatchGAN.
        norm: 'batch' or 'instance'.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        use_bias = norm == "instance"  # BatchNorm has its own bias
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias),
                   norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)
