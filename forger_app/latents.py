"""The Sample tab's latent as a file: the latent of the image shown, downloaded as ``python -m gan project``
writes one (a .npy of the latent's numbers, and the model and digit in a .json beside it), so that
``python -m gan sample MODEL --latent FILE.npy`` draws the same image; and such a file uploaded back, checked
before it is read (size, then the .npy header's dtype and shape, never unpickled, then the numbers).

The latent is the one the generator is given: the seed's (or the user's own) latent scaled by the truncation,
plus the slider edits. Uploaded back, it is drawn with truncation 1 and the sliders at 0: the same image."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np

import gan
from forger_app import downloads, handlers, sampling, sessions, uploads, zerogpu
from forger_app.sampling import MAX_SLIDERS
from forger_app.sessions import Session
from gan.registry import ModelSpec

MAX_NPY_BYTES = 64 * 1024  # a latent .npy: a header and at most 16,000 float32 numbers (the largest model takes 100)
MAX_JSON_BYTES = 16 * 1024  # the .json beside it: a few fields
MAX_ABS = 1000.0  # a latent's numbers: far beyond any seed's (|z| < 15 at truncation 2) or a projection's
WHAT = ("upload a latent .npy (as ⬇ Latent or `python -m gan project` writes it), with the .json beside it for "
        "its digit")


def current_latent(spec: ModelSpec, seed: int, *, truncation: float, edits: Sequence[float],
                   weights: Any = None, z: Sequence[float] | None = None) -> np.ndarray:
    """The latent ``gan.sample`` gives the generator for the Sample tab's settings, (latent_dim,) float32: the
    seed's (or ``z``, the user's own) scaled by ``truncation``, plus the slider edits along
    ``gan.slider_directions``. The same arithmetic as ``sampling.render_sample`` then ``gan.sample``, in the same
    order, so the numbers are the ones the image was drawn from."""
    import torch  # (the page is built without torch)

    from gan import latent

    if z is None:
        base = latent.seeded_latents(int(seed), 1, spec.latent_dim, float(truncation))
    else:
        base = torch.as_tensor(np.asarray(z, dtype=np.float32)[None] * float(truncation))
    edits = [float(e) for e in edits][: len(sampling.slider_labels(spec))]
    if any(edits):
        dirs = zerogpu.on_gpu(gan.slider_directions, spec.name, weights=weights)
        e = torch.as_tensor(edits, dtype=torch.float32)[: dirs.shape[0]]
        base = base + e @ dirs[: e.shape[0]]
    return base[0].numpy().astype(np.float32)


def save_latent(spec: ModelSpec, z: np.ndarray, label: int | None, seed: int) -> list[str]:
    """Write the latent as ``python -m gan project`` does: NAME.npy, and NAME.json beside it with the model and
    the label (null for a model without classes). Returns the two paths, for a download."""
    folder = downloads.output_folder("forger-latent-")
    stem = f"{spec.name}-seed{seed}-latent"
    npy, meta = folder / f"{stem}.npy", folder / f"{stem}.json"
    np.save(npy, np.asarray(z, dtype=np.float32))
    meta.write_text(json.dumps({"model": spec.name, "label": label, "seed": seed}, indent=2))
    return [str(npy), str(meta)]


def _npy_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy's header (versions 1 and 2: what numpy.save writes for numbers)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(version)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f, max_header_size=1024)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError):  # no magic, a garbled or truncated header
        raise ValueError(f"not a .npy latent (as numpy.save writes one): {WHAT}") from None
    return tuple(shape), dtype


def _read_npy(path: str, dim: int) -> np.ndarray:
    """The latent in an uploaded .npy, (dim,) float32. Its header is read first, so that no array is made of a
    size or kind the file only claims, and it is never unpickled."""
    size = os.path.getsize(path)
    if size > MAX_NPY_BYTES:
        raise ValueError(f"the .npy holds {size:,} bytes; a latent's takes at most {MAX_NPY_BYTES:,}")
    with open(path, "rb") as f:
        shape, dtype = _npy_header(f)
        if dtype.hasobject or dtype.kind not in "fiu" or shape not in ((dim,), (1, dim)):
            raise ValueError(f"the .npy must hold {dim} numbers for this model (shaped ({dim},) or (1, {dim})), "
                             f"not {'objects' if dtype.hasobject else dtype.name} shaped {shape}")
        f.seek(0)
        try:
            z = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            z = None
    if z is None or z.shape != shape:  # the file ends before its numbers do
        raise ValueError(f"the .npy ends before its {dim} numbers do")
    z = z.reshape(dim).astype(np.float64)
    if not np.isfinite(z).all() or np.abs(z).max() > MAX_ABS:
        raise ValueError(f"the latent's numbers must be finite and at most {MAX_ABS:g} in size")
    return z.astype(np.float32)


def _read_meta(path: str, spec: ModelSpec) -> tuple[int | None, list[str]]:
    """(the label, notes) of an uploaded .json as ``python -m gan project`` writes it."""
    size = os.path.getsize(path)
    if size > MAX_JSON_BYTES:
        raise ValueError(f"the .json holds {size:,} bytes; a latent's takes at most {MAX_JSON_BYTES:,}")
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ValueError("the .json is not readable JSON: upload the one written beside the .npy") from None
    if not isinstance(meta, dict):
        raise ValueError("the .json must hold an object with the latent's model and label")
    notes = []
    model = meta.get("model")
    if model != spec.name and isinstance(model, str):
        known = model if model in gan.list_models() else "another model"
        notes.append(f"This latent was saved from **{known}**; it is drawn here by **{spec.name}**.")
    label = meta.get("label")
    if not spec.conditional:
        return None, notes
    k = len(spec.classes)
    if label is None:
        return None, [*notes, "The .json names no digit: it is drawn as the digit picked."]
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < k:
        raise ValueError(f"the .json's label must be a whole number from 0 to {k - 1}")
    return label, notes


def read_latent(files: Any, spec: ModelSpec) -> tuple[np.ndarray, int | None, list[str]]:
    """(latent, label or None, notes) of an upload: one .npy, and the .json beside it if given. Only files in
    Gradio's upload folder are read; sizes are checked before anything is read."""
    values = files if isinstance(files, (list, tuple)) else [] if files is None else [files]
    paths = [uploads.uploaded_file(v) for v in values]
    npys = [p for p in paths if p.lower().endswith(".npy")]
    metas = [p for p in paths if p.lower().endswith(".json")]
    if len(npys) != 1 or len(metas) > 1 or len(paths) != len(npys) + len(metas):
        raise ValueError(WHAT)
    z = _read_npy(npys[0], spec.latent_dim)
    label, notes = _read_meta(metas[0], spec) if metas else (None, [])
    if not metas and spec.conditional:
        notes.append("No .json came with the .npy: it is drawn as the digit picked.")
    return z, label, notes


def _session(state: Any) -> Session | None:
    return state if isinstance(state, Session) else None


@handlers.named_sliders
def latent_download(model_key: str, seed: float, truncation: float, digit: Any, *sliders_and_state: Any) -> tuple:
    """The latent of the image shown, as a .npy and its .json: (the two files, status; the status is left as
    it is unless something failed)."""
    edits = [float(e or 0) for e in sliders_and_state[:MAX_SLIDERS]]
    rest = sliders_and_state[MAX_SLIDERS:]
    session, start = _session(rest[0] if rest else None), rest[1] if len(rest) > 1 else None
    name = None
    try:
        spec, weights = sessions.resolve_spec(model_key, session, "noise")
        name = spec.name
        seed = gan.checks.number("the seed", 0 if seed in (None, "") else seed, 0, handlers.MAX_SEED, integer=True)
        own = sampling.start_for(start, model_key, seed)
        z = current_latent(spec, seed, truncation=float(truncation), edits=edits, weights=weights,
                           z=None if own is None else own.z)
        label = (0 if digit in (None, "") else int(digit)) if spec.conditional else None
        return save_latent(spec, z, label, seed), gr.skip()
    except Exception as e:  # noqa: BLE001 - every error becomes a message
        return None, handlers._fail(e, name)


def latent_upload(files: Any, model_key: str, seed: float, digit: Any, state: Any = None) -> tuple:
    """An uploaded latent (.npy, and its .json) becomes the latent the sliders edit, drawn with truncation 1 and
    the sliders at 0 (the numbers are the generator's own input): (start, truncation, digit, *sliders, image,
    PNG path, status)."""
    keep = (gr.skip(), gr.skip(), gr.skip(), *[gr.skip()] * MAX_SLIDERS, gr.skip(), gr.skip())
    name = None
    try:
        spec, _ = sessions.resolve_spec(model_key, _session(state), "noise")
        name = spec.name
        seed = gan.checks.number("the seed", 0 if seed in (None, "") else seed, 0, handlers.MAX_SEED, integer=True)
        z, label, notes = read_latent(files, spec)
    except Exception as e:  # noqa: BLE001
        return (*keep, handlers._fail(e, name))
    start = sampling.Start(model_key, seed, tuple(float(v) for v in z), label, None)
    if label is not None:
        digit = label
    image, png, status = handlers.sample_image(model_key, seed, 1.0, digit, *[0.0] * MAX_SLIDERS, state, start)
    if image is None:  # the model failed: its message, and the page as it was
        return (*keep, status)
    return (start, 1.0, gr.update(value=label) if label is not None else gr.skip(), *[0.0] * MAX_SLIDERS, image,
            png, "\n\n".join([status, *notes]))
