"""The fused fp32 path: one of the serving paths that ``gan.serving`` measures and chooses from.

``fuse(model)`` rewrites a generator in eval mode for inference on a CPU with oneDNN: eval BatchNorm
folded into the preceding convolution or linear layer, the following ReLU / LeakyReLU / Tanh fused
into oneDNN's kernel, oneDNN weights prepacked once, channels_last activations, large stride-1 3x3
and 5x5 convolutions computed with Winograd's minimal filtering (F(6x6, 3x3), F(4x4, 5x5)), layers
with 1-4 output channels as a GEMM and col2im, and InstanceNorm / image-stats BatchNorm without layout
copies. Same images as eager fp32 up to rounding (at most 1 level of 255; tests/test_serving.py).
Whether it is faster than eager fp32 on a given machine is measured, never assumed.
"""
from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn


def fused_available() -> bool:
    """oneDNN is in this torch build and enabled: the fused path can be built."""
    return (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and all(hasattr(torch.ops.mkldnn, op) for op in ("_convolution_pointwise", "_linear_pointwise",
                                                               "_reorder_linear_weight")))


def fuse(model: nn.Module) -> nn.Module:
    """Rewrite ``model`` (a generator) in place for fp32 inference on the CPU, and return it.

    Module indices are kept, so ``features``, attributes and slicing of ``nn.Sequential`` still work,
    but the rewritten layers hold folded, prepacked weights and no parameters: take checkpoints from
    ``gan.load_generator``.
    """
    model.eval().requires_grad_(False)
    _rewrite(model)
    return model


# ---------------------------------------------------------------------------- the fp32 rewrite

_ACTS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.LeakyReLU: "leaky_relu"}
WINOGRAD_MIN_CHANNELS = 128  # smaller convolutions (e.g. 64 channels at 7x7) measured faster direct


def _act(module: nn.Module | None) -> tuple[str, list[float]] | None:
    kind = _ACTS.get(type(module))
    if kind is None:
        return None
    return kind, ([float(module.negative_slope)] if kind == "leaky_relu" else [])


def _apply_act(x: torch.Tensor, act: tuple[str, list[float]] | None) -> torch.Tensor:
    if act is None:
        return x
    kind, scalars = act
    if kind == "relu":
        return x.relu_()
    if kind == "leaky_relu":
        return F.leaky_relu_(x, scalars[0])
    return x.tanh_()


def _fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module, out_dim: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """w' = w * gamma / sqrt(var + eps) along the output dim; b' = (b - mean) * that + beta."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else torch.rsqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    return weight * scale.reshape(shape), (shift if bias is None else bias * scale + shift)


def _pack_linear(weight: torch.Tensor) -> torch.Tensor:
    """A (out, in) weight prepacked once for oneDNN's matmul (``_linear``)."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), None)


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, attr: str,
            scalars: list[float]) -> torch.Tensor:
    """x @ W^T + b with the activation fused, by oneDNN on weights prepacked by ``_pack_linear``.

    Not the BLAS GEMM that ``F.linear`` calls: that one picks its kernel by the number of rows (measured
    here: a row computed among 1-2 rows differs in its last bits from the same row among 4 or more), so an
    image's bits depended on how many images shared its batch. oneDNN's matmul on prepacked weights gave
    the lone image's bits in batches of 2, 4, 8, 16 and 64 here (1, 2 and 3 threads, and under
    ``ONEDNN_MAX_CPU_ISA=AVX2``), at the same speed alone and faster in a batch; ``gan.serving`` still
    checks which batch shapes agree on each machine (``Choice.sizes``), never assumes it."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, attr, scalars, "")


def _foldable_bn(module: nn.Module | None) -> bool:
    return type(module) in (nn.BatchNorm1d, nn.BatchNorm2d) and module.track_running_stats \
        and module.running_mean is not None


def _reflect_pad_nhwc(x: torch.Tensor, p: int) -> torch.Tensor:
    """Reflection padding of a (N, H, W, C) view of a channels_last tensor: (N, H+2p, W+2p, C)."""
    return F.pad(x.permute(0, 3, 1, 2), (p, p, p, p), mode="reflect").contiguous(
        memory_format=torch.channels_last).permute(0, 2, 3, 1)


def _pad_nhwc(x: torch.Tensor, top: int, bottom: int, left: int, right: int, reflect: bool) -> torch.Tensor:
    """Pad a (N, H, W, C) tensor: reflection by ``top`` (== bottom == left == right) or zeros on each side."""
    if reflect:
        return _reflect_pad_nhwc(x, top)
    if not (top or bottom or left or right):
        return x
    return F.pad(x, (0, 0, left, right, top, bottom))


class FusedConv(nn.Module):
    """Conv2d / ConvTranspose2d with an eval BatchNorm folded in and ReLU / LeakyReLU / Tanh fused, run by
    oneDNN on channels_last activations with weights prepacked once."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.Module | None = None,
                 act: tuple[str, list[float]] | None = None, pad: int = 0) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
        if bn is not None:
            weight, bias = _fold_bn(weight, bias, bn, out_dim=1 if self.transposed else 0)
        self.attr, self.scalars = act if act is not None else ("none", [])
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.output_padding = list(getattr(conv, "output_padding", (0, 0)))
        self.reflect = pad  # a ReflectionPad2d(pad) folded in front
        self.dense = None
        if self.transposed and self.padding == [0, 0] and self.output_padding == [0, 0] and self.groups == 1:
            # a 1x1 input (DCGAN's first layer: z -> 4x4) is one matmul: (B, C) @ (C, kh*kw*K), NHWC out
            c, k, kh, kw = weight.shape
            self.dense = (_pack_linear(weight.permute(0, 2, 3, 1).reshape(c, kh * kw * k).t()),
                          None if bias is None else bias.repeat(kh * kw).contiguous(), (kh, kw, k))
        weight = weight.contiguous(memory_format=torch.channels_last)
        if self.transposed:
            self.packed = torch.ops.mkldnn._reorder_convolution_transpose_weight(
                weight, self.padding, self.output_padding, self.stride, self.dilation, self.groups, None)
        else:
            self.packed = torch.ops.mkldnn._reorder_convolution_weight(
                weight, self.padding, self.stride, self.dilation, self.groups, None)
        self.bias = None if bias is None else bias.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense is not None and x.shape[-2:] == (1, 1):
            weight, bias, (kh, kw, k) = self.dense
            y = _linear(x.reshape(x.shape[0], -1), weight, bias, self.attr, self.scalars)  # (B, kh*kw*K)
            return y.view(-1, kh, kw, k).permute(0, 3, 1, 2)  # (B, K, kh, kw), channels_last
        x = x.contiguous(memory_format=torch.channels_last)
        if self.reflect:
            x = _reflect_pad_nhwc(x.permute(0, 2, 3, 1), self.reflect).permute(0, 3, 1, 2)
        if self.transposed:
            if x.shape[-1] % 2 or x.shape[-2] % 2:
                # odd sizes (mnist-dcgan's 7x7) get oneDNN's older deconvolution kernel, which runs 3-10x
                # slower with a bias or a post-op attached (measured): add them afterwards instead
                y = torch.ops.mkldnn._convolution_transpose_pointwise(
                    x, self.packed, None, self.padding, self.output_padding, self.stride, self.dilation,
                    self.groups, "none", [], None)
                if self.bias is not None:
                    y.add_(self.bias.view(1, -1, 1, 1))
                return _apply_act(y, None if self.attr == "none" else (self.attr, self.scalars))
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, self.packed, self.bias, self.padding, self.output_padding, self.stride, self.dilation,
                self.groups, self.attr, self.scalars, None)
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.packed, self.bias, self.padding, self.stride, self.dilation, self.groups, self.attr,
            self.scalars, None)


class FoldConv(nn.Module):
    """A convolution or transposed convolution with few output channels (an RGB or grey output layer)
    as one GEMM to columns and a col2im (F.fold): oneDNN's kernels use its vector units poorly when
    the output has 1-4 channels. A stride-1 Conv2d with padding p is computed as the transposed
    convolution with the kernel flipped and padding r - 1 - p."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, act: tuple[str, list[float]] | None = None,
                 pad: int = 0) -> None:
        super().__init__()
        weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
        if isinstance(conv, nn.ConvTranspose2d):
            self.stride, self.padding = conv.stride, conv.padding
            self.output_padding = conv.output_padding
        else:  # conv(x, w, p) == conv_transpose(x, flip(w)^T, r - 1 - p) for stride 1
            weight = weight.flip(2, 3).transpose(0, 1)
            self.stride, self.output_padding = (1, 1), (0, 0)
            self.padding = tuple(k - 1 - p for k, p in zip(conv.kernel_size, conv.padding))
        c, k, kh, kw = weight.shape  # (C_in, K, kh, kw)
        self.kernel = (kh, kw)
        self.columns = weight.reshape(c, k * kh * kw).t().contiguous()  # (K*kh*kw, C_in)
        self.bias = None if bias is None else bias.view(1, -1, 1, 1)
        self.act, self.reflect = act, pad

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        """Where it measured faster than oneDNN: transposed convolutions from >= 32 channels, and
        stride-1 convolutions from >= 128 channels (from 64, as CycleGAN's last layer, it is not)."""
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.out_channels > 4:
            return False
        if isinstance(conv, nn.ConvTranspose2d):
            return conv.in_channels >= 32
        return conv.stride == (1, 1) and conv.kernel_size[0] >= 3 and conv.in_channels >= 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reflect:
            xh = x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
            x = _reflect_pad_nhwc(xh, self.reflect).permute(0, 3, 1, 2)
        n, c, h, w = x.shape
        cols = torch.matmul(self.columns, x.contiguous().view(n, c, h * w))  # (N, K*kh*kw, H*W)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        size = ((h - 1) * sh - 2 * ph + kh + self.output_padding[0], (w - 1) * sw - 2 * pw + kw + self.output_padding[1])
        y = F.fold(cols, size, self.kernel, stride=self.stride, padding=self.padding)  # (N, K, H', W')
        if self.bias is not None:
            y += self.bias
        return _apply_act(y, self.act)


class FusedLinear(nn.Module):
    """Linear with an eval BatchNorm1d folded in and ReLU / LeakyReLU / Tanh fused, by oneDNN's matmul on
    weights prepacked once (``_linear``: its rows do not depend on the batch, the BLAS GEMM's do)."""

    def __init__(self, linear: nn.Linear, bn: nn.Module | None = None,
                 act: tuple[str, list[float]] | None = None) -> None:
        super().__init__()
        weight, bias = linear.weight.detach(), None if linear.bias is None else linear.bias.detach()
        if bn is not None:
            weight, bias = _fold_bn(weight, bias, bn, out_dim=0)
        self.packed, self.bias = _pack_linear(weight), None if bias is None else bias.contiguous()
        self.attr, self.scalars = act if act is not None else ("none", [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:  # oneDNN's matmul takes (rows, features)
            return _linear(x.reshape(-1, x.shape[-1]), self.packed, self.bias, self.attr,
                           self.scalars).view(*x.shape[:-1], -1)
        return _linear(x, self.packed, self.bias, self.attr, self.scalars)


# Interpolation points of the Winograd transforms (Lavin & Gray 2016); infinity is the last point.
_WINOGRAD_POINTS = {4: (0, 1, -1), 6: (0, 1, -1, 2, -2), 8: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))}


def winograd_matrices(m: int, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cook-Toom matrices (AT (m, a), G (a, r), BT (a, a)), a = m + r - 1, computed exactly in fractions:
    the 1-D correlation y = g * d of length m is AT @ ((G @ g) * (BT @ d))."""
    alpha = m + r - 1
    points = [Fraction(p) for p in _WINOGRAD_POINTS[alpha]]
    n = len(points)

    def poly(roots: list[Fraction]) -> list[Fraction]:  # coefficients, lowest power first, of prod (x - root)
        coef = [Fraction(1)]
        for root in roots:
            coef = [Fraction(0)] + coef
            for i in range(len(coef) - 1):
                coef[i] -= root * coef[i + 1]
        return coef + [Fraction(0)] * (alpha - len(coef))

    at = [[p ** i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    f = [math.prod((points[j] - points[k] for k in range(n) if k != j), start=Fraction(1)) for j in range(n)]
    g = [[points[j] ** k / f[j] for k in range(r)] for j in range(n)] + [[Fraction(int(k == r - 1)) for k in range(r)]]
    bt = [poly([points[k] for k in range(n) if k != j]) for j in range(n)] + [poly(points)]
    return tuple(torch.tensor([[float(v) for v in row] for row in mat], dtype=torch.float64) for mat in (at, g, bt))


class WinogradConv(nn.Module):
    """A stride-1 square convolution by Winograd's minimal filtering F(m x m, r x r) (Lavin & Gray 2016).

    Per output tile of m x m pixels it multiplies (m + r - 1)^2 instead of m^2 r^2 times: F(4x4, 3x3)
    does 2.25 multiplications per output instead of 9, F(6x6, 3x3) 1.78, F(4x4, 5x5) 4 instead of 25. The input tiles
    and the output are transformed with small exact matrices; the products are one batched GEMM.
    Zero or reflection padding, bias and a ReLU / LeakyReLU are folded in; channels_last in and out.
    """

    CHUNK_BYTES = 8 << 20  # transformed input per batch chunk: keeps the working set in cache

    def __init__(self, conv: nn.Conv2d, m: int = 4, act: tuple[str, list[float]] | None = None,
                 pad: int | None = None, reflect: bool = False, bn: nn.Module | None = None) -> None:
        super().__init__()
        r = conv.kernel_size[0]
        self.m, self.r, self.alpha = m, r, m + r - 1
        at, g, bt = winograd_matrices(m, r)
        weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
        if bn is not None:
            weight, bias = _fold_bn(weight, bias, bn, out_dim=0)
        k, c = weight.shape[:2]
        # G w G^T for every (output, input) channel pair, as one GEMM on flattened kernels: (K, C, a^2)
        u = (weight.double().reshape(k * c, r * r) @ torch.kron(g, g).T).float().view(k, c, self.alpha ** 2)
        self.u = u.permute(2, 1, 0).contiguous()  # (a^2, C, K)
        self.bb = torch.kron(bt, bt).float()  # (a^2, a^2): the 2-D input transform on flattened tiles
        self.aa = torch.kron(at, at).float()  # (m^2, a^2): the 2-D output transform
        self.bias = torch.zeros(k) if bias is None else bias.float().contiguous()
        self.weight = weight.float().contiguous(memory_format=torch.channels_last)  # for small images
        self.pad = conv.padding[0] if pad is None else pad
        self.reflect, self.act = reflect, act

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        return (type(conv) is nn.Conv2d and conv.kernel_size in ((3, 3), (5, 5)) and conv.stride == (1, 1)
                and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
                and isinstance(conv.padding, tuple) and conv.padding[0] == conv.padding[1]
                and min(conv.in_channels, conv.out_channels) >= WINOGRAD_MIN_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, r, a = self.m, self.r, self.alpha
        xh = x.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)  # (N, H, W, C)
        n, h, w, c = xh.shape
        p = self.pad
        ho, wo = h + 2 * p - r + 1, w + 2 * p - r + 1
        th, tw = -(-ho // m), -(-wo // m)  # tiles down and across
        if th * tw < 4:  # a feature map of less than 2 x 2 tiles: mostly padding, a direct conv is faster
            if self.reflect:
                xp, padding = _reflect_pad_nhwc(xh, p).permute(0, 3, 1, 2), 0
            else:
                xp, padding = xh.permute(0, 3, 1, 2), p
            return _apply_act(F.conv2d(xp, self.weight, self.bias, padding=padding), self.act)
        if self.reflect:
            xh = _reflect_pad_nhwc(xh, p)
            xh = _pad_nhwc(xh, 0, th * m + r - 1 - xh.shape[1], 0, tw * m + r - 1 - xh.shape[2], False)
        else:
            xh = _pad_nhwc(xh, p, th * m + r - 1 - h - p, p, tw * m + r - 1 - w - p, False)
        k = self.u.shape[2]
        out = x.new_empty(n, ho, wo, k)
        step = max(1, self.CHUNK_BYTES // (a * a * th * tw * max(c, k) * 4))
        for i in range(0, n, step):
            chunk = xh[i:i + step]
            nb = chunk.shape[0]
            tiles = nb * th * tw
            d = chunk.unfold(1, a, m).unfold(2, a, m)  # (nb, th, tw, C, a, a), a view of overlapping tiles
            d = d.permute(0, 1, 2, 4, 5, 3).reshape(tiles, a * a, c)  # (T, a^2, C)
            v = torch.matmul(self.bb, d)  # (T, a^2, C)
            prod = torch.bmm(v.transpose(0, 1), self.u)  # (a^2, T, K)
            y = torch.matmul(self.aa, prod.transpose(0, 1))  # (T, m^2, K)
            y = y.view(nb, th, tw, m, m, k).permute(0, 1, 3, 2, 4, 5).reshape(nb, th * m, tw * m, k)
            torch.add(y[:, :ho, :wo], self.bias, out=out[i:i + nb])
        return _apply_act(out, self.act).permute(0, 3, 1, 2)


class InstanceStatsNorm(nn.Module):
    """InstanceNorm2d (no affine), or BatchNorm with the batch's own statistics (pix2pix at inference),
    on channels_last activations: batch norm's channels_last kernel does it in one pass (PyTorch's
    instance norm copies to NCHW and back), and a following ReLU is applied in place."""

    def __init__(self, norm: nn.Module, per_image: bool, act: tuple[str, list[float]] | None = None) -> None:
        super().__init__()
        self.dims = (2, 3) if per_image else (0, 2, 3)
        self.eps = norm.eps
        affine = getattr(norm, "affine", False) and norm.weight is not None
        self.weight = norm.weight.detach() if affine else None
        self.bias = norm.bias.detach() if affine else None
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.dims == (2, 3) and x.shape[0] > 1:  # several images: PyTorch's own instance norm
            out = F.instance_norm(x, None, None, self.weight, self.bias, eps=self.eps)
        else:  # one image (or the batch's statistics): batch norm's channels_last kernel, in one pass
            out = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return _apply_act(out, self.act)


def _is_instance_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.InstanceNorm2d) and not module.affine and not module.track_running_stats


def _is_image_stats_bn(module: nn.Module) -> bool:
    from gan.models.pix2pix import ImageStatsBatchNorm2d

    return type(module) is ImageStatsBatchNorm2d


def _rewrite_sequential(seq: nn.Sequential) -> None:
    """Rewrite runs of layers inside one Sequential; replaced layers become Identity so indices stay."""
    mods = list(seq)
    i = 0

    def at(j: int) -> nn.Module | None:
        return mods[j] if j < len(mods) else None

    while i < len(mods):
        layer = mods[i]
        pad = 0
        start = i
        if isinstance(layer, nn.ReflectionPad2d) and isinstance(at(i + 1), nn.Conv2d) \
                and len(set(layer.padding)) == 1 and at(i + 1).padding in ((0, 0), "valid"):
            pad = layer.padding[0]
            i += 1
            layer = mods[i]
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.padding_mode == "zeros" \
                and not isinstance(layer.padding, str):
            j = i + 1
            bn = at(j) if _foldable_bn(at(j)) and type(at(j)) is nn.BatchNorm2d else None
            j += bn is not None
            act = _act(at(j))
            j += act is not None
            if FoldConv.supports(layer) and bn is None:
                new: nn.Module = FoldConv(layer, act, pad=pad)
            elif WinogradConv.supports(layer) and (pad == 0 or layer.padding == (0, 0)):
                m = 6 if layer.kernel_size == (3, 3) else 4  # F(6x6, 3x3) and F(4x4, 5x5): 8x8 tiles
                new = WinogradConv(layer, m=m, act=act, bn=bn, pad=pad or None, reflect=bool(pad))
            else:
                new = FusedConv(layer, bn, act, pad=pad)
            seq[start] = new
            for k in range(start + 1, j):
                seq[k] = nn.Identity()
            i = j
            continue
        if type(layer) is nn.Linear:
            bn = at(i + 1) if _foldable_bn(at(i + 1)) and type(at(i + 1)) is nn.BatchNorm1d else None
            j = i + 1 + (bn is not None)
            act = _act(at(j))
            j += act is not None
            seq[i] = FusedLinear(layer, bn, act)
            for k in range(i + 1, j):
                seq[k] = nn.Identity()
            i = j
            continue
        elif _is_instance_norm(layer) or _is_image_stats_bn(layer):
            act = _act(at(i + 1)) if isinstance(at(i + 1), nn.ReLU) else None
            seq[i] = InstanceStatsNorm(layer, per_image=_is_instance_norm(layer), act=act)
            if act is not None:
                seq[i + 1] = nn.Identity()
                i += 1
        i += 1


class FusedSequential(nn.Sequential):
    """A Sequential after the rewrite: the Identity left in place of each folded layer (so that indices and
    slicing still work) is skipped when it runs, one module call less per folded layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self:
            if type(module) is not nn.Identity:
                x = module(x)
        return x


def _rewrite(model: nn.Module) -> None:
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            _rewrite_sequential(module)
            if type(module) is nn.Sequential:
                module.__class__ = FusedSequential
