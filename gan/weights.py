"""Weights: our folder format, Hub and URL downloads, and foreign checkpoints.

Our format is one folder per model, as diffusers writes it:

    model.safetensors   the generator's state_dict (fp16 or fp32)
    config.json         {"model": name, "family": ..., "generator": {constructor kwargs}, ...}
    README.md           the model card

Foreign checkpoints (official CycleGAN / pix2pix ``.pth`` files, DCGAN-tutorial and
``gan-face-generate`` checkpoints) are plain PyTorch state dicts, read with
``torch.load(weights_only=True)`` only, so a checkpoint can never run code.

A model's sources (``registry.ModelSpec.sources``) are tried in order; every failure
is kept, and if none works ``WeightsUnavailableError`` lists them all with what to do.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from gan import checks
from gan.registry import ModelSpec, Source
from gan.errors import CheckpointMismatchError, WeightsUnavailableError  # noqa: F401 - also gan.weights.*

if TYPE_CHECKING:  # torch is imported where weights are read or written, so that naming a source or asking whether
    import torch   # it is cached (the app's model picker, as its page is built) does not import it
    from torch import nn

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _weights_dir() -> Path:
    """FORGER_WEIGHTS_DIR, else the checkout's weights/ (a clone, or ``pip install -e .``), else ./weights
    (an installed package run from a folder that holds the weights)."""
    if os.environ.get("FORGER_WEIGHTS_DIR"):
        return Path(os.environ["FORGER_WEIGHTS_DIR"])
    checkout = REPO_ROOT / "weights"
    return checkout if checkout.is_dir() else Path.cwd() / "weights"


WEIGHTS_DIR = _weights_dir()
FORMAT_VERSION = 1


def cache_dir() -> Path:
    """Where downloads from plain URLs are cached (Hub files use the Hub's own cache, HF_HOME)."""
    return Path(os.environ.get("FORGER_CACHE", Path.home() / ".cache" / "forger"))


def read_cache_json(name: str) -> dict[str, Any]:
    """A JSON table of measured choices in the cache folder (``serving.json``, ``training.json``); {} if none."""
    try:
        data = json.loads((cache_dir() / name).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_cache_json(name: str, key: str, entry: dict[str, Any]) -> None:
    """Set one entry of a cache table; a cache that cannot be written only costs a measurement next time."""
    path = cache_dir() / name
    data = read_cache_json(name)
    data[key] = entry
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True)))
    except OSError as e:
        log.info("could not save %s: %s", path.name, e)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE, as huggingface_hub read it at import (or as set since)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


@dataclass
class Loaded:
    """A resolved checkpoint: the generator state and the config it was saved with (ours only)."""

    state: dict[str, torch.Tensor]
    config: dict[str, Any]
    origin: str  # human-readable: where it came from


# ---------------------------------------------------------------------------- writing


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


DISCRIMINATOR_FILE = "discriminator.safetensors"


def discriminator_file(name: str, weights: str | Path | None = None) -> Path:
    """Where a model's trained discriminator lives: in ``weights`` (a folder), else in ``WEIGHTS_DIR/name``."""
    return (Path(weights) if weights is not None else WEIGHTS_DIR / name) / DISCRIMINATOR_FILE


def save_pretrained(model: nn.Module, folder: str | Path, *, name: str, family: str, generator: dict[str, Any],
                    card: str = "", extra: dict[str, Any] | None = None, dtype: torch.dtype | None = None,
                    discriminator: nn.Module | None = None) -> Path:
    """Write ``model`` to ``folder`` in our format (model.safetensors, config.json, README.md).

    Args:
        model: the generator.
        folder: the output folder; created if needed.
        name: the registry name the weights belong to.
        family: the model family.
        generator: the generator's constructor kwargs.
        card: the model card (README.md) text.
        extra: more facts for config.json (training data, steps, metrics).
        dtype: storage dtype for floating-point tensors (default float32; float16 halves the size).
        discriminator: also save it as discriminator.safetensors.

    Example:
        >>> save_pretrained(gen, "out/mnist-dcgan", name="mnist-dcgan", family="cdcgan", generator=spec.generator)
    """
    import torch
    from safetensors.torch import save_file

    dtype = dtype or torch.float32
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def tensors(m: nn.Module) -> dict[str, torch.Tensor]:
        return {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
                for k, v in m.state_dict().items()}

    atomic_write(folder / "model.safetensors", lambda p: save_file(tensors(model), str(p)))
    if discriminator is not None:
        atomic_write(folder / "discriminator.safetensors", lambda p: save_file(tensors(discriminator), str(p)))
    config = {"model": name, "family": family, "generator": generator, "format_version": FORMAT_VERSION,
              "dtype": str(dtype).removeprefix("torch."), **(extra or {})}
    atomic_write(folder / "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    if card:
        atomic_write(folder / "README.md", lambda p: p.write_text(card))
    return folder


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
                revision: str | None = None) -> str:
    """Upload a weights folder to the Hub; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                      commit_message="Upload Forger weights")
    return str(url)


# ---------------------------------------------------------------------------- reading


def _same(value: Any, reference: Any) -> bool:
    """A config value equals the registry's (a JSON list equals the registry's tuple)."""
    if isinstance(value, (list, tuple)) and isinstance(reference, (list, tuple)):
        return list(value) == list(reference)
    return type(value) is type(reference) and value == reference


def check_kwargs(cls: type, kwargs: Any, reference: dict[str, Any], what: str) -> dict[str, Any]:
    """Constructor arguments read from a weights file, checked against the registry's before anything is built.

    Only arguments ``cls`` takes, with the registry's (or the default's) types; whole numbers at most 4x
    the registry's or default value (at least 16), and at most ``checks.MAX_PARAMETERS`` parameters in the
    model, counted on the meta device (no memory) unless every argument is the registry's. Raises
    CheckpointMismatchError otherwise."""
    import torch

    if not isinstance(kwargs, dict):
        raise CheckpointMismatchError(f"{what}: the config's model arguments must be a JSON object")
    params = inspect.signature(cls).parameters
    for key, value in kwargs.items():
        if key not in params:
            raise CheckpointMismatchError(f"{what}: the config has an unknown model argument {str(key)[:40]!r}")
        ref = reference.get(key, params[key].default)
        values = value if isinstance(value, (list, tuple)) else [value]
        refs = ref if isinstance(ref, (list, tuple)) else [ref]
        if isinstance(value, (list, tuple)) != isinstance(ref, (list, tuple)) or len(values) > 16:
            raise CheckpointMismatchError(f"{what}: model argument {key!r} has the wrong form ({str(value)[:40]})")
        for v in values:
            kind = type(refs[0]) if refs else int
            if type(v) is not kind and not (kind is float and type(v) is int):
                raise CheckpointMismatchError(f"{what}: model argument {key!r} must be {kind.__name__}, "
                                              f"got {str(v)[:40]!r}")
            if kind is int and not 0 <= v <= max(4 * max(refs), 16):
                raise CheckpointMismatchError(f"{what}: model argument {key}={v} is out of range "
                                              f"(the registry's is {ref})")
    if all(_same(value, reference.get(key, params[key].default)) for key, value in kwargs.items()):
        # the registry's own sizes: nothing to count (and building on the meta device is not free: the first
        # normal_ there loads torch's Python decompositions, 1.1 s, which a first image waited for)
        return kwargs
    try:
        with torch.device("meta"):
            probe = cls(**kwargs)
    except Exception as e:
        raise CheckpointMismatchError(f"{what}: the config's model arguments do not build a model "
                                      f"({type(e).__name__})") from None
    count = sum(p.numel() for p in probe.parameters())
    if count > checks.MAX_PARAMETERS:
        raise CheckpointMismatchError(f"{what}: the config describes {count:,} parameters; at most "
                                      f"{checks.MAX_PARAMETERS:,}")
    return kwargs


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        if path.stat().st_size > 1 << 20:
            raise CheckpointMismatchError(f"{folder.name}/config.json is larger than 1 MiB: not a Forger config")
        config = checks.load_json(path.read_text(), f"{folder.name}/config.json")
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} has no config.json: not a Forger weights folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointMismatchError(f"{folder.name}/config.json is not valid JSON ({e})") from None
    except ValueError as e:  # nested too deeply
        raise CheckpointMismatchError(str(e)) from None
    if not isinstance(config, dict):
        raise CheckpointMismatchError(f"{folder.name}/config.json must hold a JSON object")
    return config


def read_pth(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a foreign PyTorch checkpoint safely (``weights_only=True``) and unwrap it to a flat state dict.

    Accepts a bare state dict, or a dict holding one under ``netG_state_dict``
    (gan-face-generate), ``state_dict``, ``generator`` or ``model``. A ``module.``
    prefix left by DataParallel is removed.
    """
    import torch

    _check_size(Path(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated zips, disallowed globals
        # PyTorch's own message suggests weights_only=False, which would run the file's code: never relay it
        raise CheckpointMismatchError(
            f"cannot read checkpoint {Path(path).name}: it is damaged, or it holds more than tensors "
            f"({type(e).__name__}). Forger reads checkpoints with weights_only=True only, so that a file can never "
            f"run code; re-save it as a plain state dict (torch.save(model.state_dict(), path)) or as safetensors"
        ) from None
    for key in ("netG_state_dict", "state_dict", "generator", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatchError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _check_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise FileNotFoundError(f"no weights at {path.name} ({type(e).__name__})") from None
    if size > checks.MAX_WEIGHTS_BYTES:
        raise CheckpointMismatchError(f"{path.name} is {size / 2**30:.1f} GiB; weights files may be at most "
                                      f"{checks.MAX_WEIGHTS_BYTES / 2**30:.0f} GiB")
    return size


SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                      "BOOL": 1}
MAX_HEADER_BYTES = 16 << 20
MAX_TENSORS = 10_000


def safetensors_header(path: Path) -> dict[str, Any]:
    """The header of a .safetensors file, checked (keys, dtypes, shapes, offsets, sizes) before any tensor is read."""
    size = _check_size(path)
    bad = f"{path.name} is not a valid safetensors file"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointMismatchError(f"{bad} (too short)")
        (length,) = struct.unpack("<Q", head)
        if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointMismatchError(f"{bad} (header of {length} bytes)")
        try:
            header = checks.load_json(f.read(length), "its header")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointMismatchError(f"{bad} (header is not JSON)") from None
        except ValueError as e:  # nested too deeply
            raise CheckpointMismatchError(f"{bad} ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointMismatchError(f"{bad} (header is not an object)")
    header.pop("__metadata__", None)
    if len(header) > MAX_TENSORS:
        raise CheckpointMismatchError(f"{bad} ({len(header)} tensors; at most {MAX_TENSORS})")
    data = size - 8 - length
    for key, info in header.items():
        ok = isinstance(info, dict) and info.get("dtype") in SAFETENSORS_DTYPES \
            and isinstance(info.get("shape"), list) and all(isinstance(d, int) and d >= 0 for d in info["shape"]) \
            and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2 \
            and all(isinstance(o, int) for o in info["data_offsets"])
        if not ok:
            raise CheckpointMismatchError(f"{bad} (entry {str(key)[:60]!r})")
        start, end = info["data_offsets"]
        expected = math.prod(info["shape"]) * SAFETENSORS_DTYPES[info["dtype"]]
        if not 0 <= start <= end <= data or end - start != expected:
            raise CheckpointMismatchError(f"{bad} (tensor {str(key)[:60]!r} does not fit the file)")
    return header


def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if path.suffix == ".safetensors":
        safetensors_header(path)
        try:
            return load_file(str(path))
        except Exception as e:
            raise CheckpointMismatchError(f"cannot read {path.name}: {type(e).__name__}") from None
    return read_pth(path)


def drop_instancenorm_stats(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the InstanceNorm running_mean / running_var / num_batches_tracked keys that PyTorch < 0.4
    saved, as the official loader's ``__patch_instance_norm_state_dict`` does."""
    from torch import nn

    norms = {name for name, m in model.named_modules()
             if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats}
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in state.items() if not (k.rpartition(".")[0] in norms and k.rpartition(".")[2] in stats)}


def load_state(model: nn.Module, state: dict[str, torch.Tensor], *, what: str) -> nn.Module:
    """Load ``state`` into ``model`` strictly (after the InstanceNorm fix), in the model's dtype.

    Raises CheckpointMismatchError naming missing and unexpected keys and shape mismatches.
    """
    import torch

    state = drop_instancenorm_stats(model, state)
    own = model.state_dict()
    for key, value in state.items():  # corrupt weights are refused, not served as black images
        if key in own and own[key].is_floating_point():
            if not value.is_floating_point():
                raise CheckpointMismatchError(f"checkpoint does not fit {what}; {key} holds {value.dtype} values, "
                                              f"not floating point: the file is damaged")
            if not torch.isfinite(value).all():
                raise CheckpointMismatchError(f"checkpoint does not fit {what}; {key} holds NaN or infinite values: "
                                              f"the weights are damaged (a diverged training run?)")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
        parts = [f"missing keys: {show(missing)}" if missing else "",
                 f"unexpected keys: {show(unexpected)}" if unexpected else "",
                 f"wrong shapes: {show(shapes)}" if shapes else ""]
        raise CheckpointMismatchError(f"checkpoint does not fit {what}; " + "; ".join(p for p in parts if p))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model


def read_weights(path: str | Path) -> Loaded:
    """Read weights from a local path: our folder, our .safetensors file, or a foreign .pth file."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / "model.safetensors").exists():
            raise FileNotFoundError(f"{path} has no model.safetensors: not a Forger weights folder")
        return Loaded(read_state_file(path / "model.safetensors"), read_config(path), str(path))
    if not path.exists():
        raise FileNotFoundError(f"no weights at {path}")
    if path.suffix == ".safetensors":
        config = read_config(path.parent) if (path.parent / "config.json").exists() else {}
        return Loaded(read_state_file(path), config, str(path))
    return Loaded(read_pth(path), {}, str(path))


REACH_TIMEOUT_S = 1.0  # how long finding out that a host cannot be reached may take
REACH_TTL_S = 30.0  # a host's reachability is remembered this long
_reach: dict[tuple[str, int], tuple[float, bool]] = {}
_reach_lock = threading.Lock()


def reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether ``url``'s host accepts a TCP connection within ``timeout`` (name lookup included).

    Offline, the Hub client retries for half a minute before giving up; this answers in at most
    ``timeout`` seconds, and the answer is remembered for REACH_TTL_S seconds."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    now = time.monotonic()
    with _reach_lock:
        hit = _reach.get((host, port))
    if hit is not None and now - hit[0] < REACH_TTL_S:
        return hit[1]
    result: list[bool] = []

    def connect() -> None:  # in a thread: name lookups have no timeout of their own
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    ok = bool(result and result[0])
    with _reach_lock:
        _reach[(host, port)] = (time.monotonic(), ok)
    return ok


def download_url(url: str, *, timeout: float = 30.0) -> Path:
    """Download ``url`` into the cache once (atomically); later calls return the cached file."""
    target = cache_dir() / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / url.rsplit("/", 1)[-1]
    if target.exists():
        return target
    if hub_offline():
        raise ConnectionError("offline mode (HF_HUB_OFFLINE=1) and not in the cache")
    if not reachable(url):
        raise ConnectionError(f"{urllib.parse.urlsplit(url).hostname} cannot be reached (offline?) and the file "
                              f"is not in the cache")

    def fetch(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f)

    log.info("downloading %s", url)
    atomic_write(target, fetch)
    return target


def fetch_source(spec: ModelSpec, source: Source) -> Loaded:
    """Get one source's weights, or raise with the reason."""
    if source.kind == "bundled":
        folder = WEIGHTS_DIR / source.location
        if not (folder / "model.safetensors").exists():
            raise FileNotFoundError("not present")
        return read_weights(folder)
    if source.kind == "hub":
        from huggingface_hub import constants, hf_hub_download

        # Unreachable Hub: the local cache only, at once, instead of the client's retries.
        local_only = not hub_offline() and not reachable(constants.ENDPOINT)

        def get(filename: str) -> Path:
            try:
                return Path(hf_hub_download(source.location, filename, revision=source.revision,
                                            repo_type=source.repo_type, local_files_only=local_only))
            except Exception:
                if local_only:
                    raise ConnectionError(f"{urllib.parse.urlsplit(constants.ENDPOINT).hostname} cannot be reached "
                                          f"(offline?) and the file is not in the cache") from None
                raise

        weights_file = get(source.filename)
        if source.format == "forger":
            config = read_config(get("config.json").parent)
            return Loaded(read_state_file(weights_file), config, source.describe())
        return Loaded(read_pth(weights_file), {}, source.describe())
    if source.kind == "url":
        return Loaded(read_pth(download_url(source.location)), {}, source.describe())
    raise ValueError(f"unknown source kind {source.kind!r}")


def is_cached(source: Source) -> bool:
    """Whether a source can be read without the network."""
    if source.kind == "bundled":
        return (WEIGHTS_DIR / source.location / "model.safetensors").exists()
    if source.kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(source.location, source.filename, revision=source.revision,
                                     repo_type=source.repo_type)
        return isinstance(hit, str)
    target = cache_dir() / "urls" / hashlib.sha256(source.location.encode()).hexdigest()[:16]
    return (target / source.location.rsplit("/", 1)[-1]).exists()


def _why(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def resolve(spec: ModelSpec) -> Loaded:
    """Try the spec's sources in order; the first that works wins."""
    failures: list[str] = []
    for source in spec.sources:
        try:
            loaded = fetch_source(spec, source)
            log.info("%s: weights from %s", spec.name, loaded.origin)
            return loaded
        except CheckpointMismatchError:
            raise
        except Exception as e:  # every other failure is reported together below
            failures.append(f"  - {source.describe()}: {_why(e)}")
    tried = "\n".join(failures) if failures else "  (this model has no weight sources)"
    offline = " (HF_HUB_OFFLINE=1 is set: unset it to download)" if hub_offline() else ""
    raise WeightsUnavailableError(
        f"no weights available for {spec.name!r}. Sources tried, in order:\n{tried}\n"
        f"What you can do:\n"
        f"  - connect to the internet and try again{offline}; downloads are cached after the first time;\n"
        f"  - for a private or gated Hub repo, log in (`hf auth login`) or set HF_TOKEN;\n"
        f"  - use a checkpoint you already have: gan.load_generator({spec.name!r}, weights='PATH') or\n"
        f"    python -m gan import {spec.name} PATH -o weights/{spec.name}\n"
        f"  - train it yourself: {spec.train_command()}"
    )


def import_checkpoint(spec: ModelSpec, checkpoint: str | Path, out: str | Path, *, card: str = "",
                      dtype: torch.dtype | None = None) -> Path:
    """Convert a foreign checkpoint into our format in ``out`` (checked against the architecture first)."""
    from gan.models import family_module

    model = family_module(spec.family).Generator(**spec.generator)
    load_state(model, read_pth(checkpoint), what=f"{spec.name} generator")
    card = card or (f"# {spec.name}\n\n{spec.description}\n\nConverted by `python -m gan import` from "
                    f"`{Path(checkpoint).name}` (sha256 {hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16]}).\n\n"
                    f"Licence: {spec.licence}\n")
    return save_pretrained(model, out, name=spec.name, family=spec.family, generator=spec.generator, card=card,
                           extra={"imported_from": Path(checkpoint).name}, dtype=dtype)


def build_generator(spec: ModelSpec, config: dict[str, Any] | None = None) -> nn.Module:
    """The generator of ``spec``, with a weights file's own constructor arguments checked first."""
    from gan.models import family_module

    cls = family_module(spec.family).Generator
    kwargs = (config or {}).get("generator")
    if kwargs is None:
        return cls(**spec.generator)
    return cls(**check_kwargs(cls, kwargs, spec.generator, f"{spec.name} config"))
