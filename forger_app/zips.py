"""Uploaded dataset zips: checked before anything is written (zip-slip, links, encryption, zip bombs, sizes)
and extracted under a quota that all sessions share."""
from __future__ import annotations

import re
import shutil
import stat
import threading
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from forger_app.messages import scrub_paths

MAX_ZIP_FILES = 20_000  # an uploaded dataset zip may hold at most this many entries
MAX_ZIP_BYTES = 256 << 20  # ... and at most this many bytes once extracted (256 MiB)
MAX_EXTRACTED_BYTES = 1 << 30  # all sessions' extracted datasets together (1 GiB)
MAX_ZIP_RATIO = 100  # an entry that inflates more than 100:1 is not image data (a zip bomb)
MIN_FREE_BYTES = 1 << 30  # extraction also leaves at least this much disk free
MAX_NAME_BYTES = 255  # one part of an extracted file's path (what Linux, macOS and Windows disks hold)


class UnsafeZipError(ValueError):
    """An uploaded zip that would write outside its folder, or is too large; nothing was extracted."""


def _bad_member_name(name: str) -> str | None:
    """Why a zip member name is unsafe, or None."""
    if not name or "\x00" in name:
        return "an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or PureWindowsPath(name).is_absolute():
        return "an absolute path"
    parts = re.split(r"[\\/]+", name)
    if ".." in parts:
        return "a '..' path component"
    return None


def _short(name: str, keep: int = 60) -> str:
    """A zip entry's name as a message shows it: at most ``keep`` characters."""
    return name if len(name) <= keep else name[: keep // 2] + "…" + name[-keep // 2:]


def check_zip(path: Path, *, max_files: int = MAX_ZIP_FILES, max_bytes: int = MAX_ZIP_BYTES) -> list[zipfile.ZipInfo]:
    """Inspect a zip without extracting anything; raise UnsafeZipError (a ValueError) if it is unsafe.

    Refused: not a zip; absolute names or '..' components (zip-slip); symbolic links; encrypted entries;
    names no disk can hold (a part over MAX_NAME_BYTES); more than ``max_files`` entries; more than
    ``max_bytes`` uncompressed; not enough free disk.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsafeZipError(f"not a readable zip file ({e})") from None
    with zf:
        members = zf.infolist()
    if len(members) > max_files:
        raise UnsafeZipError(f"the zip has {len(members)} entries; the limit is {max_files}")
    total = 0
    for m in members:
        why = _bad_member_name(m.filename)
        if why:
            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} has {why}")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} is a symbolic link")
        if m.flag_bits & 0x1:
            raise UnsafeZipError(f"refusing the zip: entry {_short(m.filename)!r} is encrypted; zip the images "
                                 f"again without a password")
        longest = max(re.split(r"[\\/]+", m.filename), key=lambda part: len(part.encode()))
        if len(longest.encode()) > MAX_NAME_BYTES:
            raise UnsafeZipError(f"refusing the zip: a name in entry {_short(m.filename)!r} is too long for a "
                                 f"disk ({len(longest.encode())} bytes; at most {MAX_NAME_BYTES})")
        if m.file_size > (1 << 20) and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} inflates "
                                 f"{m.file_size / max(m.compress_size, 1):.0f}:1, which is not image data")
        total += m.file_size
    if total > max_bytes:
        raise UnsafeZipError(f"the zip would extract to {total / 2**20:.0f} MiB; the limit is "
                             f"{max_bytes / 2**20:.0f} MiB")
    return members


_extracted: dict[Path, int] = {}  # extracted dataset folder -> the bytes it may hold
_extracted_lock = threading.Lock()


def _reserve_extracted(target: Path, size: int) -> None:
    """Count ``size`` bytes against the quota of all sessions' extracted data, or refuse."""
    with _extracted_lock:
        used = sum(n for p, n in _extracted.items() if p != target)
        if used + size > MAX_EXTRACTED_BYTES:
            raise UnsafeZipError(f"the server holds too many uploaded datasets right now "
                                 f"({used / 2**20:.0f} MiB); try again later or upload a smaller zip")
        _extracted[target] = size


def release_extracted(target: Path) -> None:
    """Delete an extracted dataset folder and return its bytes to the quota."""
    shutil.rmtree(target, ignore_errors=True)
    with _extracted_lock:
        _extracted.pop(target, None)


def safe_extract_zip(path: Path, target: Path, *, max_files: int = MAX_ZIP_FILES,
                     max_bytes: int = MAX_ZIP_BYTES, min_free: int = MIN_FREE_BYTES) -> Path:
    """Extract a dataset zip into ``target`` after ``check_zip`` approved it; returns the data folder
    (the single top folder when the zip has one).

    Every member is written under ``target`` (checked again after resolving), each is copied with
    a byte counter so a member that inflates past its declared size is stopped, and the total is
    capped by ``max_bytes``.
    """
    path, target = Path(path), Path(target)
    members = check_zip(path, max_files=max_files, max_bytes=max_bytes)
    declared = sum(m.file_size for m in members)
    target.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target).free
    if free - declared < min_free:
        raise UnsafeZipError(f"not enough free disk to extract {declared / 2**20:.0f} MiB")
    _reserve_extracted(target, declared)
    root = target.resolve()
    written = 0
    entry = None
    try:
        with zipfile.ZipFile(path) as zf:
            for m in members:
                entry = m.filename
                dest = (root / PurePosixPath(m.filename.replace("\\", "/"))).resolve()
                if dest != root and root not in dest.parents:
                    raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} points outside the folder")
                if m.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(dest, "wb") as out:
                    left = m.file_size
                    while chunk := src.read(1 << 20):
                        left -= len(chunk)
                        written += len(chunk)
                        if left < 0 or written > max_bytes:
                            raise UnsafeZipError(f"refusing the zip: entry {m.filename!r} inflates past its "
                                                 f"declared size")
                        out.write(chunk)
    except UnsafeZipError:
        release_extracted(target)
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # corrupt data, bad CRC, a full disk
        release_extracted(target)
        # the reason without the file name the OS adds (a server path): "File exists", "No space left on device"
        why = e.strerror if isinstance(e, OSError) and e.strerror else scrub_paths(str(e)) or type(e).__name__
        where = f"{_short(entry)!r} from the zip" if entry else "the zip"
        raise UnsafeZipError(f"could not extract {where}: {why}") from None
    entries = [p for p in target.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target
