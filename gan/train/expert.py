"""Refining an expert: more discriminator training after the GAN is done, against its frozen forger,
with corrupted real images as extra fakes.

At the end of GAN training a discriminator knows only what its forger got wrong lately. The bundled
mnist-gan's (fully connected, with dropout) rated a blank canvas above most real digits, because its
forger never drew one. Two published ideas fix that without touching the generator:

- keep training D after G is frozen (Azadi et al. 2019, "Discriminator Rejection Sampling"), so it is
  a good judge of the finished forger instead of a moving opponent;
- show D real images broken in ways that keep their local statistics, labelled fake ("negative data
  augmentation", Sinha et al. 2021): patches of a digit shuffled (jigsaw), most of a digit erased, two
  digits blended (mixup), and halves of two digits stitched together.

Each step D sees a batch of real images (target 1), of the forger's samples (0) and of corrupted real
images (0), with equal weight. The corruptions are not the kinds ``tests/test_judge.py`` measures
(uniform noise, blank canvases, pixel-shuffled digits, blurred digits): those stay a test of what the
expert learned, not of what it was shown. The generator is not changed.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from gan import checks
from gan.data import TensorImageDataset, open_dataset
from gan.registry import get_spec
from gan.weights import DISCRIMINATOR_FILE, WEIGHTS_DIR, atomic_write

CORRUPTIONS = ("jigsaw", "erased", "mixup", "stitched")
MAX_STEPS = 100_000


def _pick(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(n, (k,), generator=generator)


def jigsaw(x: torch.Tensor, generator: torch.Generator, pieces: int = 4) -> torch.Tensor:
    """(B, C, S, S) -> each image cut into pieces x pieces tiles, shuffled (S divisible by ``pieces``)."""
    b, c, s, _ = x.shape
    t = s // pieces
    tiles = x.unfold(2, t, t).unfold(3, t, t).reshape(b, c, pieces * pieces, t, t)
    order = torch.stack([torch.randperm(pieces * pieces, generator=generator) for _ in range(b)])  # (B, P*P)
    tiles = tiles.gather(2, order.view(b, 1, -1, 1, 1).expand_as(tiles))
    return tiles.view(b, c, pieces, pieces, t, t).permute(0, 1, 2, 4, 3, 5).reshape(b, c, s, s)


def erased(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A rectangle of half to all of each side set to the background (-1): most of the digit gone."""
    b, _, s, _ = x.shape
    h, w = (torch.randint(s // 2, s + 1, (2, b), generator=generator))
    top = (torch.rand(b, generator=generator) * (s - h + 1)).long()
    left = (torch.rand(b, generator=generator) * (s - w + 1)).long()
    ys, xs = torch.arange(s).view(1, s, 1), torch.arange(s).view(1, 1, s)
    box = ((ys >= top.view(b, 1, 1)) & (ys < (top + h).view(b, 1, 1))
           & (xs >= left.view(b, 1, 1)) & (xs < (left + w).view(b, 1, 1)))  # (B, S, S)
    return torch.where(box[:, None], -1.0, x)


def mixup(x: torch.Tensor, other: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image blended with another, 25-75% of each."""
    share = 0.25 + 0.5 * torch.rand(len(x), 1, 1, 1, generator=generator)
    return share * x + (1 - share) * other


def stitched(x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """The left half of each image beside the right half of another."""
    out = x.clone()
    half = x.shape[-1] // 2
    out[..., half:] = other[..., half:]
    return out


def corrupted(real: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k corrupted real images (k, C, S, S): the four corruptions in turn, from random real images."""
    x, other = real[_pick(len(real), k, generator)], real[_pick(len(real), k, generator)]
    kinds = torch.arange(k) % len(CORRUPTIONS)
    out = torch.empty_like(x)
    out[kinds == 0] = jigsaw(x[kinds == 0], generator)
    out[kinds == 1] = erased(x[kinds == 1], generator)
    out[kinds == 2] = mixup(x[kinds == 2], other[kinds == 2], generator)
    out[kinds == 3] = stitched(x[kinds == 3], other[kinds == 3])
    return out


def refine_expert(name: str, out: str | Path, *, weights: str | Path | None = None, steps: int = 6000,
                  batch_size: int = 64, lr: float = 2e-4, seed: int = 0, progress: bool = True) -> Path:
    """Train ``name``'s discriminator ``steps`` more steps against its frozen generator and corrupted real
    images; write it as ``out/discriminator.safetensors``.

    ``weights`` is the weights folder to start from (default: the bundled one). When ``out`` is another
    folder, the generator's files are copied there first, so ``out`` is a complete weights folder
    (``gan.judge(name, images, weights=out)``). Its config.json records the refinement.

    Example:
        >>> refine_expert("mnist-gan", "runs/mnist-gan-expert")  # doctest: +SKIP
    """
    import gan
    from safetensors.torch import save_file

    spec = get_spec(name)
    steps = checks.number("steps", steps, 1, MAX_STEPS, integer=True)
    batch_size = checks.number("batch_size", batch_size, 4, checks.MAX_BATCH_SIZE, integer=True)
    lr = checks.number("lr", lr, 1e-8, 1.0)
    if spec.task != "noise":
        raise ValueError(f"{name}: only noise->image models' experts can be refined (a translator's is a PatchGAN "
                         f"trained on its pairs)")
    source = Path(weights) if weights is not None else WEIGHTS_DIR / name
    G = gan.load_generator(name, weights=weights).eval().requires_grad_(False)
    D = gan.load_discriminator(name, weights=weights, pretrained=True).train()
    if getattr(D, "minibatch_std", False):
        raise ValueError(f"{name}: its discriminator judges groups of images (minibatch std), so batches of "
                         f"corrupted images would teach it about the group, not the image")
    dataset = open_dataset(spec.data, task="noise", image_size=spec.image_size, channels=spec.channels)
    if not isinstance(dataset, TensorImageDataset):
        raise ValueError(f"{name}: its dataset {spec.data!r} is not held in memory")
    real, real_labels = dataset.images, dataset.labels
    conditional = bool(spec.classes)
    noise = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc=f"refining {name}'s expert", disable=not progress):
        index = _pick(len(real), batch_size, noise)
        z = torch.randn(batch_size, spec.latent_dim, generator=noise)
        fake_labels = torch.randint(len(spec.classes), (batch_size,), generator=noise) if conditional else None
        with torch.no_grad():
            fake = G(z, fake_labels)
        broken = corrupted(real, batch_size, noise)
        if conditional:  # corrupted images keep no class: judged under a random one
            logits = [D(real[index], real_labels[index]), D(fake, fake_labels),
                      D(broken, torch.randint(len(spec.classes), (batch_size,), generator=noise))]
        else:
            logits = [D(real[index]), D(fake), D(broken)]
        loss = (bce(logits[0], torch.ones_like(logits[0])) + bce(logits[1], torch.zeros_like(logits[1]))
                + bce(logits[2], torch.zeros_like(logits[2])))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != source.resolve():
        for f in source.iterdir():
            if f.is_file() and f.name != DISCRIMINATOR_FILE:
                shutil.copy2(f, out / f.name)
    tensors = {k: v.detach().float().contiguous() if v.is_floating_point() else v.contiguous()
               for k, v in D.state_dict().items()}
    atomic_write(out / DISCRIMINATOR_FILE, lambda p: save_file(tensors, str(p)))
    config_path = out / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    config["expert"] = {"refined": f"{steps} steps against the frozen generator and corrupted real images "
                                   f"({', '.join(CORRUPTIONS)}), batch {batch_size}, Adam lr {lr:g}",
                        "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                        "train_seconds": round(seconds, 1), "data": spec.data}
    atomic_write(config_path, lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    return out / DISCRIMINATOR_FILE
