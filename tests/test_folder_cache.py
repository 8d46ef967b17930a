"""Folder datasets decoded once into uint8 tensors (gan.folder_cache): the batches are the ones decoding
per file gives, the decoded tensors are kept on disk and reused until a file changes, and damaged cache
files or unreadable images never stop a run."""
from __future__ import annotations

import itertools
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from gan.data import (
    AlignedDataset,
    ImageFolderDataset,
    PairedFoldersDataset,
    TensorImageDataset,
    UnalignedDataset,
)
from gan.folder_cache import DecodedFolder, decoded, default_workers
from gan.train.common import Hardware, batches

CPU = Hardware(torch.device("cpu"), False)


def _save_png(path: Path, seed: int, size: tuple[int, int] = (9, 7)) -> None:
    """Random pixels, stored uncompressed: every PNG of one size has the same number of bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).save(path, compress_level=0)


def _replace_keeping_size_and_mtime(path: Path, seed: int) -> None:
    """New pixels in the same number of bytes, with the old modification time: the cache key cannot see it."""
    before = path.stat()
    _save_png(path, seed, Image.open(path).size)
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _bad_png(path: Path) -> None:
    """A PNG whose chunks and checksums are fine (PIL's verify passes) but whose pixel data is not zlib."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)  # 4 x 4, 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"not zlib") + chunk(b"IEND", b""))


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FORGER_DECODED_MAX_GB", raising=False)
    return tmp_path / "cache" / "folders"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """13 images, some not square (centre-cropped), in a nested folder too."""
    root = tmp_path / "images"
    for i in range(13):
        _save_png(root / ("nested" if i % 4 == 0 else "") / f"{i:02d}.png", i, (9, 7) if i % 3 else (6, 6))
    return root


def _batches(dataset, n: int, start: int) -> list[tuple[torch.Tensor, ...]]:
    return list(itertools.islice(batches(dataset, 5, 3, start, CPU, workers=0), n))


def _assert_same_batches(got: list, want: list) -> None:
    assert len(got) == len(want)
    for batch, reference in zip(got, want):
        assert len(batch) == len(reference)
        for x, y in zip(batch, reference):
            assert x.dtype == y.dtype and torch.equal(x, y)


def _pairs(root: Path) -> None:
    for i in range(7):
        _save_png(root / "A" / f"{i}.png", i)
        _save_png(root / "B" / f"{i}.png", 100 + i, (6, 6))
        _save_png(root / "train" / f"{i}.png", 200 + i, (14, 7))  # A|B side by side


def test_decoded_folder_batches_equal_per_file_decoding_across_epochs_and_on_resume(folder, cache, tmp_path):
    for channels in (3, 1):
        files = ImageFolderDataset(folder, 8, channels)
        # once in a worker process, once in this one (and the second time from the cache file)
        for workers in (1, 0):
            fast = decoded(ImageFolderDataset(folder, 8, channels), workers=workers)
            assert isinstance(fast, DecodedFolder) and fast.parts[0].dtype == torch.uint8
            assert default_workers(fast) == 0
            for start in (0, 4):  # 13 items, 5 a batch: 6 batches cross two epoch boundaries; 4 is a resume
                _assert_same_batches(_batches(fast, 6, start), _batches(files, 6, start))
            assert all(torch.equal(fast[i][0], files[i][0]) and fast[i][1] == 0 for i in range(len(files)))
    _pairs(tmp_path / "pairs")
    for make in (lambda: AlignedDataset(tmp_path / "pairs", "train", 8, 3),
                 lambda: PairedFoldersDataset(tmp_path / "pairs", 8, 3)):
        fast = decoded(make(), workers=0)
        assert isinstance(fast, DecodedFolder) and len(fast.parts) == 2
        for start in (0, 2):
            _assert_same_batches(_batches(fast, 4, start), _batches(make(), 4, start))
    # CycleGAN's two folders: each decoded, the A/B pairing unchanged
    (tmp_path / "pairs" / "A").rename(tmp_path / "pairs" / "trainA")
    (tmp_path / "pairs" / "B").rename(tmp_path / "pairs" / "trainB")
    unaligned = decoded(UnalignedDataset(tmp_path / "pairs", size=8, channels=3), workers=0)
    assert isinstance(unaligned.a, DecodedFolder) and isinstance(unaligned.b, DecodedFolder)
    assert default_workers(unaligned) == 0
    _assert_same_batches(_batches(unaligned, 4, 1), _batches(UnalignedDataset(tmp_path / "pairs", size=8), 4, 1))


def test_a_folder_over_the_bound_streams_through_the_dataloader_in_workers(folder, cache, monkeypatch):
    monkeypatch.setenv("FORGER_DECODED_MAX_GB", "0")
    files = ImageFolderDataset(folder, 8)
    assert decoded(files) is files and not cache.exists()
    assert default_workers(files) == min(4, os.cpu_count() or 1)
    assert default_workers(TensorImageDataset(torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(3), 8)) == 0
    monkeypatch.setenv("FORGER_DECODED_MAX_GB", "lots")
    with pytest.raises(ValueError, match="FORGER_DECODED_MAX_GB='lots' is not a number of gigabytes"):
        decoded(files)


def test_a_second_run_trains_from_the_cache_without_decoding_the_files(folder, cache, tmp_path):
    from gan.train.loop import TrainConfig, prepare, train

    config = {"model": "mnist-gan", "data": str(folder), "steps": 2, "batch_size": 4, "precision": "fp32",
              "sample_every": 100, "sample_seconds": None}
    events = list(train(TrainConfig(out=tmp_path / "run1", **config)))
    assert events[-1].finished
    assert len(list(cache.glob("*.safetensors"))) == 1
    first = decoded(ImageFolderDataset(folder, 28, 1), workers=0).parts[0]
    for i, path in enumerate(sorted(folder.rglob("*.png"))):
        _replace_keeping_size_and_mtime(path, 1000 + i)
    run = prepare(TrainConfig(out=tmp_path / "run2", **config))
    assert isinstance(run.dataset, DecodedFolder)
    assert torch.equal(run.dataset.parts[0], first)  # the old pixels: read from the cache, not from the files
    now = torch.stack([ImageFolderDataset(folder, 28, 1).decode(i)[0] for i in range(13)])
    assert not torch.equal(now, first)


def test_a_changed_file_decodes_the_folder_again(folder, cache):
    first = decoded(ImageFolderDataset(folder, 8), workers=0).parts[0]
    path = sorted(folder.rglob("*.png"))[5]
    _replace_keeping_size_and_mtime(path, 500)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a newer mtime
    second = decoded(ImageFolderDataset(folder, 8), workers=0).parts[0]
    assert torch.equal(second, torch.stack([ImageFolderDataset(folder, 8).decode(i)[0] for i in range(13)]))
    assert not torch.equal(second, first)
    mtime = path.stat().st_mtime_ns
    _save_png(path, 501, (12, 12))  # another size in bytes, the same mtime
    os.utime(path, ns=(mtime, mtime))
    third = decoded(ImageFolderDataset(folder, 8), workers=0).parts[0]
    assert torch.equal(third[5], ImageFolderDataset(folder, 8).decode(5)[0]) and not torch.equal(third, second)
    assert len(list(cache.glob("*.safetensors"))) == 1  # the folder's one file, replaced each time


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong shape"])
def test_a_damaged_cache_file_is_ignored_and_rebuilt(folder, cache, caplog, damage):
    want = decoded(ImageFolderDataset(folder, 8), workers=0).parts[0]
    (path,) = cache.glob("*.safetensors")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    else:  # the right key, a tensor of another size
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
        save_file({"part0": torch.zeros(13, 3, 4, 4, dtype=torch.uint8)}, str(path), metadata=metadata)
    with caplog.at_level(logging.WARNING, logger="gan.folder_cache"):
        got = decoded(ImageFolderDataset(folder, 8), workers=0).parts[0]
    assert torch.equal(got, want)
    assert "ignoring the damaged decoded-folder cache" in caplog.text
    for i, png in enumerate(sorted(folder.rglob("*.png"))):  # rewritten whole: the next run reads it
        _replace_keeping_size_and_mtime(png, 2000 + i)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gan.folder_cache"):
        assert torch.equal(decoded(ImageFolderDataset(folder, 8), workers=0).parts[0], want)
    assert "damaged" not in caplog.text


def test_an_unreadable_image_is_skipped_and_reported_by_the_decode_and_by_the_cache(folder, cache, caplog):
    bad = folder / "03.png"
    _bad_png(bad)  # passes the check when the dataset is built, fails when decoded
    files = ImageFolderDataset(folder, 8)
    assert bad in files.paths
    with caplog.at_level(logging.WARNING):
        fast = decoded(ImageFolderDataset(folder, 8), workers=1)
    assert fast.skipped == [bad] and str(bad) in caplog.text
    _assert_same_batches(_batches(fast, 6, 0), _batches(files, 6, 0))  # the next readable image stands in
    assert files.skipped == [bad]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = decoded(ImageFolderDataset(folder, 8), workers=0)  # from the cache: still reported
    assert again.skipped == [bad] and str(bad) in caplog.text
    assert torch.equal(again.parts[0], fast.parts[0])
    (folder / "zz.png").write_bytes(b"not an image")  # fails the check at build time: skipped as before
    built = decoded(ImageFolderDataset(folder, 8), workers=0)
    assert built.skipped == [folder / "zz.png", bad]
