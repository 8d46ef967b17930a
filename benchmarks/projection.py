"""Projection (``gan.project``): how faithful, and how fast, against the textbook projection.

Quality: mnist-dcgan on real held-out MNIST digits (the ``heldout`` split, which the GANs never saw; note
that the bundled digit classifier was trained on it, so it reads those inputs almost perfectly): how often
the reconstruction is read as the input's digit, and the mean SSIM to the input. dcgan-faces on its own
samples, drawn from latents the projector is not given (seed 1000 + i): the mean PSNR. mnist-gan: the same
digit metrics, for information.

Speed: seconds per projection, wall clock and CPU seconds / threads (the machine is shared, so wall time
includes waiting for the other jobs), against the textbook projection timed alternately on the same images:
one start per class, one class after the other, pixel MSE, the same number of Adam steps.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import gan
from benchmarks.common import Row
from gan import data, evaluate, projection
from gan.evaluate import interleaved

TARGET_SAME = 0.90
TARGET_SSIM = 0.6
TARGET_PSNR = 24.0
TARGET_S = {"mnist-dcgan": 3.0, "mnist-gan": 3.0, "dcgan-faces": 10.0}


def _timed(fn) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds / torch threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, (time.process_time() - cpu) / torch.get_num_threads()


def textbook(name: str, image) -> float:
    """The reference: for each class in turn (or once), one seeded start, Adam on pixel MSE; the best loss."""
    spec = gan.registry.get_spec(name)
    steps = projection.DEFAULTS[spec.channels][0]
    g = projection._generator(name, None)
    real = projection.target(spec, image)[None]
    best = float("inf")
    for label in (range(len(spec.classes)) if spec.conditional else [None]):
        z = gan.latent.seeded_latents(0, 1, spec.latent_dim).requires_grad_(True)
        labels = None if label is None else torch.tensor([label])
        opt = torch.optim.Adam([z], lr=projection.LR)
        for _ in range(steps):
            loss = (g(z, labels) - real).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = min(best, float(loss))
    return best


def _as_tensor(img) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(arr[None, None].copy() if arr.ndim == 2 else arr.transpose(2, 0, 1)[None].copy())


def _speed(name: str, images: list, walls: list[float], cpus: list[float], timing_pairs: int) -> dict:
    """Median times of ours (from the quality run) and, alternately with ours on a few images, the textbook's."""
    ours_w, ref_w = [], []
    for i, image in enumerate(images[:timing_pairs]):
        order = [("ours", lambda im=image: gan.project(name, im)), ("ref", lambda im=image: textbook(name, im))]
        for what, fn in (order if i % 2 == 0 else order[::-1]):
            (ours_w if what == "ours" else ref_w).append(_timed(fn)[1])
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"s / projection (wall, median)": wall, "s / projection (CPU s / threads)": cpu,
            "p90 wall s": float(np.percentile(walls, 90)),
            "textbook s (wall)": statistics.median(ref_w), "speedup vs textbook": statistics.median(ref_w) /
            statistics.median(ours_w)}


def _digits(name: str, n: int, timing_pairs: int) -> Row:
    images, labels = data.mnist_offline("heldout")
    order = interleaved(labels)[:n]
    digits, truth = [images[i].numpy() for i in order], [int(labels[i]) for i in order]
    spec = gan.registry.get_spec(name)
    classifier = evaluate.load_classifier()
    gan.project(name, digits[0], steps=2)  # load the generator and the classifier once
    same, ssims, found, walls, cpus = 0, [], 0, [], []
    for digit, label in zip(digits, truth):
        p, wall, cpu = _timed(lambda d=digit: gan.project(name, d))
        walls.append(wall)
        cpus.append(cpu)
        recon = _as_tensor(p.reconstruction)
        same += int(evaluate.classify(classifier, recon)[0].argmax()) == label
        ssims.append(float(projection.ssim(recon, projection.target(spec, digit)[None])))
        found += p.label == label
    cells = {"model": name, "images": f"{n} real held-out MNIST digits", "same digit": same / n,
             "mean SSIM": float(np.mean(ssims))}
    if spec.conditional:
        cells["label found = true label"] = found / n
    cells.update(_speed(name, digits, walls, cpus, timing_pairs))
    cpu = cells["s / projection (CPU s / threads)"]
    targets = [(f"{name}: one projection <= {TARGET_S[name]:g} s on 2 cores (CPU s / threads, median)",
                cpu <= TARGET_S[name])]
    if name == "mnist-dcgan":
        targets += [(f"{name}: reconstruction read as the same digit >= {TARGET_SAME:.0%} ({n} held-out digits)",
                     same / n >= TARGET_SAME),
                    (f"{name}: mean SSIM >= {TARGET_SSIM} ({n} held-out digits)", cells["mean SSIM"] >= TARGET_SSIM)]
    return Row("projection", cells, targets)


def _faces(n: int, timing_pairs: int) -> Row:
    name = "dcgan-faces"
    faces = [gan.sample(name, z=gan.latent.seeded_latents(1000 + i, 1, 100), precision="fp32")[0] for i in range(n)]
    gan.project(name, faces[0], steps=2)
    psnrs, walls, cpus = [], [], []
    for face in faces:
        p, wall, cpu = _timed(lambda f=face: gan.project(name, f))
        psnrs.append(p.psnr)
        walls.append(wall)
        cpus.append(cpu)
    cells = {"model": name, "images": f"{n} of its own samples (latents not given)", "mean PSNR dB": float(np.mean(psnrs)),
             "min PSNR dB": float(np.min(psnrs)), **_speed(name, faces, walls, cpus, timing_pairs)}
    cpu = cells["s / projection (CPU s / threads)"]
    return Row("projection", cells, [
        (f"{name}: mean PSNR >= {TARGET_PSNR:g} dB ({n} own samples)", cells["mean PSNR dB"] >= TARGET_PSNR),
        (f"{name}: one projection <= {TARGET_S[name]:g} s on 2 cores (CPU s / threads, median)",
         cpu <= TARGET_S[name])])


def run(quick: bool = False) -> list[Row]:
    return [_digits("mnist-dcgan", 40 if quick else 200, 2 if quick else 3),
            _faces(10 if quick else 50, 2),
            _digits("mnist-gan", 10 if quick else 20, 2)]


def figure(path: str, k: int = 6, edit: float = 1.0) -> None:
    """The README's picture: real held-out digits, their reconstructions by mnist-dcgan, and the
    reconstructions moved along the first GANSpace slider (``edit``), one row per digit."""
    from forger_app.display import make_grid

    images, labels = data.mnist_offline("heldout")
    order = interleaved(labels)[:k]
    name = "mnist-dcgan"
    tiles = []
    for i in order:
        p = gan.project(name, images[i].numpy())
        edited = gan.sample(name, z=p.z[None], label=p.label, edits=[edit], precision="fp32")[0]
        tiles += [p.target, p.reconstruction, edited]
    make_grid([t.resize((84, 84), resample=0) for t in tiles], columns=6).save(path)


if __name__ == "__main__":  # python -m benchmarks.projection docs/results/projection.png
    import sys

    figure(sys.argv[1] if len(sys.argv) > 1 else "projection.png")
