"""Folder training data: an epoch decoded per file (DataLoader workers, as a folder streamed before the cache)
against an epoch read from the decoded uint8 tensor (``gan.folder_cache``), on a folder of 64x64 PNGs.

Both give the same batches (tests/test_folder_cache.py). Wall time alone flatters decoding per file: its
workers use every core while the main process waits, cores a training step needs. So the CPU seconds of
all processes (this one and its workers) per epoch are given too. Also timed: building the dataset
(listing and PIL-verifying the files, which every run does), the first run's one decode (in workers) and
write of the cache file, and a later run's read of it.
"""
from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Row
from benchmarks.training import image_folder


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (DataLoader workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _epoch_seconds(dataset, batch: int, workers: int, epochs: int = 2) -> tuple[float, float]:
    """Wall seconds of the last of ``epochs`` epochs (the first pays for starting the workers), and CPU
    seconds per epoch of all processes over all of them."""
    from gan.train.common import Hardware, batches

    per_epoch = len(dataset) // batch
    cpu = _cpu_seconds()
    stream = batches(dataset, batch, 0, 0, Hardware(torch.device("cpu"), False), workers)
    for _ in range(per_epoch * (epochs - 1)):
        next(stream)
    start = time.perf_counter()
    for _ in range(per_epoch):
        next(stream)
    seconds = time.perf_counter() - start
    stream.close()  # ends (and joins) the DataLoader's workers
    return seconds, (_cpu_seconds() - cpu) / epochs


def run(quick: bool = False) -> list[Row]:
    from gan.data import ImageFolderDataset
    from gan.folder_cache import decoded, default_workers

    n, size, batch = (500 if quick else 2000), 64, 64
    rounds = 2 if quick else 5
    old_cache = os.environ.get("FORGER_CACHE")
    with tempfile.TemporaryDirectory(prefix="forger-bench-foldercache-") as tmp:
        os.environ["FORGER_CACHE"] = str(Path(tmp) / "cache")  # a cache of its own: the first run is cold
        try:
            folder = image_folder(size, n=n, root=Path(tmp) / "images")
            start = time.perf_counter()
            files = ImageFolderDataset(folder, size, 3)
            build = time.perf_counter() - start
            workers = default_workers(files)
            start = time.perf_counter()
            decoded(files, workers)
            first = time.perf_counter() - start
            later = ImageFolderDataset(folder, size, 3)
            start = time.perf_counter()
            cached = decoded(later, workers)  # a later run: the key (file stats), then the file
            again = time.perf_counter() - start
            per_file, from_cache = [], []
            for _ in range(rounds):  # alternate the two
                per_file.append(_epoch_seconds(files, batch, workers))
                from_cache.append(_epoch_seconds(cached, batch, workers))
        finally:
            if old_cache is None:
                os.environ.pop("FORGER_CACHE", None)
            else:
                os.environ["FORGER_CACHE"] = old_cache
    ref, ours = (statistics.median(t for t, _ in times) for times in (per_file, from_cache))
    ref_cpu, ours_cpu = (statistics.median(c for _, c in times) for times in (per_file, from_cache))
    cells = {
        "folder": f"{n:,} PNGs {size}x{size} RGB", "batch": batch, "workers": workers,
        "epoch decoded per file s": ref, "epoch from the cache s": ours, "speedup (wall)": ref / ours,
        "CPU s/epoch per file": ref_cpu, "CPU s/epoch cache": ours_cpu, "speedup (CPU)": ref_cpu / ours_cpu,
        "build dataset (verify) s": build, "first run: decode + write s": first,
        "later run: read cache s": again,
    }
    return [Row("foldercache", cells)]
