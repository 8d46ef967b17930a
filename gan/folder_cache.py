"""Folder datasets decoded once into uint8 tensors, kept on disk for the next run.

Opening, cropping and resizing a file costs far more than reading its image from memory, and a folder
dataset did it again every epoch. Now a folder whose decoded images fit ``FORGER_DECODED_MAX_GB``
(default 2 GB of uint8; 0 turns this off) is decoded once, in worker processes, into one uint8
(N, C, size, size) tensor per part (the images; A and B for Pix2Pix pairs), and trains like an
in-memory dataset: copied to the training device once, every batch gathered and converted there
(``gan.train.common.batches``), with the same items in the same order as decoding per file gives.
A larger folder keeps streaming: decoded per item in DataLoader workers, every epoch.

The tensors are saved as safetensors in ``FORGER_CACHE/folders/``, one file per (folder, dataset
kind, size, channels). Its metadata holds a hash of all the pixels depend on: each file's resolved
path, size and modification time, the size, the channels, the decoding (``gan.data.DECODE``) and
Pillow's version. A later run with the same hash loads the file instead of decoding; any change
decodes again and replaces it. A file that cannot be read back as written (damaged, truncated,
another shape) is ignored and rewritten; writes are atomic (a temporary file, then a rename). Files
that fail to decode are skipped as ``gan.data._SkipUnreadable`` skips them (the next readable item
takes their place), logged, and remembered in the cache file so a cached run reports them too.
The folder keeps at most ``FORGER_DECODED_DISK_GB`` (default 8) of files: the least recently used go
first. Delete ``FORGER_CACHE/folders/`` (``~/.cache/forger/folders``) to clear it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import PIL
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset

from gan import data
from gan.weights import atomic_write, cache_dir

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the cache file's layout changes
MAX_GB = 2.0  # default FORGER_DECODED_MAX_GB: the largest folder decoded up front (uint8 bytes)
DISK_GB = 8.0  # default FORGER_DECODED_DISK_GB: all cache files together
MAX_WORKERS = 4


def _gigabytes(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1e6:
        raise ValueError(f"{name}={text!r} is not a number of gigabytes from 0 to 1e6; e.g. {name}={default:g}")
    return value


def in_memory(dataset: Dataset) -> bool:
    """Whether every item of ``dataset`` is read from memory (no file decoded per item)."""
    if isinstance(dataset, data._UnpairedDataset):
        return in_memory(dataset.a) and in_memory(dataset.b)
    return isinstance(dataset, (data.TensorImageDataset, data.Sketch2DigitDataset, DecodedFolder))


def default_workers(dataset: Dataset) -> int:
    """Worker processes to read ``dataset`` with: none for in-memory data, else min(4, CPUs)."""
    return 0 if in_memory(dataset) else min(MAX_WORKERS, os.cpu_count() or 1)


class DecodedFolder(Dataset):
    """A folder dataset decoded once: the same items, read from uint8 tensors in memory.

    Args:
        parts: uint8 (N, C, size, size) tensors: the images, or A and B.
        paired: items are (A, B); else (image, 0), as the folder's.
        skipped: the folder's unreadable files.
    """

    def __init__(self, parts: list[torch.Tensor], paired: bool, skipped: list[Path]) -> None:
        self.parts = parts
        self.paired = paired
        self.skipped = skipped

    def __len__(self) -> int:
        return len(self.parts[0])

    def batch(self, parts: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Gathered uint8 parts (B, C, H, W), wherever they are -> the batch the DataLoader would give."""
        images = tuple(data._uint8_to_unit(p) for p in parts)
        if self.paired:
            return images
        return images[0], torch.zeros(len(images[0]), dtype=torch.int64, device=images[0].device)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        images = tuple(data._uint8_to_unit(p[index]) for p in self.parts)
        return images if self.paired else (images[0], 0)


def decoded(dataset: Dataset, workers: int | None = None) -> Dataset:
    """The dataset to train from: a folder dataset that fits ``FORGER_DECODED_MAX_GB`` decoded once (read
    from the cache when it holds it), else ``dataset`` itself. CycleGAN's two folders are each decoded
    (in place: ``dataset.a`` and ``dataset.b`` are replaced). ``workers``: decoding processes (None: min(4, CPUs)).

    Example:
        >>> ds = decoded(ImageFolderDataset("data/celeba/img_align_celeba", 64))  # doctest: +SKIP
    """
    if isinstance(dataset, data.UnalignedDataset):
        dataset.a, dataset.b = decoded(dataset.a, workers), decoded(dataset.b, workers)
        return dataset
    if not isinstance(dataset, data._SkipUnreadable):
        return dataset
    shape = (len(dataset), Image.getmodebands(dataset.mode), dataset.size, dataset.size)
    count = 2 if dataset.paired else 1
    gigabytes = count * math.prod(shape) / 1e9
    bound = _gigabytes("FORGER_DECODED_MAX_GB", MAX_GB)
    if gigabytes > bound:
        log.info("%s decodes to %.2f GB, over FORGER_DECODED_MAX_GB=%g: decoding per item, every epoch",
                 dataset.root, gigabytes, bound)
        return dataset
    path, key = _cache_file(dataset), _content_key(dataset)
    cached = _read(path, key, shape, count)
    if cached is None:
        started = time.perf_counter()
        parts, skipped = _decode_all(dataset, shape, count, workers)
        log.info("decoded %d items of %s in %.1f s", len(dataset), dataset.root, time.perf_counter() - started)
        _write(path, key, parts, skipped)
    else:
        parts, skipped = cached
        log.info("read %d decoded items of %s from %s", len(dataset), dataset.root, path)
        if skipped:
            log.warning("skipping %d unreadable image(s) under %s, e.g. %s", len(skipped), dataset.root, skipped[0])
    return DecodedFolder(parts, dataset.paired, dataset.skipped + [p for p in skipped if p not in dataset.skipped])


# ---------------------------------------------------------------------------- decoding


class _Decode(Dataset):
    """Item i -> (i, its uint8 parts or None, the error): module level, so DataLoader workers can pickle it."""

    def __init__(self, dataset: data._SkipUnreadable) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, tuple[torch.Tensor, ...] | None, str]:
        try:
            return index, self.dataset.decode(index), ""
        except Exception as err:  # noqa: BLE001 - PIL raises many types; one file never stops the run
            return index, None, f"{type(err).__name__}: {err}"


def _decode_all(dataset: data._SkipUnreadable, shape: tuple[int, ...], count: int,
                workers: int | None) -> tuple[list[torch.Tensor], list[Path]]:
    """Every item decoded (in ``workers`` processes) into ``count`` uint8 tensors of ``shape``, and the files
    that failed. A failed item holds the next readable one, as ``_SkipUnreadable`` reads it."""
    workers = default_workers(dataset) if workers is None else workers
    parts = [torch.empty(shape, dtype=torch.uint8) for _ in range(count)]  # size bounded by the caller
    failed: dict[int, str] = {}
    loader = DataLoader(_Decode(dataset), batch_size=32, num_workers=workers, collate_fn=list)
    for items in loader:
        for index, images, error in items:
            if images is None:
                failed[index] = error
                continue
            for part, image in zip(parts, images):
                part[index] = image
    n = len(dataset)
    if len(failed) == n:
        raise RuntimeError(f"none of the {n} items of {type(dataset).__name__} could be read; see the warnings above")
    skipped: list[Path] = []
    for index, error in sorted(failed.items()):
        files = dataset._files(index)
        log.warning("skipping unreadable item %s (%s)", ", ".join(map(str, files)), error)
        skipped += files
        stand_in = next(j % n for j in range(index + 1, index + n) if j % n not in failed)
        for part in parts:
            part[index] = part[stand_in]
    return parts, skipped


# ---------------------------------------------------------------------------- the cache files


def _cache_file(dataset: data._SkipUnreadable) -> Path:
    """One file per folder, dataset kind, size and channels: a changed folder replaces its own file."""
    identity = [type(dataset).__name__, str(dataset.root.resolve()), getattr(dataset, "phase", ""),
                dataset.size, dataset.mode]
    return cache_dir() / "folders" / f"{hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]}.safetensors"


def _content_key(dataset: data._SkipUnreadable) -> str:
    """A hash of everything the decoded pixels depend on."""
    digest = hashlib.sha256(json.dumps([FORMAT, data.DECODE, PIL.__version__, type(dataset).__name__,
                                        dataset.size, dataset.mode]).encode())
    for index in range(len(dataset)):
        for path in dataset._files(index):
            try:
                stat = path.stat()
                facts = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:  # gone since the dataset was built: it fails to decode, and is skipped
                facts = "missing"
            digest.update(f"{path.resolve()}\0{facts}\n".encode())
    return digest.hexdigest()


def _read(path: Path, key: str, shape: tuple[int, ...], count: int) -> tuple[list[torch.Tensor], list[Path]] | None:
    """The cached parts and skipped files, or None when there is no usable cache file for ``key``."""
    if not path.is_file():
        return None
    names = [f"part{i}" for i in range(count)]
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("key") != key:
                log.info("the folder changed since %s was written: decoding it again", path)
                return None
            if sorted(f.keys()) != names:
                raise ValueError(f"it holds {sorted(f.keys())}, not {names}")
            parts = [f.get_tensor(name) for name in names]
        skipped = json.loads(metadata["skipped"])
        if not isinstance(skipped, list) or not all(isinstance(s, str) for s in skipped):
            raise ValueError("its list of skipped files is not a list of paths")
        for part in parts:
            if part.dtype != torch.uint8 or tuple(part.shape) != shape:
                raise ValueError(f"it holds {part.dtype} {tuple(part.shape)}, not uint8 {shape}")
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for damaged files
        log.warning("ignoring the damaged decoded-folder cache %s (%s: %s); decoding the folder again",
                    path, type(err).__name__, err)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # just used: evicted last
    return parts, [Path(s) for s in skipped]


def _write(path: Path, key: str, parts: list[torch.Tensor], skipped: list[Path]) -> None:
    """Save atomically; a cache that cannot be written only costs a decode next run."""
    metadata = {"format": str(FORMAT), "key": key, "skipped": json.dumps([str(p) for p in skipped])}
    tensors = {f"part{i}": part for i, part in enumerate(parts)}
    try:
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    except Exception as err:  # noqa: BLE001 - OSError, or safetensors' own error on a full disk
        log.warning("could not save the decoded folder to %s (%s); the next run decodes it again", path, err)
        return
    _evict(path.parent, keep=path)


def _evict(folder: Path, keep: Path) -> None:
    """Delete the least recently used cache files until all of them fit FORGER_DECODED_DISK_GB."""
    bound = _gigabytes("FORGER_DECODED_DISK_GB", DISK_GB) * 1e9
    files = []
    for file in folder.glob("*.safetensors"):
        with contextlib.suppress(OSError):
            stat = file.stat()
            files.append((stat.st_mtime, stat.st_size, file))
    total = sum(size for _, size, _ in files)
    for _, size, file in sorted(files):
        if total <= bound:
            break
        if file != keep:
            with contextlib.suppress(OSError):
                file.unlink()
                total -= size
                log.info("removed the least recently used decoded folder %s", file)

