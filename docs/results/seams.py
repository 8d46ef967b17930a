"""docs/results/seams.png: a Pix2Pix U-Net (unet_256 layout, narrow, random weights with bilinear upsampling
kernels, so its output is smooth and a seam would show) run at 768x512 in 256x256 tiles: laid edge to edge
(left) and as gan.translate(resolution="full") does, half-overlapping and feathered (right).

    python docs/results/seams.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import gan  # noqa: E402
from gan import translation  # noqa: E402
from gan.models import pix2pix  # noqa: E402

torch.manual_seed(0)
unet = pix2pix.Generator(ngf=16).eval()
k = torch.tensor([0.25, 0.75, 0.75, 0.25])
with torch.no_grad():
    for m in unet.modules():
        if isinstance(m, nn.ConvTranspose2d):
            m.weight.copy_(torch.randn(m.in_channels, m.out_channels, 1, 1) / m.in_channels ** 0.5 * (k[:, None] * k[None, :]))
small = torch.rand(1, 3, 6, 9, generator=torch.Generator().manual_seed(1))
x = F.interpolate(small, size=(512, 768), mode="bicubic", align_corners=False).clamp(0, 1) * 2 - 1
with torch.inference_mode():
    edge = gan.to_images(translation.run_tiled(unet, x, 256, overlap=0, margin=0))[0]
    feathered = gan.to_images(translation.run_tiled(unet, x, 256))[0]
sheet = Image.new("RGB", (768 * 2 + 16, 512 + 28), "white")
sheet.paste(edge, (0, 28))
sheet.paste(feathered, (768 + 16, 28))
draw = ImageDraw.Draw(sheet)
draw.text((4, 6), "256x256 tiles edge to edge: seams", fill="black")
draw.text((768 + 20, 6), "gan.translate(resolution='full'): half-overlapping, feathered", fill="black")
sheet.resize((sheet.width // 2, sheet.height // 2), Image.Resampling.LANCZOS).save(Path(__file__).with_name("seams.png"))
