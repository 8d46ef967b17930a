"""Translation beyond the model's own size: full resolution, Pix2Pix modes, folders and videos.

- A ResNet CycleGAN is fully convolutional: it runs on the whole image, padded to a multiple of 4.
  Above ``LOWMEM_PIXELS`` its full-resolution layers are computed a few channels at a time (InstanceNorm
  is per channel, the next convolution a sum over channels), so memory stays bounded and the result is
  the plain forward pass up to float rounding.
- A U-Net Pix2Pix runs in overlapping tiles of its training size, blended with feathered weights
  (``tile_weights``), so that no seam shows; at most ``MAX_TILES`` of them: a larger size is scaled down
  first (a small model, such as a 32-pixel one, then translates near its own scale).
- A model that frames its input (the digit CycleGANs) translates at its own size only: asked for more, it
  falls back to that size. ``plan`` says, before the work, at which size a translation runs and why.
- ``translate_folder`` and ``translate_video`` run ``translate`` image by image, frame by frame.

The public entry points, defined at the end of this file and exported by ``gan``, are
``gan.translate(..., resolution=, mode=)``, ``gan.translate_folder`` and ``gan.translate_video``; design
notes and measurements are in the README (Full resolution, Pix2Pix modes, ...).
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gan import checks, images, serving
from gan.models import cyclegan, pix2pix
from gan.registry import ModelSpec, get_spec

log = logging.getLogger(__name__)

RESOLUTIONS = ("model", "full")  # or a number: the long side in pixels
MODES = pix2pix.MODES
LOWMEM_PIXELS = 1_000_000  # CycleGANs above this run their full-resolution layers a few channels at a time
CHANNEL_CHUNK = 8  # full-resolution channels per step of the low-memory path
OUT_CHUNK = 32  # output channels per convolution call of the low-memory path
# a Pix2Pix translates at most this many tiles an image, a larger size is scaled down to fit: a 3000x2000 photo is 345
# tiles of 256 px (111 s on 1 thread, README), but a 32-px model made 11,532 tiles of a 2000x1500 image (154 s)
MAX_TILES = 400
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".mov", ".mkv", ".avi")
Progress = Callable[[int, int], None]  # (done, total)


def check_resolution(resolution: Any) -> str | int:
    """'model', 'full' or a long side in pixels (a number, or a string of digits); a clear error otherwise."""
    if isinstance(resolution, str) and resolution.strip().isdigit():
        resolution = int(resolution.strip())
    if isinstance(resolution, str):
        if resolution.strip().lower() in RESOLUTIONS:
            return resolution.strip().lower()
        raise ValueError(f"resolution must be 'model', 'full' or a long side in pixels, got {resolution!r}")
    return checks.number("resolution", resolution, checks.MIN_RESOLUTION, checks.MAX_RESOLUTION, integer=True)


def check_mode(spec: ModelSpec, mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "deterministic" and spec.family != "pix2pix":
        # a ResNet CycleGAN has no dropout and InstanceNorm without running statistics: every mode is the same
        log.info("%s: mode %r is the same computation as 'deterministic' for a CycleGAN", spec.name, mode)
    return mode


def asked_size(width: int, height: int, resolution: str | int) -> tuple[int, int]:
    """The output size asked for: 'full' (the input's) or a long side N (the input's aspect ratio)."""
    if resolution == "full":
        return width, height
    return _scaled(width, height, int(resolution) / max(width, height))


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def target_size(width: int, height: int, resolution: str | int) -> tuple[int, int]:
    """The output size for 'full' (the input's) or a long side N (the input's aspect ratio), bounded by
    ``checks.MAX_TRANSLATE_PIXELS`` (larger images are scaled down to fit, keeping their aspect ratio)."""
    w, h = asked_size(width, height, resolution)
    if w * h > checks.MAX_TRANSLATE_PIXELS:
        scale = (checks.MAX_TRANSLATE_PIXELS / (w * h)) ** 0.5
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
    return w, h


def tile_count(width: int, height: int, tile: int, overlap: int | None = None) -> int:
    """How many tiles ``run_tiled`` runs for an image of (width, height): a side shorter than a tile is padded
    to one."""
    overlap = tile // 2 if overlap is None else overlap
    return len(tile_starts(max(width, tile), tile, overlap)) * len(tile_starts(max(height, tile), tile, overlap))


def fit_tiles(width: int, height: int, tile: int, max_tiles: int = MAX_TILES) -> tuple[int, int]:
    """The largest size of (width, height)'s aspect ratio, at most (width, height), that ``run_tiled`` covers in
    at most ``max_tiles`` tiles (a binary search on the long side: the count only grows with it)."""
    long = max(width, height)
    lo, hi = 1, long  # an image no larger than a tile is one tile: lo always fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if tile_count(*_scaled(width, height, mid / long), tile) <= max_tiles:
            lo = mid
        else:
            hi = mid - 1
    return _scaled(width, height, lo / long)


@dataclass(frozen=True)
class Plan:
    """How ``translate`` runs an image: at ``size`` (width, height; None: the model's own size), in ``passes``
    passes of the network (tiles), and, in ``note``, why the size differs from the one asked ("" if it does not)."""

    size: tuple[int, int] | None
    passes: int
    note: str = ""


def plan(spec: ModelSpec | str, width: int, height: int, resolution: str | int = "model") -> Plan:
    """The size a translation of a (width, height) image at ``resolution`` runs at, and the work it makes:
    'model' is one pass at the model's size; a model that frames its input (``preprocess.fit``) falls back to
    that size; other sizes are bounded by ``checks.MAX_TRANSLATE_PIXELS``, and a Pix2Pix's by ``MAX_TILES``.

    Example:
        >>> gan.translation.plan("pix2pix-sketch2digit", 2000, 1500, "full")  # a 32-pixel model
        Plan(size=(384, 288), passes=391, note='2000x1500 would take 11532 tiles of 32x32 pixels; ...')
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    resolution = check_resolution(resolution)
    if resolution == "model":
        return Plan(None, 1)
    side = spec.preprocess.size
    if spec.preprocess.fit:
        return Plan(None, 1, f"{spec.name} frames each digit as MNIST does, in {side}x{side}: translated at that "
                             f"size, the largest it can do")
    asked = asked_size(width, height, resolution)
    size = target_size(width, height, resolution)
    note = "" if size == asked else (f"{asked[0]}x{asked[1]} is over the limit of "
                                     f"{checks.MAX_TRANSLATE_PIXELS // 1_000_000} megapixels: translated at "
                                     f"{size[0]}x{size[1]}")
    if spec.family != "pix2pix":
        return Plan(size, 1, note)
    tiles = tile_count(*size, side)
    if tiles > MAX_TILES:
        fitted = fit_tiles(*size, side)
        note = (f"{size[0]}x{size[1]} would take {tiles} tiles of {side}x{side} pixels; translated at "
                f"{fitted[0]}x{fitted[1]} ({tile_count(*fitted, side)} tiles, the limit is {MAX_TILES})")
        size, tiles = fitted, tile_count(*fitted, side)
    return Plan(size, tiles, note)


# ---------------------------------------------------------------------------- CycleGAN at full size


def _instance_norm_(x: torch.Tensor, eps: float) -> torch.Tensor:
    """InstanceNorm without affine parameters, in place: no second copy of a large activation."""
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return x.sub_(mean).mul_(torch.rsqrt(var + eps))


def _conv(layer: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, inputs: slice = slice(None),
          out: torch.Tensor | None = None, bias: bool = True) -> torch.Tensor:
    """``layer`` on ``x`` (only the input channels ``inputs`` of its weight), OUT_CHUNK output channels at a
    time, written into (or, with ``out`` given, added to) one output tensor: oneDNN's temporary copies are
    then one chunk's, not the whole output's."""
    transposed = isinstance(layer, nn.ConvTranspose2d)
    w = layer.weight[inputs] if transposed else layer.weight[:, inputs]  # ConvTranspose2d: (in, out, k, k)
    n_out = w.shape[1] if transposed else w.shape[0]
    add = out is not None
    for o0 in range(0, n_out, OUT_CHUNK):
        o1 = min(o0 + OUT_CHUNK, n_out)
        b = layer.bias[o0:o1] if bias and layer.bias is not None else None
        if transposed:
            y = F.conv_transpose2d(x, w[:, o0:o1].contiguous(), b, layer.stride, layer.padding, layer.output_padding)
        else:
            y = F.conv2d(x, w[o0:o1].contiguous(), b, layer.stride, layer.padding)
        if out is None:
            out = torch.empty((x.shape[0], n_out, *y.shape[2:]), dtype=y.dtype, device=y.device)
        if add:
            out[:, o0:o1] += y
        else:
            out[:, o0:o1] = y
        del y
    return out


def _resnet_block_(block: cyclegan.ResnetBlock, x: torch.Tensor) -> torch.Tensor:
    """x + conv_block(x), freeing each intermediate as soon as it is used: at most 3 activations alive."""
    pad1, conv1, norm1, _, pad2, conv2, norm2 = block.conv_block
    p = pad1(x)
    h = _conv(conv1, p)
    del p
    _instance_norm_(h, norm1.eps).relu_()
    p = pad2(h)
    del h
    h = _conv(conv2, p)
    del p
    return x.add_(_instance_norm_(h, norm2.eps))


def _apply_(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.InstanceNorm2d):
        return _instance_norm_(x, layer.eps)
    if isinstance(layer, nn.ReLU):
        return x.relu_()
    if isinstance(layer, cyclegan.ResnetBlock):
        return _resnet_block_(layer, x)
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.padding_mode == "zeros":
        return _conv(layer, x)
    return layer(x)


def resnet_forward_lowmem(model: cyclegan.Generator, x: torch.Tensor, chunk: int = CHANNEL_CHUNK) -> torch.Tensor:
    """The ResNet generator's forward pass with its two full-resolution stages computed ``chunk`` channels
    at a time, so that no full-resolution activation of ngf channels is ever held, and every convolution
    written OUT_CHUNK output channels at a time. Equal to ``model(x)`` up to float rounding."""
    layers = list(model.model)
    pad0, conv0, norm0 = layers[0], layers[1], layers[2]
    down = layers[4]  # the first stride-2 convolution
    last_up = max(i for i, m in enumerate(layers) if isinstance(m, nn.ConvTranspose2d))
    up, norm_up = layers[last_up], layers[last_up + 1]
    pad_out, conv_out, tanh = layers[last_up + 3:]
    if not (isinstance(down, nn.Conv2d) and down.stride == (2, 2) and isinstance(tanh, nn.Tanh)):
        return model(x)  # not the layout this path knows (n_downsampling = 0): the plain forward pass

    # first stage: act = relu(norm(conv0(pad(x)))) (ngf, H, W), chunk by chunk, summed into down(act)
    xp = pad0(x)
    h = None
    for c0 in range(0, conv0.out_channels, chunk):
        c1 = min(c0 + chunk, conv0.out_channels)
        a = F.conv2d(xp, conv0.weight[c0:c1], None if conv0.bias is None else conv0.bias[c0:c1])  # (1, k, H, W)
        _instance_norm_(a, norm0.eps).relu_()
        h = _conv(down, a, slice(c0, c1), out=h, bias=False)  # (1, 2ngf, H/2, W/2), summed over the chunks
        del a
    del xp
    if down.bias is not None:
        h.add_(down.bias[None, :, None, None])

    for layer in layers[5:last_up]:  # (2ngf, H/2, W/2) ... (ngf * 2**n, H/2**n, W/2**n) ... (2ngf, H/2, W/2)
        h = _apply_(layer, h)

    # last stage: out = conv_out(pad(relu(norm(up(h))))), summed chunk by chunk over up's output channels
    out = None
    for c0 in range(0, up.out_channels, chunk):
        c1 = min(c0 + chunk, up.out_channels)
        a = F.conv_transpose2d(h, up.weight[:, c0:c1], None if up.bias is None else up.bias[c0:c1], up.stride,
                               up.padding, up.output_padding)  # (1, k, H, W)
        _instance_norm_(a, norm_up.eps).relu_()
        p = pad_out(a)
        del a
        out = _conv(conv_out, p, slice(c0, c1), out=out, bias=False)  # (1, C_out, H, W)
        del p
    if conv_out.bias is not None:
        out.add_(conv_out.bias[None, :, None, None])
    return out.tanh_()


def _pad_to(x: torch.Tensor, multiple: int, least: int = 0) -> tuple[torch.Tensor, int, int]:
    """Pad (B, C, H, W) at the bottom and right to a multiple of ``multiple`` (and at least ``least``)."""
    h, w = x.shape[-2:]
    ph = max(-h % multiple, least - h)
    pw = max(-w % multiple, least - w)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def run_cyclegan(model: cyclegan.Generator, x: torch.Tensor, lowmem: bool | None = None) -> torch.Tensor:
    """(1, C, H, W) at any size -> (1, C_out, H, W): padded to a multiple of 4, run whole, cropped back."""
    x, h, w = _pad_to(x, 4)
    if lowmem is None:
        lowmem = h * w > LOWMEM_PIXELS
    y = resnet_forward_lowmem(model, x) if lowmem else model(x)
    return y[..., :h, :w]


# ---------------------------------------------------------------------------- Pix2Pix in tiles


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of ``tile`` covering 0..length with at least ``overlap`` between neighbours."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride)) + [length - tile]
    return sorted(set(starts))


def _ramp(tile: int, overlap: int, margin: int, start: bool, end: bool) -> torch.Tensor:
    """(tile,) weights: 1 inside; at a feathered end 0 over ``margin`` pixels, then rising to 1 along a
    raised cosine (flat at both ends) until ``overlap``; an end at the image's border stays 1."""
    i = torch.arange(tile, dtype=torch.float64)
    t = ((i + 0.5 - margin) / max(overlap - margin, 1)).clamp(0.0, 1.0)
    rise = torch.sin(t * torch.pi / 2) ** 2
    w = torch.ones(tile, dtype=torch.float64)
    if start:
        w = w * rise
    if end:
        w = w * rise.flip(0)
    return w.float()


def tile_weights(tile: int, overlap: int, margin: int = 0, sides: tuple[bool, bool, bool, bool] = (True,) * 4
                 ) -> torch.Tensor:
    """(tile, tile) blending weights of a tile whose (top, bottom, left, right) ``sides`` have a neighbour:
    there, the ``margin`` pixels nearest the edge (where a U-Net sees its zero padding) are dropped and the
    rest of the overlap cross-fades smoothly with the neighbour, so no line marks where a tile ends."""
    top, bottom, left, right = sides
    return _ramp(tile, overlap, margin, top, bottom)[:, None] * _ramp(tile, overlap, margin, left, right)[None, :]


def run_tiled(model: nn.Module, x: torch.Tensor, tile: int, overlap: int | None = None, margin: int | None = None,
              progress: Progress | None = None) -> torch.Tensor:
    """(1, C, H, W) -> (1, C_out, H, W) through ``model`` in overlapping (tile x tile) tiles, feathered
    (``tile_weights``); by default the tiles overlap by half, and the outer eighth of a tile is dropped.

    Each tile runs alone (batch 1), so a Pix2Pix normalises each with its own statistics, as on one image
    of its training size."""
    overlap = tile // 2 if overlap is None else overlap
    margin = overlap // 4 if margin is None else margin
    x, h, w = _pad_to(x, 1, least=tile)
    H, W = x.shape[-2:]
    ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    out = acc = None
    total, done = len(ys) * len(xs), 0
    for top in ys:
        for left in xs:
            y = model(x[..., top:top + tile, left:left + tile])  # (1, C_out, tile, tile)
            sides = (top > 0, top + tile < H, left > 0, left + tile < W)
            weights = tile_weights(tile, overlap, margin, sides).to(x.device)
            if out is None:
                out = torch.zeros(1, y.shape[1], H, W, device=x.device)
                acc = torch.zeros(H, W, device=x.device)
            out[..., top:top + tile, left:left + tile] += y * weights
            acc[top:top + tile, left:left + tile] += weights
            done += 1
            if progress is not None:
                progress(done, total)
    return (out / acc.clamp_min(1e-6))[..., :h, :w]


def run_full(model: nn.Module, spec: ModelSpec, x: torch.Tensor, *, progress: Progress | None = None) -> torch.Tensor:
    """(1, C, H, W) at the wanted size -> the translation at that size, in [-1, 1] (on the model's device)."""
    x = x.to(next(model.parameters()).device)
    with torch.inference_mode():
        if spec.family == "cyclegan":
            if progress is not None:
                progress(0, 1)
            y = run_cyclegan(model, x)
            if progress is not None:
                progress(1, 1)
            return y
        if spec.family == "pix2pix":
            return run_tiled(model, x, spec.preprocess.size, progress=progress)
    raise ValueError(f"{spec.name!r} ({spec.family}) cannot translate at full resolution")


# ---------------------------------------------------------------------------- folders and videos


def list_images(folder: Path) -> list[Path]:
    """The images directly inside ``folder`` (sorted), at most ``checks.MAX_FOLDER_IMAGES`` of them."""
    if not folder.is_dir():
        raise ValueError(f"{folder.name}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{folder.name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) > checks.MAX_FOLDER_IMAGES:
        raise ValueError(f"{folder.name} holds {len(files)} images; the limit is {checks.MAX_FOLDER_IMAGES} per call")
    return files


def _imageio():
    try:
        import imageio.v3 as iio
    except ModuleNotFoundError:
        raise RuntimeError("video needs imageio (and imageio-ffmpeg for mp4): "
                           "pip install imageio imageio-ffmpeg") from None
    return iio


def read_video(path: Path, max_frames: int | None = None) -> tuple[Iterator[Image.Image], float, int | None]:
    """(frames, frames per second, frame count if known) of a video or animated GIF, decoded lazily.

    Checked from the header before any frame is decoded: the frame size against ``checks.MAX_PIXELS``,
    the count against ``max_frames`` (default ``checks.MAX_VIDEO_FRAMES``; and again while decoding, for
    headers that under-count).
    GIFs are read with Pillow; mp4, webm, mov, mkv and avi with imageio's ffmpeg plugin."""
    gif = path.suffix.lower() == ".gif"
    limit = checks.MAX_VIDEO_FRAMES if max_frames is None else max_frames
    try:
        if gif:
            with Image.open(path) as im:
                (width, height), count = im.size, getattr(im, "n_frames", 1)
                fps = 1000.0 / max(float(im.info.get("duration") or 100), 10.0)
        else:
            meta = _imageio().immeta(path, plugin="FFMPEG")
            width, height = meta.get("size", (0, 0))
            fps = float(meta.get("fps") or 25.0)
            n = meta.get("nframes", float("inf"))
            if not (isinstance(n, (int, float)) and np.isfinite(n)):  # ffmpeg often leaves it out: from the duration
                n = float(meta.get("duration") or 0) * fps
            count = round(n) or None
    except (RuntimeError, ModuleNotFoundError):
        raise
    except Exception as e:  # noqa: BLE001 - every decoder error is "not a readable video"
        raise ValueError(f"{path.name} is not a readable video ({type(e).__name__})") from None
    if width * height > checks.MAX_PIXELS:
        raise ValueError(f"the video's frames are {width}x{height}; the limit is "
                         f"{checks.MAX_PIXELS // 1_000_000} megapixels, please downscale it")
    if count is not None and count > limit:
        raise ValueError(f"the video has {count} frames; the limit is {limit}: cut it shorter")

    def decoded() -> Iterator[Image.Image]:
        if gif:
            with Image.open(path) as im:
                for i in range(count):
                    im.seek(i)
                    yield im.convert("RGB")
            return
        for i, frame in enumerate(_imageio().imiter(path, plugin="FFMPEG")):
            if i >= limit:
                raise ValueError(f"the video has more than {limit} frames: cut it shorter")
            yield Image.fromarray(frame)
    return decoded(), fps, count


def write_video(path: Path, frames: Iterator[Image.Image], fps: float) -> int:
    """Write frames, pulled one at a time, as an animated GIF (Pillow) or an mp4 (H.264 through
    imageio-ffmpeg), by ``path``'s suffix; returns the number of frames."""
    count = 0

    def counted() -> Iterator[Image.Image]:
        nonlocal count
        for frame in frames:
            count += 1
            yield frame
    stream = counted()
    if path.suffix.lower() == ".gif":
        first = next(stream)
        first.save(path, save_all=True, append_images=stream, duration=round(1000 / fps), loop=0)
        return count
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"videos are written as .mp4 or .gif, not {path.suffix or 'a file without suffix'}")
    import imageio.v2 as iio2  # the v2 writer appends frame by frame

    _imageio()
    with iio2.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=2) as writer:
        for frame in stream:
            a = np.asarray(frame.convert("RGB"))
            h, w = a.shape[:2]
            if h % 2 or w % 2:  # H.264 wants even sides
                a = np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            writer.append_data(a)
    return count


# ---------------------------------------------------------------------------- the public entry points


_full_runs = threading.BoundedSemaphore(1)  # one large full-resolution translation at a time: bounded memory


def translate(name: str, image: Any, *, weights: str | Path | None = None, precision: str | None = None,
              resolution: str | int = "model", mode: str = "deterministic", seed: int = 0,
              progress: Progress | None = None) -> Image.Image:
    """Translate one image with a Pix2Pix or CycleGAN model; any size or mode in.

    Args:
        name: a translator (see ``list_models(task="translate")``).
        image: a path, bytes, PIL image or array.
        weights: use these weights instead of the registry's.
        precision: the serving path at model resolution (see ``gan.sample``); other resolutions run eager fp32.
        resolution: 'model' translates at the model's size (256x256 for the official models) and returns the
            input's aspect ratio, long side up to 1024; 'full' translates at the input's own size (a CycleGAN
            whole, a Pix2Pix U-Net in feathered tiles; at most ``checks.MAX_TRANSLATE_PIXELS``, and at most
            ``MAX_TILES`` tiles: scaled down first to fit); a number N translates at long side N. A model that
            frames its input (the digit CycleGANs) translates at its own size whatever is asked. ``plan`` tells
            the size beforehand, and why.
        mode: Pix2Pix only (a CycleGAN has no dropout nor running statistics): 'deterministic' (image
            statistics, no dropout), 'paper' (the official test.py: image statistics, dropout on, seeded by
            ``seed``) or 'eval' (the official test.py --eval: running statistics, no dropout).
        seed: the dropout seed of mode 'paper'.
        progress: called with (tiles done, tiles in all) while a full-resolution translation runs.

    Example:
        >>> gan.translate("cyclegan-horse2zebra", "horse.jpg", resolution="full").save("zebra.jpg")
    """
    spec = get_spec(name)
    if spec.task != "translate":
        raise ValueError(f"{name!r} is a noise->image model; use gan.sample")
    resolution = check_resolution(resolution)
    mode = check_mode(spec, mode)
    seed = checks.number("seed", seed, 0, checks.MAX_SEED, integer=True)
    img = images.open_image(image)
    with images.image_slot(img):
        img = images.decode(img)
        width, height = img.size
        how = plan(spec, width, height, resolution)
        if how.note:
            log.info("%s: %s", name, how.note)
        x = images.prepare_input(spec, img, how.size)[None]  # (1, C, S, S) or (1, C, H, W)
        del img
    served = serving.serving_generator(name, weights)
    model = served.eager
    if mode != "deterministic" and spec.family == "pix2pix":
        model = pix2pix.with_mode(served.eager, mode, seed)
    if how.size is None:
        if model is served.eager:
            y = served(x, precision=precision)
        else:
            with torch.inference_mode():
                y = model(x.to(served.device)).cpu()
        out_size = images.output_size(width, height, spec.preprocess.size)
        return images.to_images(y)[0].resize(out_size, Image.Resampling.BICUBIC)
    big = x.shape[-1] * x.shape[-2] > images.BIG_IMAGE_PIXELS // 4
    with _full_runs if big else contextlib.nullcontext():
        y = run_full(model, spec, x, progress=progress)
    return images.to_images(y)[0]


def translate_folder(name: str, folder: str | Path, output: str | Path, *,
                     progress: Progress | None = None, **options: Any) -> tuple[list[Path], dict[str, str]]:
    """Translate every image directly inside ``folder`` (at most ``checks.MAX_FOLDER_IMAGES``) into
    ``output``/<name>.png; ``options`` as for ``translate``. Returns (files written, {file name: error})
    for the images that could not be translated; ``progress`` gets (images done, images in all).

    Example:
        >>> written, failed = gan.translate_folder("cyclegan-horse2zebra", "horses/", "zebras/", resolution="full")
    """
    folder, output = Path(folder), Path(output)
    files = list_images(folder)
    get_spec(name)  # an unknown model fails before any folder is made
    if output.resolve() == folder.resolve():
        raise ValueError("the output folder must differ from the input folder")
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    failed: dict[str, str] = {}
    for i, path in enumerate(files):
        try:
            out = output / f"{path.stem}.png"
            translate(name, path, **options).save(out)
            written.append(out)
        except ValueError as e:  # a bad image is reported, and the others are translated
            failed[path.name] = str(e)
        if progress is not None:
            progress(i + 1, len(files))
    return written, failed


def translate_video(name: str, source: str | Path, output: str | Path, *, max_frames: int | None = None,
                    progress: Progress | None = None, **options: Any) -> int:
    """Translate a video (mp4, webm, mov, mkv, avi: needs imageio and imageio-ffmpeg) or an animated GIF
    frame by frame into ``output`` (.mp4 or .gif), at the source's frame rate; ``options`` as for
    ``translate``. At most ``max_frames`` frames (default and limit: ``checks.MAX_VIDEO_FRAMES``), checked
    from the header before decoding. Returns the number of frames written.

    Example:
        >>> gan.translate_video("cyclegan-horse2zebra", "horse.mp4", "zebra.mp4")
    """
    source, output = Path(source), Path(output)
    spec = get_spec(name)
    if spec.task != "translate":
        raise ValueError(f"{name!r} is a noise->image model; use gan.sample")
    limit = checks.MAX_VIDEO_FRAMES if max_frames is None else \
        checks.number("max_frames", max_frames, 1, checks.MAX_VIDEO_FRAMES, integer=True)
    frames, fps, count = read_video(source, limit)

    def translated():
        for i, frame in enumerate(frames):
            yield translate(name, frame, **options)
            if progress is not None:
                progress(i + 1, count or 0)
    return write_video(output, translated(), fps)
