"""Tests for gan.data: vendored digits, folder layouts, sketches, open_dataset, offline failures."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan import data
from gan.data import (
    AlignedDataset,
    DatasetUnavailableError,
    Digits2MnistDataset,
    ImageFolderDataset,
    PairedFoldersDataset,
    Sketch2DigitDataset,
    TensorImageDataset,
    UnalignedDataset,
    digit_sketch,
    mnist_offline,
    open_dataset,
    torchvision_dataset,
    uci_digits,
)


def _save_random_image(path: Path, size: tuple[int, int] = (20, 16), seed: int = 0, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)


def _save_solid_image(path: Path, value: int, size: tuple[int, int] = (16, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def _assert_unit_image(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert x.dtype == torch.float32
    assert tuple(x.shape) == shape
    assert x.min() >= -1.0 and x.max() <= 1.0


# --- vendored digits --------------------------------------------------------


def test_mnist_offline_splits_are_balanced_disjoint_and_cover_all() -> None:
    train_x, train_y = mnist_offline("train")
    held_x, held_y = mnist_offline("heldout")
    all_x, all_y = mnist_offline("all")
    assert train_x.shape == (2500, 28, 28) and train_x.dtype == torch.uint8
    assert held_x.shape == (2500, 28, 28)
    assert all_x.shape == (5000, 28, 28)
    assert train_y.dtype == torch.int64
    assert train_y.bincount().tolist() == [250] * 10
    assert held_y.bincount().tolist() == [250] * 10
    assert all_y.bincount().tolist() == [500] * 10
    # Disjoint and together exactly the 5,000 digits.
    train_rows = {bytes(row) for row in train_x.reshape(2500, -1).numpy()}
    held_rows = {bytes(row) for row in held_x.reshape(2500, -1).numpy()}
    all_rows = {bytes(row) for row in all_x.reshape(5000, -1).numpy()}
    assert not train_rows & held_rows
    assert train_rows | held_rows == all_rows
    # Deterministic: same split twice.
    assert torch.equal(mnist_offline("train")[0], train_x)
    # Real digits: white strokes on black, mostly background.
    assert all_x.max() == 255 and (all_x == 0).float().mean() > 0.7


def test_mnist_offline_unknown_split_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="train, heldout, all"):
        mnist_offline("test")


def test_uci_digits_shapes_and_labels() -> None:
    images, labels = uci_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == torch.uint8
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert sorted(labels.unique().tolist()) == list(range(10))
    assert images.max() == 255 and images.min() == 0


def test_tensor_dataset_upsamples_uci_8x8_to_28_in_unit_range() -> None:
    images, labels = uci_digits()
    ds = TensorImageDataset(images[:10], labels[:10], size=28)
    image, label = ds[3]
    _assert_unit_image(image, (1, 28, 28))
    assert label == int(labels[3])
    assert isinstance(label, int)
    rgb = TensorImageDataset(images[:10], labels[:10], size=8, channels=3)[0][0]
    assert rgb.shape == (3, 8, 8) and torch.equal(rgb[0], rgb[2])
    assert torch.allclose(rgb[0], images[0].float() / 127.5 - 1)


# --- image folders ----------------------------------------------------------


def test_image_folder_skips_and_counts_corrupt_file(tmp_path: Path) -> None:
    _save_random_image(tmp_path / "a.png", seed=1)
    _save_random_image(tmp_path / "nested" / "b.jpg", size=(30, 20), seed=2)
    (tmp_path / "broken.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path, size=12, channels=3)
    assert len(ds) == 2
    assert ds.skipped == [tmp_path / "broken.jpg"]
    image, label = ds[1]
    _assert_unit_image(image, (3, 12, 12))
    assert label == 0
    assert ImageFolderDataset(tmp_path, size=12, channels=1)[0][0].shape == (1, 12, 12)


def test_image_folder_file_that_breaks_after_build_does_not_crash(tmp_path: Path) -> None:
    _save_random_image(tmp_path / "a.png", seed=1)
    _save_random_image(tmp_path / "b.png", seed=2)
    ds = ImageFolderDataset(tmp_path, size=8)
    (tmp_path / "a.png").write_bytes(b"garbage")  # corrupted after the dataset was built
    image, _ = ds[0]  # falls back to b.png
    assert torch.equal(image, ImageFolderDataset(tmp_path, size=8)[0][0])
    assert ds.skipped == [tmp_path / "a.png"]


def test_image_folder_centre_crops_to_square(tmp_path: Path) -> None:
    # 30 wide x 10 high: black | white | black thirds; centre crop keeps the white square.
    array = np.zeros((10, 30, 3), dtype=np.uint8)
    array[:, 10:20] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    image, _ = ImageFolderDataset(tmp_path, size=10)[0]
    assert torch.all(image == 1.0)


def test_empty_or_missing_folder_error_names_folder_and_layout(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*holds no images.*expected layout"):
        ImageFolderDataset(tmp_path / "empty", size=8)
    with pytest.raises(ValueError, match=r"missing.*does not exist.*expected layout"):
        ImageFolderDataset(tmp_path / "missing", size=8)
    with pytest.raises(ValueError, match=r"trainA.*CycleGAN"):
        UnalignedDataset(tmp_path / "empty", size=8)
    with pytest.raises(ValueError, match=r"pix2pix aligned layout"):
        AlignedDataset(tmp_path / "empty", size=8)


# --- paired layouts ---------------------------------------------------------


def test_aligned_dataset_splits_left_half_into_a_and_right_half_into_b(tmp_path: Path) -> None:
    array = np.zeros((16, 32, 3), dtype=np.uint8)
    array[:, :16] = (255, 0, 0)  # A: red
    array[:, 16:] = (0, 0, 255)  # B: blue
    (tmp_path / "train").mkdir()
    Image.fromarray(array).save(tmp_path / "train" / "1.png")
    a, b = AlignedDataset(tmp_path, phase="train", size=8)[0]
    _assert_unit_image(a, (3, 8, 8))
    _assert_unit_image(b, (3, 8, 8))
    assert torch.all(a[0] == 1) and torch.all(a[2] == -1)
    assert torch.all(b[0] == -1) and torch.all(b[2] == 1)


def test_paired_folders_pair_by_name(tmp_path: Path) -> None:
    for i, value in enumerate((0, 100, 200)):
        _save_solid_image(tmp_path / "A" / f"{i}.png", value)
        _save_solid_image(tmp_path / "B" / f"{i}.jpg", 255 - value)  # extensions may differ
    ds = PairedFoldersDataset(tmp_path, size=8, channels=1)
    assert len(ds) == 3
    a, b = ds[1]
    assert a.shape == b.shape == (1, 8, 8)
    assert abs(a.mean().item() - (100 / 127.5 - 1)) < 0.02
    assert abs(b.mean().item() - (155 / 127.5 - 1)) < 0.05


def test_paired_folders_mismatch_is_reported_before_training(tmp_path: Path) -> None:
    for name in ("x", "y", "z"):
        _save_solid_image(tmp_path / "A" / f"{name}.png", 0)
    for name in ("x", "w"):
        _save_solid_image(tmp_path / "B" / f"{name}.png", 0)
    with pytest.raises(ValueError) as info:
        PairedFoldersDataset(tmp_path, size=8)
    message = str(info.value)
    assert "3 images in A, 2 in B" in message
    assert "'y'" in message and "'w'" in message


# --- unpaired layouts -------------------------------------------------------


def _make_unaligned(root: Path, n_a: int, n_b: int) -> None:
    for i in range(n_a):
        _save_solid_image(root / "trainA" / f"{i}.png", i * 10)
    for i in range(n_b):
        _save_solid_image(root / "trainB" / f"{i}.png", 200 + i * 10)


def test_unaligned_dataset_is_deterministic_and_covers_both_domains(tmp_path: Path) -> None:
    _make_unaligned(tmp_path, n_a=3, n_b=5)
    ds = UnalignedDataset(tmp_path, size=8, channels=1, seed=0)
    assert len(ds) == 5
    items = [ds[i] for i in range(len(ds))]
    again = UnalignedDataset(tmp_path, size=8, channels=1, seed=0)
    assert all(torch.equal(x[1], y[1]) for x, y in zip(items, [again[i] for i in range(5)]))
    b_means = sorted(round(b.mean().item(), 3) for _, b in items)
    assert len(set(b_means)) == 5  # every B image used once per pass
    assert max(a.mean().item() for a, _ in items) < 0  # A domain: dark images only
    ds.set_epoch(1)
    assert [b.mean().item() for _, b in (ds[i] for i in range(5))] != [b.mean().item() for _, b in items]


def test_digits2mnist_is_unpaired_uci_to_mnist() -> None:
    ds = Digits2MnistDataset(seed=0, size=28)
    assert len(ds) == 2500
    assert len(ds.labels_a) == 1797 and len(ds.labels_b) == 2500
    a, b, label_a, label_b = ds[0]  # labelled: for the class-conditional discriminators
    _assert_unit_image(a, (1, 28, 28))
    _assert_unit_image(b, (1, 28, 28))
    assert label_a == int(ds.labels_a[0])
    assert torch.equal(b, ds.b[int(ds._b_order[0])][0]) and label_b == int(ds.labels_b[int(ds._b_order[0])])
    assert torch.equal(ds[7][1], Digits2MnistDataset(seed=0, size=28)[7][1])


def _centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    mass = x.sum(0)
    return (float((mass.sum(1) * torch.arange(mass.shape[0])).sum() / mass.sum()),
            float((mass.sum(0) * torch.arange(mass.shape[1])).sum() / mass.sum()))


def _ink_box(x: torch.Tensor) -> tuple[int, int]:
    ink = x.amax(0) > 0.25 * x.max()
    rows, cols = ink.any(1).nonzero().flatten(), ink.any(0).nonzero().flatten()
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def test_fit_digit_frames_any_drawing_like_mnist_and_is_stable() -> None:
    canvas = torch.zeros(1, 60, 100)
    canvas[:, 5:25, 70:80] = 1.0  # a tall stroke in a corner, 20 x 10
    out = data.fit_digit(canvas, 20, 28)
    assert out.shape == (1, 28, 28) and 0 <= out.min() and out.max() <= 1
    assert _ink_box(out) == (20, 10)  # long side 20, aspect ratio kept
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    again = data.fit_digit(out, 20, 28)
    assert (again - out).abs().mean() < 0.02  # framing a framed digit changes it only by resampling
    assert data.fit_digit(torch.zeros(1, 8, 8), 20, 28).abs().max() == 0  # no ink: a black image


def test_fit_digit_centres_by_mass_not_by_bounding_box() -> None:
    """An L with a heavy foot: MNIST centres the centre of mass, which here is far from the box's centre."""
    canvas = torch.zeros(1, 40, 40)
    canvas[:, 5:25, 10:12] = 1.0  # a thin upright stroke, 20 x 2
    canvas[:, 17:25, 12:18] = 1.0  # a heavy foot at its bottom right, 8 x 6
    out = data.fit_digit(canvas, 20, 28)
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5  # the centre of mass is the image centre
    ink = out[0] > 0.25
    rows, cols = ink.any(1).nonzero().flatten(), ink.any(0).nonzero().flatten()
    box_cy = (float(rows[0]) + float(rows[-1])) / 2
    assert box_cy < 13.5 - 2  # the box sits high: its foot pulls the mass down by ~3 px
    assert abs(cx - (float(cols[0]) + float(cols[-1])) / 2) > 0.5


def test_digits2mnist_fit_frames_the_uci_side_like_mnist() -> None:
    plain, framed = Digits2MnistDataset(seed=0, size=28), Digits2MnistDataset(seed=0, size=28, fit=20)
    a_plain, a_framed = (ds.a.images for ds in (plain, framed))
    border = torch.ones(28, 28, dtype=torch.bool)
    border[4:24, 4:24] = False
    assert (a_plain[:, 0][:, border] > 0).float().mean() > 0.05  # UCI digits fill their frame
    assert (a_framed[:, 0][:, border] > 0).float().mean() < 0.01  # framed: MNIST's 4-pixel black border
    assert max(_ink_box((a_framed[3] + 1) / 2)) == 20
    assert torch.equal(plain.b.images, framed.b.images)  # the MNIST side is already framed


# --- sketches ---------------------------------------------------------------


def test_digit_sketch_is_binary_strokes_overlapping_the_digit() -> None:
    images, _ = mnist_offline("train")
    rng = np.random.default_rng(0)
    digits = images[::25].numpy()  # 100 digits, 10 per class
    sketches = np.stack([digit_sketch(image, rng) for image in digits])
    assert sketches.shape == (100, 28, 28) and sketches.dtype == np.uint8
    ink = sketches > 127
    digit = digits > 127
    near_digit = digit.copy()  # the digit grown by 1 px: the pen wobbles slightly
    near_digit[:, 1:] |= digit[:, :-1]
    near_digit[:, :-1] |= digit[:, 1:]
    near_digit[:, :, 1:] |= digit[:, :, :-1]
    near_digit[:, :, :-1] |= digit[:, :, 1:]
    # Mostly pure black or white: uniform strokes with only a thin antialiased edge.
    assert ((sketches == 0) | (sketches >= 250)).mean(axis=(1, 2)).min() > 0.8
    assert ink.sum(axis=(1, 2)).min() > 10
    # Strokes lie on the digit and trace much of it.
    on_digit = (ink & near_digit).sum(axis=(1, 2)) / ink.sum(axis=(1, 2))
    assert on_digit.min() > 0.7 and np.median(on_digit) > 0.95
    covered = (ink & digit).sum(axis=(1, 2)) / digit.sum(axis=(1, 2))
    assert covered.min() > 0.1 and np.median(covered) > 0.5
    # Thinner than the digit on average, never a copy of it.
    assert ink.sum() < digit.sum()


def test_digit_sketch_is_reproducible_with_the_same_seed() -> None:
    image = mnist_offline("train")[0][0].numpy()
    first = digit_sketch(image, np.random.default_rng(5))
    assert np.array_equal(first, digit_sketch(image, np.random.default_rng(5)))
    assert not np.array_equal(first, digit_sketch(image, np.random.default_rng(6)))


def test_sketch2digit_pairs_sketch_with_its_digit() -> None:
    ds = Sketch2DigitDataset("train", size=32, seed=0)
    assert len(ds) == 2500 and ds.labels.bincount().tolist() == [250] * 10
    sketch, digit = ds[10]
    _assert_unit_image(sketch, (1, 32, 32))
    _assert_unit_image(digit, (1, 32, 32))
    overlap = ((sketch > 0) & (digit > 0)).sum() / (sketch > 0).sum()
    assert overlap > 0.6


# --- open_dataset -----------------------------------------------------------


def test_open_dataset_keywords_return_the_right_items() -> None:
    noise = open_dataset("mnist-offline", task="noise", image_size=32, channels=3)
    image, label = noise[0]
    _assert_unit_image(image, (3, 32, 32))
    assert isinstance(label, int) and len(noise) == 2500
    sevens = open_dataset("mnist-offline", task="noise", image_size=28, channels=1, classes=["7"])
    assert len(sevens) == 250 and sevens[0][1] == 7
    a, b = open_dataset("sketch2digit", task="paired", image_size=28, channels=1)[0]
    assert a.shape == b.shape == (1, 28, 28)
    a, b, label_a, label_b = open_dataset("digits2mnist", task="unpaired", image_size=28, channels=1)[0]
    assert a.shape == b.shape == (1, 28, 28) and 0 <= label_a <= 9 and 0 <= label_b <= 9


def test_open_dataset_detects_folder_layouts(tmp_path: Path) -> None:
    _save_random_image(tmp_path / "faces" / "1.jpg")
    assert isinstance(open_dataset(str(tmp_path / "faces"), task="noise", image_size=8, channels=3), ImageFolderDataset)
    _save_random_image(tmp_path / "facades" / "train" / "1.jpg", size=(32, 16))
    aligned = open_dataset(str(tmp_path / "facades"), task="paired", image_size=8, channels=3)
    assert isinstance(aligned, AlignedDataset)
    _save_random_image(tmp_path / "pairs" / "A" / "1.png")
    _save_random_image(tmp_path / "pairs" / "B" / "1.png")
    paired = open_dataset(str(tmp_path / "pairs"), task="paired", image_size=8, channels=3)
    assert isinstance(paired, PairedFoldersDataset)
    _make_unaligned(tmp_path / "h2z", 2, 2)
    unaligned = open_dataset(str(tmp_path / "h2z"), task="unpaired", image_size=8, channels=3)
    assert isinstance(unaligned, UnalignedDataset) and unaligned[0][0].shape == (3, 8, 8)


def test_open_dataset_unknown_keyword_lists_valid_keywords() -> None:
    with pytest.raises(ValueError, match=r"mnist-offline, mnist, cifar10.*Did you mean|Did you mean.*mnist-offline"):
        open_dataset("mnist-ofline", task="noise", image_size=28, channels=1)
    with pytest.raises(ValueError, match=r"'sketch2digit' is for 'paired' models.*digits2mnist"):
        open_dataset("sketch2digit", task="unpaired", image_size=28, channels=1)
    with pytest.raises(ValueError, match="valid tasks"):
        open_dataset("mnist-offline", task="gan", image_size=28, channels=1)


def test_open_dataset_paired_folder_without_layout_explains_both(tmp_path: Path) -> None:
    _save_random_image(tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"aligned layout.*A/ and .*B/"):
        open_dataset(str(tmp_path), task="paired", image_size=8, channels=3)


# --- torchvision ------------------------------------------------------------


def test_cifar10_unknown_class_lists_the_ten_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck"):
        torchvision_dataset("cifar10", tmp_path, classes=["frogs"], download=False)


@pytest.mark.parametrize(
    "name, command", [("mnist", "torchvision.datasets.MNIST"), ("cifar10", "torchvision.datasets.CIFAR10")]
)
def test_download_failure_raises_dataset_unavailable_with_fetch_command(
    tmp_path: Path, name: str, command: str
) -> None:
    """Runs for real: this machine has no network. (On a connected machine it would download, so skip.)"""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(3)
    try:
        try:
            host = "ossci-datasets.s3.amazonaws.com" if name == "mnist" else "www.cs.toronto.edu"
            socket.create_connection((host, 443), timeout=2).close()
        except OSError:
            pass
        else:
            pytest.skip("network is up; this test checks the offline error")
        with pytest.raises(DatasetUnavailableError) as info:
            torchvision_dataset(name, tmp_path, classes=["frog"] if name == "cifar10" else None, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    message = str(info.value)
    assert "could not be downloaded" in message
    assert command in message and "download=True" in message
    assert ("mnist-offline" in message) == (name == "mnist")
    assert isinstance(info.value, RuntimeError)


def _write_fake_mnist_files(root: Path) -> None:
    """torchvision's MNIST raw idx files, filled with 40 of the vendored digits."""
    images, labels = mnist_offline("all")
    images, labels = images[::125].numpy(), labels[::125].numpy().astype(np.uint8)  # 4 per class
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        header = np.array([0x0803, len(images), 28, 28], dtype=">i4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        header = np.array([0x0801, len(labels)], dtype=">i4").tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())


def test_torchvision_mnist_from_local_files_gives_unit_range_channels_and_class_subset(tmp_path: Path) -> None:
    _write_fake_mnist_files(tmp_path)
    ds = open_dataset("mnist", task="noise", image_size=32, channels=3, classes=["3", "5"], root=tmp_path)
    assert len(ds) == 8
    image, label = ds[0]
    _assert_unit_image(image, (3, 32, 32))
    assert label in (3, 5) and sorted({ds[i][1] for i in range(len(ds))}) == [3, 5]
    native = torchvision_dataset("mnist", tmp_path, download=False)
    image, _ = native[0]
    _assert_unit_image(image, (1, 28, 28))
    assert torch.equal(image[0], mnist_offline("all")[0][0].float() / 127.5 - 1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1)  # transform must pickle
    assert next(iter(loader))[0].shape == (4, 3, 32, 32)


def test_missing_torchvision_files_without_download_raise_dataset_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match="torchvision.datasets.MNIST.*mnist-offline"):
        torchvision_dataset("mnist", tmp_path, download=False)


def test_vendored_assets_have_attribution() -> None:
    readme = (data.ASSETS_DIR / "README.md").read_text()
    for needle in ("LeCun", "Alpaydin", "CC BY 4.0", "BSD", "mnist_5k.npz", "uci_digits.npz"):
        assert needle in readme
