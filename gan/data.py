"""Datasets for training and evaluating the GANs.

Every image comes out as a float32 tensor in [-1, 1] with shape (C, H, W).

Three kinds of data, matching the three kinds of model:

- "noise" models (DCGAN, the MNIST and CIFAR GANs) read items ``(image, label)``:
  the vendored real MNIST subset (``mnist-offline``, no network needed),
  torchvision MNIST / CIFAR-10, or any folder of images (e.g. CelebA).
- "paired" models (pix2pix) read items ``(A, B)`` with B the target of A:
  the official pix2pix aligned layout, an ``A/`` + ``B/`` folder pair, or
  ``sketch2digit`` (hand-drawn-looking sketches of real MNIST digits).
- "unpaired" models (CycleGAN) read items ``(A, B)`` drawn independently:
  the official ``trainA/ trainB/`` layout, or ``digits2mnist``
  (UCI 8x8 scanned digits -> MNIST digits).

``open_dataset`` is the one entry point the trainers call::

    ds = open_dataset("mnist-offline", task="noise", image_size=28, channels=1)
    image, label = ds[0]  # (1, 28, 28) in [-1, 1], int

The vendored data files live in ``gan/assets/`` (see its README.md for the
attribution, licences and the script that produced them).
"""

from __future__ import annotations

import difflib
import functools
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import Dataset, Subset

from gan.errors import DatasetUnavailableError  # noqa: F401 - also gan.data.DatasetUnavailableError

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)

MNIST_OFFLINE_SPLITS = ("train", "heldout", "all")
MNIST_PER_CLASS_TRAIN = 250  # first 250 digits of each class -> "train", the other 250 -> "heldout"

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))

TASKS = ("noise", "paired", "unpaired")
KEYWORDS: dict[str, tuple[str, ...]] = {
    "noise": ("mnist-offline", "mnist", "cifar10"),
    "paired": ("sketch2digit",),
    "unpaired": ("digits2mnist",),
}


# ---------------------------------------------------------------------------
# Vendored digits
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _load_asset(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = ASSETS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"vendored data file {path} is missing; reinstall the package or regenerate it "
            f"with the script in {ASSETS_DIR / 'README.md'}"
        )
    with np.load(path) as archive:
        images, labels = archive["images"], archive["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def mnist_offline(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """5,000 real MNIST digits (500 per class) shipped with the package; no network needed.

    Args:
        split: "train" (first 250 digits of each class, 2,500, for training GANs),
            "heldout" (the other 250 per class, 2,500, ONLY for training the evaluation
            classifier) or "all" (5,000).

    Returns:
        (images uint8 (N, 28, 28) in 0..255, white digit on black; labels int64 (N,)).

    Example:
        >>> images, labels = mnist_offline("train")
        >>> images.shape, labels.bincount().tolist()[:3]
        (torch.Size([2500, 28, 28]), [250, 250, 250])
    """
    if split not in MNIST_OFFLINE_SPLITS:
        raise ValueError(f"unknown mnist_offline split {split!r}; valid splits: {', '.join(MNIST_OFFLINE_SPLITS)}")
    images, labels = _load_asset("mnist_5k.npz")
    if split == "all":
        keep = np.arange(len(labels))
    else:
        # Rank of each digit within its class, in file order: 0, 1, 2, ... per class.
        rank = np.empty(len(labels), dtype=np.int64)
        for digit in np.unique(labels):
            members = np.flatnonzero(labels == digit)
            rank[members] = np.arange(len(members))
        in_train = rank < MNIST_PER_CLASS_TRAIN
        keep = np.flatnonzero(in_train if split == "train" else ~in_train)
    return torch.from_numpy(images[keep].copy()), torch.from_numpy(labels[keep].copy())


def uci_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 UCI 8x8 handwritten digits (as in scikit-learn), vendored with the package.

    Returns:
        (images uint8 (1797, 8, 8), 0..16 rescaled to 0..255, white on black; labels int64 (1797,)).
    """
    images, labels = _load_asset("uci_digits.npz")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


# ---------------------------------------------------------------------------
# Image helpers
# ---------------------------------------------------------------------------


def _pil_mode(channels: int) -> str:
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")


def _uint8_to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 -1..1."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def fit_digit(x: torch.Tensor, box: int, size: int, ink: float = 0.25) -> torch.Tensor:
    """Frame a light-on-dark digit as MNIST frames its digits: (C, H, W) in [0, 1] -> (C, size, size).

    The digit's bounding box (pixels brighter than ``ink`` times the brightest) is scaled, aspect
    ratio kept, so that its long side is ``box`` (MNIST: 20 in 28), then placed on black with its
    centre of mass at the centre. Framing an already framed digit changes it only by resampling.
    An image with no ink is simply resized.
    """
    strength = x.amax(0)  # (H, W)
    inked = strength > ink * strength.max()  # all False for a black image
    rows, cols = inked.any(1).nonzero(), inked.any(0).nonzero()
    if not len(rows):
        return F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True)[0].clamp(0.0, 1.0)
    crop = x[:, int(rows[0]):int(rows[-1]) + 1, int(cols[0]):int(cols[-1]) + 1]
    scale = box / max(crop.shape[1:])
    h, w = (max(1, min(size, round(n * scale))) for n in crop.shape[1:])
    digit = F.interpolate(crop[None], size=(h, w), mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)
    mass = digit.sum(0)  # (h, w)
    total = mass.sum().clamp_min(1e-8)
    cy = float((mass.sum(1) * torch.arange(h)).sum() / total)  # centre of mass, pixel-centre coordinates
    cx = float((mass.sum(0) * torch.arange(w)).sum() / total)
    top = min(max(round((size - 1) / 2 - cy), 0), size - h)
    left = min(max(round((size - 1) / 2 - cx), 0), size - w)
    out = x.new_zeros(x.shape[0], size, size)
    out[:, top:top + h, left:left + w] = digit
    return out


def _convert_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """(..., C, H, W) with C in {1, 3} -> (..., channels, H, W): one image or a batch, on any device."""
    _pil_mode(channels)  # validates
    have = image.shape[-3]
    if have == channels:
        return image
    if have == 1:  # gray -> RGB
        return torch.cat([image] * 3, dim=-3)
    # RGB -> gray with ITU-R 601 luma weights, like PIL's convert("L")
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(-3, keepdim=True)


def _open_image(path: Path, mode: str) -> Image.Image:
    """Read an image file fully and convert it to `mode` ("L" or "RGB")."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)  # phone photos store their rotation in EXIF
        if img.mode in ("P", "PA", "LA", "RGBA") and mode == "RGB":
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        return img.convert(mode)


# How a folder's files become tensors (part of the decoded-folder cache's key: change it when this changes).
DECODE = "centre-crop to square, PIL bicubic resize, uint8"


def _pil_to_unit(img: Image.Image, size: int | None = None, crop: bool = True) -> torch.Tensor:
    """PIL image -> float32 (C, size, size) in [-1, 1]; centre-crop to square (if `crop`), then resize."""
    return _uint8_to_unit(_pil_to_uint8(img, size, crop))


def _pil_to_uint8(img: Image.Image, size: int | None = None, crop: bool = True) -> torch.Tensor:
    """PIL image -> uint8 (C, size, size); centre-crop to square (if `crop`), then resize."""
    if crop and img.width != img.height:
        side = min(img.width, img.height)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)  # antialiased when shrinking
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # (C, H, W)


def _to_unit_with_mode(img: Image.Image, size: int | None, mode: str) -> torch.Tensor:
    """Transform for torchvision datasets (module level so DataLoader workers can pickle it)."""
    return _pil_to_unit(img.convert(mode), size)


def _find_images(folder: Path) -> list[Path]:
    """All image files under `folder` (recursive), sorted for a stable order."""
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def _is_readable_image(path: Path) -> bool:
    """Cheap check at dataset build time: the header parses and PIL's verify() passes."""
    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except Exception:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return False


def _require_images(folder: Path, layout: str) -> list[Path]:
    """Images under `folder`, or a ValueError naming the folder and the expected layout."""
    if not folder.is_dir():
        raise ValueError(f"folder {folder} does not exist; expected layout: {layout}")
    paths = _find_images(folder)
    if not paths:
        raise ValueError(
            f"folder {folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            f"expected layout: {layout}"
        )
    return paths


def _split_readable(paths: list[Path], where: Path) -> tuple[list[Path], list[Path]]:
    good, bad = [], []
    for path in paths:
        (good if _is_readable_image(path) else bad).append(path)
    if bad:
        examples = ", ".join(str(p) for p in bad[:3])
        log.warning("skipping %d unreadable image(s) under %s, e.g. %s", len(bad), where, examples)
    return good, bad


class _SkipUnreadable(Dataset):
    """Base for file-backed datasets: a file that fails to load at __getitem__ time is logged,
    recorded in `.skipped`, and the next readable item is returned instead, so one corrupt file
    never stops a training run. (With DataLoader workers, `.skipped` fills in the workers' copies.)"""

    paired = False  # items: (image, 0); True: (A, B)

    def __init__(self) -> None:
        self.skipped: list[Path] = []
        self._bad: set[int] = set()

    def __len__(self) -> int:
        raise NotImplementedError

    def decode(self, index: int) -> tuple[torch.Tensor, ...]:
        """Item `index` read from its file(s): uint8 (C, size, size), one per part (the image, or A and B)."""
        raise NotImplementedError

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | int]:
        parts = tuple(_uint8_to_unit(p) for p in self.decode(index))
        return parts if self.paired else (parts[0], 0)

    def _files(self, index: int) -> list[Path]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor | int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for dataset of length {n}")
        index %= n
        for step in range(n):
            i = (index + step) % n
            if i in self._bad:
                continue
            try:
                return self._load(i)
            except Exception as err:  # PIL raises many types; never crash the run on one file
                self._bad.add(i)
                files = self._files(i)
                self.skipped.extend(p for p in files if p not in self.skipped)
                log.warning("skipping unreadable item %s (%s: %s)", ", ".join(map(str, files)), type(err).__name__, err)
        raise RuntimeError(f"none of the {n} items of {type(self).__name__} could be read; see the warnings above")


# ---------------------------------------------------------------------------
# Datasets: single images
# ---------------------------------------------------------------------------


class TensorImageDataset(Dataset):
    """In-memory uint8 images -> items (image (channels, size, size) in [-1, 1], label int).

    Args:
        images_uint8: (N, H, W) or (N, C, H, W) uint8 tensor (or array), 0..255.
        labels: (N,) integer labels.
        size: output side; resized with bilinear + antialias when it differs (e.g. UCI 8 -> 28).
        channels: 1 or 3 output channels (gray is repeated to RGB). Default 1.

    Example:
        >>> ds = TensorImageDataset(*mnist_offline("train"), size=32)
        >>> ds[0][0].shape
        torch.Size([1, 32, 32])
    """

    def __init__(self, images_uint8: torch.Tensor, labels: torch.Tensor, size: int, channels: int = 1) -> None:
        images = torch.as_tensor(images_uint8)
        if images.dtype != torch.uint8:
            raise ValueError(f"images_uint8 must be uint8 0..255, got dtype {images.dtype}")
        if images.ndim == 3:
            images = images.unsqueeze(1)  # (N, 1, H, W)
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, H, W) or (N, C, H, W) with C in 1 or 3, got {tuple(images.shape)}")
        labels = torch.as_tensor(labels).to(torch.int64)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        _pil_mode(channels)
        if images.shape[-2:] != (size, size):  # resized once, kept as floats
            x = F.interpolate(_uint8_to_unit(images), size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
            self.stored = x.clamp_(-1.0, 1.0)
        else:  # kept as uint8 (a quarter of the memory), converted per batch
            self.stored = images.contiguous()
        self.labels = labels
        self.channels = channels

    @property
    def images(self) -> torch.Tensor:
        """All images, float32 (N, C, size, size) in [-1, 1]."""
        return self.unit(self.stored)

    @staticmethod
    def unit(stored: torch.Tensor) -> torch.Tensor:
        """Stored images (uint8, or floats already in [-1, 1]) -> float32 in [-1, 1]."""
        return _uint8_to_unit(stored) if stored.dtype == torch.uint8 else stored

    def batch(self, stored: torch.Tensor) -> torch.Tensor:
        """A batch of stored images (B, C, H, W), wherever they are -> the items' images, batched."""
        return _convert_channels(self.unit(stored), self.channels)

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return _convert_channels(self.unit(self.stored[index]), self.channels), int(self.labels[index])


class ImageFolderDataset(_SkipUnreadable):
    """Any folder (searched recursively) of images -> items (image (channels, size, size), 0).

    Images are centre-cropped to a square and resized (e.g. CelebA img_align_celeba -> 64).
    Unreadable files are found when the dataset is built (PIL verify) and skipped; a file that
    still fails when loaded is skipped then. Either way its path is appended to `.skipped`.

    Example:
        >>> ds = ImageFolderDataset("data/celeba/img_align_celeba", size=64)  # doctest: +SKIP
    """

    LAYOUT = "a folder of image files (searched recursively), e.g. data/celeba/img_align_celeba/*.jpg"

    def __init__(self, root: str | Path, size: int, channels: int = 3) -> None:
        super().__init__()
        self.root = Path(root)
        self.size = size
        self.mode = _pil_mode(channels)
        paths = _require_images(self.root, self.LAYOUT)
        self.paths, bad = _split_readable(paths, self.root)
        self.skipped.extend(bad)
        if not self.paths:
            raise ValueError(
                f"none of the {len(paths)} image files under {self.root} could be read; expected: {self.LAYOUT}"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def _files(self, index: int) -> list[Path]:
        return [self.paths[index]]

    def decode(self, index: int) -> tuple[torch.Tensor]:
        return (_pil_to_uint8(_open_image(self.paths[index], self.mode), self.size),)


# ---------------------------------------------------------------------------
# Datasets: paired (pix2pix)
# ---------------------------------------------------------------------------


class AlignedDataset(_SkipUnreadable):
    """Official pix2pix "aligned" layout -> items (A, B), each (channels, size, size).

    `root/<phase>/*.jpg` where each file holds A and B side by side: left half A, right half B
    (phase is "train", "val" or "test", as in the facades/maps/edges2shoes downloads).
    Both halves get the same centre-crop and resize, so they stay pixel-aligned.
    """

    paired = True

    def __init__(self, root: str | Path, phase: str = "train", size: int = 256, channels: int = 3) -> None:
        super().__init__()
        self.root = Path(root)
        self.size = size
        self.mode = _pil_mode(channels)
        self.phase = phase
        folder = self.root / phase
        layout = f"pix2pix aligned layout: {self.root}/{phase}/*.jpg, each image A|B side by side (left A, right B)"
        paths = _require_images(folder, layout)
        self.paths, bad = _split_readable(paths, folder)
        self.skipped.extend(bad)
        if not self.paths:
            raise ValueError(f"none of the {len(paths)} image files in {folder} could be read; expected {layout}")

    def __len__(self) -> int:
        return len(self.paths)

    def _files(self, index: int) -> list[Path]:
        return [self.paths[index]]

    def decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = _open_image(self.paths[index], self.mode)
        half = img.width // 2
        a = img.crop((0, 0, half, img.height))
        b = img.crop((half, 0, 2 * half, img.height))
        return _pil_to_uint8(a, self.size), _pil_to_uint8(b, self.size)


class PairedFoldersDataset(_SkipUnreadable):
    """Two-folder paired layout -> items (A, B): `root/A/name.png` pairs with `root/B/name.png`.

    Files are matched by name without extension (so A/001.jpg pairs with B/001.png).
    Mismatched names raise a ValueError here, before any training starts.
    """

    paired = True

    def __init__(self, root: str | Path, size: int = 256, channels: int = 3) -> None:
        super().__init__()
        self.root = Path(root)
        self.size = size
        self.mode = _pil_mode(channels)
        layout = f"paired layout: {self.root}/A/<name>.<ext> and {self.root}/B/<name>.<ext> with the same names"
        a_paths = _require_images(self.root / "A", layout)
        b_paths = _require_images(self.root / "B", layout)
        a_by_name = {p.relative_to(self.root / "A").with_suffix("").as_posix(): p for p in a_paths}
        b_by_name = {p.relative_to(self.root / "B").with_suffix("").as_posix(): p for p in b_paths}
        only_a = sorted(a_by_name.keys() - b_by_name.keys())
        only_b = sorted(b_by_name.keys() - a_by_name.keys())
        if only_a or only_b:
            raise ValueError(
                f"A/ and B/ under {self.root} do not pair up: {len(a_by_name)} images in A, {len(b_by_name)} in B; "
                f"{len(only_a)} only in A (e.g. {only_a[:3]}), {len(only_b)} only in B (e.g. {only_b[:3]}). "
                f"Rename or remove files so every A/<name> has a B/<name>."
            )
        pairs = [(a_by_name[name], b_by_name[name]) for name in sorted(a_by_name)]
        self.pairs = []
        for a, b in pairs:
            bad = [p for p in (a, b) if not _is_readable_image(p)]
            if bad:
                self.skipped.extend(bad)
            else:
                self.pairs.append((a, b))
        if self.skipped:
            log.warning("skipping %d pair(s) with unreadable images under %s, e.g. %s",
                        len(pairs) - len(self.pairs), self.root, self.skipped[0])
        if not self.pairs:
            raise ValueError(f"none of the {len(pairs)} pairs under {self.root} could be read; expected {layout}")

    def __len__(self) -> int:
        return len(self.pairs)

    def _files(self, index: int) -> list[Path]:
        return list(self.pairs[index])

    def decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.pairs[index]
        return _pil_to_uint8(_open_image(a, self.mode), self.size), _pil_to_uint8(_open_image(b, self.mode), self.size)


# ---------------------------------------------------------------------------
# Datasets: unpaired (CycleGAN)
# ---------------------------------------------------------------------------


class _UnpairedDataset(Dataset):
    """Two independent datasets of (image, label) -> items (A, B).

    Length is max(len A, len B). Item i takes A[i % len A] and B[perm[i % len B]], where perm is
    a permutation of B seeded by (seed, epoch): B is independent of A, yet every item is
    deterministic given its index. Call `set_epoch(e)` to draw fresh (A, B) combinations.
    """

    labelled = False  # True: items are (A, B, label A, label B)

    def __init__(self, a: Dataset, b: Dataset, seed: int = 0) -> None:
        self.a, self.b = a, b
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._b_order = np.random.default_rng([self.seed, epoch]).permutation(len(self.b))

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for dataset of length {len(self)}")
        image_a, label_a = self.a[index % len(self.a)]
        image_b, label_b = self.b[int(self._b_order[index % len(self.b)])]
        return (image_a, image_b, label_a, label_b) if self.labelled else (image_a, image_b)


class UnalignedDataset(_UnpairedDataset):
    """Official CycleGAN layout -> items (A, B): `root/trainA/`, `root/trainB/` (and testA/, testB/).

    See `_UnpairedDataset` for how B is drawn. Corrupt files are skipped as in `ImageFolderDataset`.
    """

    def __init__(
        self, root: str | Path, phase: str = "train", size: int = 256, channels: int = 3, seed: int = 0
    ) -> None:
        self.root = Path(root)
        layout = f"CycleGAN unaligned layout: {self.root}/{phase}A/ and {self.root}/{phase}B/ holding images"
        folders = [self.root / f"{phase}A", self.root / f"{phase}B"]
        for folder in folders:
            _require_images(folder, layout)
        a = ImageFolderDataset(folders[0], size, channels)
        b = ImageFolderDataset(folders[1], size, channels)
        super().__init__(a, b, seed)

    @property
    def skipped(self) -> list[Path]:
        return self.a.skipped + self.b.skipped


# ---------------------------------------------------------------------------
# Digit sketches (for sketch2digit)
# ---------------------------------------------------------------------------


def _zhang_suen_thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a batch of binary images (N, H, W) -> 1-pixel-wide skeletons.

    T. Y. Zhang and C. Y. Suen, "A fast parallel algorithm for thinning digital patterns",
    CACM 27(3), 1984. Neighbours, clockwise from north: p2 p3 p4 p5 p6 p7 p8 p9.
    """
    img = np.pad(binary.astype(bool), ((0, 0), (1, 1), (1, 1)))
    while True:
        changed = False
        for first_pass in (True, False):
            c = img[:, 1:-1, 1:-1]
            p2, p3, p4 = img[:, :-2, 1:-1], img[:, :-2, 2:], img[:, 1:-1, 2:]
            p5, p6, p7 = img[:, 2:, 2:], img[:, 2:, 1:-1], img[:, 2:, :-2]
            p8, p9 = img[:, 1:-1, :-2], img[:, :-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            neighbours = sum(p.astype(np.uint8) for p in ring[:8])  # B(p1)
            transitions = sum((~ring[i] & ring[i + 1]).astype(np.uint8) for i in range(8))  # A(p1): 0 -> 1
            if first_pass:
                keep_shape = ~(p2 & p4 & p6) & ~(p4 & p6 & p8)
            else:
                keep_shape = ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            remove = c & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & keep_shape
            if remove.any():
                img[:, 1:-1, 1:-1] = c & ~remove
                changed = True
        if not changed:
            return img[:, 1:-1, 1:-1].copy()


def _skeleton_segments(skeleton: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line segments joining 8-connected skeleton pixels, plus zero-length ones for lone pixels.

    Returns (image index (S,), start (S, 2) as (y, x), end (S, 2)).
    """
    n, h, w = skeleton.shape
    padded = np.pad(skeleton, ((0, 0), (0, 1), (1, 1)))  # so every step below stays in bounds
    has_neighbour = np.zeros_like(skeleton)
    images, starts, ends = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each undirected neighbour pair once
        shifted = padded[:, dy : dy + h, 1 + dx : 1 + dx + w]
        i, y, x = np.nonzero(skeleton & shifted)
        images.append(i)
        starts.append(np.stack([y, x], 1))
        ends.append(np.stack([y + dy, x + dx], 1))
        has_neighbour[i, y, x] = True
        has_neighbour[i, y + dy, x + dx] = True
    i, y, x = np.nonzero(skeleton & ~has_neighbour)
    images.append(i)
    starts.append(np.stack([y, x], 1))
    ends.append(np.stack([y, x], 1))
    return np.concatenate(images), np.concatenate(starts), np.concatenate(ends)


def _digit_sketches(
    images: np.ndarray,
    rng: np.random.Generator,
    stroke_width: tuple[float, float] = (1.5, 3.0),
    jitter: float = 0.5,
) -> np.ndarray:
    """Batch version of `digit_sketch`: (N, H, W) uint8 digits -> (N, H, W) uint8 sketches."""
    n, h, w = images.shape
    skeleton = _zhang_suen_thin(images > 127)
    empty = ~skeleton.any(axis=(1, 2))
    skeleton[empty] = images[empty] > 0  # nothing survived thinning (very faint digit): draw it as is

    # Per digit: stroke width, a small random affine pen drift, and a smooth wobble field.
    width = torch.from_numpy(rng.uniform(*stroke_width, n).astype(np.float32))
    angle = np.deg2rad(rng.uniform(-5.0, 5.0, n))
    scale = rng.uniform(0.95, 1.05, n)
    shear = rng.uniform(-0.08, 0.08, n)
    shift = rng.uniform(-0.5, 0.5, (n, 2))
    coarse = torch.from_numpy(rng.normal(0.0, jitter, (n, 2, 4, 4)).astype(np.float32))
    wobble = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).numpy()  # (N, 2, H, W)

    seg_image, start, end = _skeleton_segments(skeleton)

    def move(points: np.ndarray) -> np.ndarray:  # (S, 2) pixel (y, x) -> jittered float (y, x)
        y, x = points[:, 0], points[:, 1]
        cy, cx = (h - 1) / 2, (w - 1) / 2
        dy, dx = y - cy, x - cx + shear[seg_image] * (y - cy)
        cos, sin = np.cos(angle[seg_image]) * scale[seg_image], np.sin(angle[seg_image]) * scale[seg_image]
        new_y = cy + sin * dx + cos * dy + shift[seg_image, 0] + wobble[seg_image, 0, y, x]
        new_x = cx + cos * dx - sin * dy + shift[seg_image, 1] + wobble[seg_image, 1, y, x]
        return np.stack([new_y, new_x], 1).astype(np.float32)

    a, b = move(start), move(end)

    # Render each segment as a capsule of the digit's width with a 1-pixel antialiased edge,
    # over the 7x7 pixels around its midpoint (enough: radius <= 1.5 + 0.5 edge, half length < 1).
    offsets = np.stack(np.mgrid[-3:4, -3:4].reshape(2, -1), 1)  # (K=49, 2)
    centre = np.rint((a + b) / 2).astype(np.int64)
    pixel = centre[:, None, :] + offsets[None]  # (S, K, 2)
    inside = (pixel[..., 0] >= 0) & (pixel[..., 0] < h) & (pixel[..., 1] >= 0) & (pixel[..., 1] < w)
    q = torch.from_numpy(pixel.astype(np.float32))
    a_t, ab = torch.from_numpy(a)[:, None], torch.from_numpy(b - a)[:, None]  # (S, 1, 2)
    t = (((q - a_t) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0.0, 1.0)  # (S, K)
    distance = (q - (a_t + t[..., None] * ab)).norm(dim=-1)
    coverage = (width[seg_image][:, None] / 2 - distance + 0.5).clamp(0.0, 1.0)
    coverage = torch.where(torch.from_numpy(inside), coverage, torch.zeros(()))
    flat = seg_image[:, None] * (h * w) + pixel[..., 0].clip(0, h - 1) * w + pixel[..., 1].clip(0, w - 1)
    canvas = torch.zeros(n * h * w).scatter_reduce_(0, torch.from_numpy(flat).ravel(), coverage.ravel(), "amax")
    return (canvas.view(n, h, w).numpy() * 255.0 + 0.5).astype(np.uint8)


def digit_sketch(image_uint8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turn a real MNIST digit into what a person would draw on a sketchpad.

    Binarise, thin to a 1-pixel skeleton (Zhang-Suen), then redraw the skeleton with a uniform
    antialiased stroke of random width (1.5 to 3 px at 28 px) and a slight random wobble:
    white strokes on black, like MNIST.

    Args:
        image_uint8: (28, 28) uint8 digit (any (H, W) works), white on black.
        rng: source of the stroke width and jitter.

    Returns:
        (H, W) uint8 sketch.

    Example:
        >>> images, _ = mnist_offline("train")
        >>> digit_sketch(images[0].numpy(), np.random.default_rng(0)).shape
        (28, 28)
    """
    image = np.asarray(image_uint8)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected one (H, W) uint8 image, got shape {image.shape} dtype {image.dtype}")
    return _digit_sketches(image[None], rng)[0]


@functools.lru_cache(maxsize=4)
def _cached_sketches(split: str, seed: int) -> np.ndarray:
    images, _ = mnist_offline(split)
    sketches = _digit_sketches(images.numpy(), np.random.default_rng(seed))
    sketches.setflags(write=False)
    return sketches


class Sketch2DigitDataset(Dataset):
    """Paired (sketch, digit) from the vendored real MNIST digits -> items (A, B).

    A is a hand-drawn-looking sketch of the digit B (see `digit_sketch`); sketches are made once
    per (split, seed) and cached. `labels` holds each pair's digit class.

    Example:
        >>> sketch, digit = Sketch2DigitDataset("train")[0]
        >>> sketch.shape, digit.shape
        (torch.Size([1, 28, 28]), torch.Size([1, 28, 28]))
    """

    def __init__(self, split: str = "train", size: int = 28, seed: int = 0, channels: int = 1) -> None:
        digits, labels = mnist_offline(split)
        sketches = torch.from_numpy(_cached_sketches(split, seed).copy())
        self.sketches = TensorImageDataset(sketches, labels, size, channels)
        self.digits = TensorImageDataset(digits, labels, size, channels)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sketches[index][0], self.digits[index][0]


class Digits2MnistDataset(_UnpairedDataset):
    """Unpaired (A, B, label A, label B): A = UCI 8x8 scanned digits upsampled (bilinear) to `size`,
    B = the vendored MNIST "train" split. `labels_a` / `labels_b` hold the classes. The two digits
    of an item are independent draws (different digits, usually): the labels let a class-conditional
    discriminator judge each image against its own digit.

    With ``fit`` (the models' ``Preprocess.fit``), the UCI digits, which fill their frame, are
    framed as MNIST frames its digits (``fit_digit``): the translator then changes the style of
    the strokes, not the geometry, which is what CycleGAN can learn (Zhu et al. 2017, section 5.2)."""

    labelled = True

    def __init__(self, seed: int = 0, size: int = 28, channels: int = 1, fit: int = 0) -> None:
        a_images, self.labels_a = uci_digits()
        b_images, self.labels_b = mnist_offline("train")
        a = TensorImageDataset(a_images, self.labels_a, size, channels)
        if fit:
            a.stored = torch.stack([fit_digit((x + 1) / 2, fit, size) * 2 - 1 for x in a.images])
        super().__init__(a, TensorImageDataset(b_images, self.labels_b, size, channels), seed)


# ---------------------------------------------------------------------------
# torchvision datasets
# ---------------------------------------------------------------------------


def _fetch_command(name: str, root: Path, train: bool) -> str:
    cls = {"mnist": "MNIST", "cifar10": "CIFAR10"}[name]
    return f"python -c \"import torchvision; torchvision.datasets.{cls}('{root}', train={train}, download=True)\""


def torchvision_dataset(
    name: str,
    root: Path,
    *,
    train: bool = True,
    classes: list[str] | None = None,
    download: bool = True,
    image_size: int | None = None,
    channels: int | None = None,
) -> Dataset:
    """torchvision MNIST or CIFAR-10 -> items (image in [-1, 1], label int).

    Args:
        name: "mnist" or "cifar10".
        root: folder the files are downloaded to / read from.
        train: training split (else the test split).
        classes: keep only these classes, by name: CIFAR-10 names like ["frog"], MNIST "0".."9".
            Labels keep their original ids (frog stays 6).
        download: download when missing.
        image_size: resize to this side (default: native 28 / 32).
        channels: 1 or 3 (default: native, 1 for MNIST, 3 for CIFAR-10).

    Raises:
        DatasetUnavailableError: the files are missing and could not be downloaded; the message
            gives the command to fetch them on a connected machine.

    Example:
        >>> frogs = torchvision_dataset("cifar10", Path("data"), classes=["frog"])  # doctest: +SKIP
    """
    import torchvision  # imported here: only these two datasets need it

    name = name.lower()
    constructors = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}
    if name not in constructors:
        raise ValueError(f"unknown torchvision dataset {name!r}; valid: {', '.join(constructors)}")
    class_names = MNIST_CLASSES if name == "mnist" else CIFAR10_CLASSES
    if classes is not None:
        unknown = [c for c in classes if c not in class_names]
        if unknown or not classes:
            raise ValueError(f"unknown {name} class(es) {unknown or classes}; valid names: {', '.join(class_names)}")
    native_channels = 1 if name == "mnist" else 3
    mode = _pil_mode(channels or native_channels)
    transform = functools.partial(_to_unit_with_mode, size=image_size, mode=mode)

    root = Path(root)
    try:
        dataset = constructors[name](str(root), train=train, download=download, transform=transform)
    except Exception as err:
        what = "could not be downloaded" if download else "is not on disk and download=False"
        message = (
            f"{name} {what} into {root} ({type(err).__name__}: {str(err).strip()}). "
            f"On a machine with internet run: {_fetch_command(name, root, train)} "
            f"and copy the '{root}' folder here."
        )
        if name == "mnist":
            message += (
                " Or use --data mnist-offline: 5,000 real MNIST digits bundled with the package, no network needed."
            )
        raise DatasetUnavailableError(message) from err

    targets = torch.as_tensor(dataset.targets)
    keep = torch.ones(len(targets), dtype=torch.bool) if classes is None else \
        torch.isin(targets, torch.tensor([class_names.index(c) for c in classes]))
    native = torch.as_tensor(dataset.data)  # MNIST (N, 28, 28), CIFAR-10 (N, 32, 32, 3): uint8
    if image_size in (None, native.shape[1]) and native.dtype == torch.uint8:
        # at its own size the whole dataset is one uint8 tensor: no PIL per item, and it can live on the GPU
        images = native[keep] if native.ndim == 3 else native[keep].permute(0, 3, 1, 2)
        return TensorImageDataset(images, targets[keep], native.shape[1], channels or native_channels)
    return dataset if classes is None else Subset(dataset, torch.nonzero(keep).flatten().tolist())


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------


def _unknown_data_error(data: str, task: str) -> ValueError:
    valid = KEYWORDS[task]
    other_task = next((t for t, words in KEYWORDS.items() if data in words), None)
    if other_task is not None:
        return ValueError(
            f"dataset {data!r} is for {other_task!r} models, not {task!r}; "
            f"valid keywords for {task!r}: {', '.join(valid)}, or a folder path"
        )
    guess = difflib.get_close_matches(data, valid, n=1)
    hint = f" Did you mean {guess[0]!r}?" if guess else ""
    layouts = {
        "noise": "a folder of images",
        "paired": "a folder with train/ (pix2pix A|B images) or with A/ and B/",
        "unpaired": "a folder with trainA/ and trainB/",
    }
    return ValueError(
        f"unknown dataset {data!r}: not a keyword and no folder {Path(data).resolve()}.{hint} "
        f"Valid keywords for {task!r}: {', '.join(valid)}; or a path to {layouts[task]}."
    )


def open_dataset(
    data: str,
    *,
    task: str,
    image_size: int,
    channels: int,
    classes: list[str] | None = None,
    phase: str = "train",
    root: Path = Path("data"),
    fit: int = 0,
) -> Dataset:
    """The dataset a trainer asked for, by keyword or folder path.

    Args:
        data: a keyword, or a folder path. Keywords win over same-named folders.
            noise: "mnist-offline" (vendored MNIST "train" split), "mnist", "cifar10" (torchvision);
            paired: "sketch2digit"; unpaired: "digits2mnist".
            Paths: noise -> any image folder; paired -> pix2pix aligned (root/<phase>/) or A/ + B/;
            unpaired -> CycleGAN root/<phase>A/ + root/<phase>B/.
        task: "noise" (items (image, label)), "paired" or "unpaired" (items (A, B)).
        image_size: output side in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        classes: class names to keep (mnist-offline / mnist: "0".."9"; cifar10: e.g. ["frog"]).
        phase: "train", "val" or "test" for folder layouts and torchvision; for sketch2digit
            anything but "train" gives the held-out digits; digits2mnist has one split.
        root: where torchvision datasets are downloaded to / read from.
        fit: digits2mnist: frame the UCI digits MNIST-style with this long side (the model's ``Preprocess.fit``).

    Example:
        >>> ds = open_dataset("sketch2digit", task="paired", image_size=28, channels=1)
        >>> [t.shape for t in ds[0]]
        [torch.Size([1, 28, 28]), torch.Size([1, 28, 28])]
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    _pil_mode(channels)

    if data in KEYWORDS[task]:
        if classes is not None and data not in ("mnist-offline", "mnist", "cifar10"):
            raise ValueError(f"classes= is not supported for {data!r}; it works with mnist-offline, mnist and cifar10")
        if data == "mnist-offline":
            images, labels = mnist_offline("train")
            if classes is not None:
                unknown = [c for c in classes if c not in MNIST_CLASSES]
                if unknown or not classes:
                    raise ValueError(
                        f"unknown MNIST class(es) {unknown or classes}; valid names: {', '.join(MNIST_CLASSES)}"
                    )
                keep = torch.isin(labels, torch.tensor([int(c) for c in classes]))
                images, labels = images[keep], labels[keep]
            return TensorImageDataset(images, labels, image_size, channels)
        if data in ("mnist", "cifar10"):
            return torchvision_dataset(
                data, Path(root), train=(phase == "train"), classes=classes,
                image_size=image_size, channels=channels,
            )
        if data == "sketch2digit":
            return Sketch2DigitDataset("train" if phase == "train" else "heldout", size=image_size, channels=channels)
        if data == "digits2mnist":
            return Digits2MnistDataset(size=image_size, channels=channels, fit=fit)

    path = Path(data)
    if data in (w for words in KEYWORDS.values() for w in words) or not path.is_dir():
        raise _unknown_data_error(data, task)
    if classes is not None:
        raise ValueError(f"classes= only works with mnist-offline, mnist and cifar10, not with the folder {path}")
    if task == "noise":
        return ImageFolderDataset(path, image_size, channels)
    if task == "unpaired":
        return UnalignedDataset(path, phase, image_size, channels)
    if (path / phase).is_dir():
        return AlignedDataset(path, phase, image_size, channels)
    if (path / "A").is_dir() and (path / "B").is_dir():
        return PairedFoldersDataset(path, image_size, channels)
    raise ValueError(
        f"{path} is not a paired dataset: expected either the pix2pix aligned layout "
        f"({path}/{phase}/*.jpg with A|B side by side) or two folders {path}/A/ and {path}/B/ with matching names"
    )
