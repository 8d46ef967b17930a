"""Export a generator to ONNX or TorchScript, checked against PyTorch.

Every family exports. Noise->image models take latents (and, if conditional, class indices) with a
dynamic batch; translators take images with a dynamic batch, height and width where the network allows
(a CycleGAN: any multiple of 4; a U-Net: a multiple of 2**num_downs, 256 for the official models).
A Pix2Pix exports in 'deterministic' mode (image statistics, no dropout; what ``gan.translate`` serves)
or 'eval' mode (running statistics, the official --eval).

ONNX export uses PyTorch's TorchScript-based exporter (``dynamo=False``): it needs only the ``onnx``
package, and its graphs run in onnxruntime with the dynamic axes asked for. ``verify`` runs the file in
onnxruntime (ONNX) or TorchScript at a second, non-square size and compares with the PyTorch module.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gan.models import pix2pix
from gan.registry import ModelSpec

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
OPSET = 17


@dataclass(frozen=True)
class Signature:
    """What an exported generator takes: names, an example at export time and one at check time."""

    input_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    example: tuple[torch.Tensor, ...]
    check: tuple[torch.Tensor, ...]  # another batch (and another, non-square size where the network allows)


def _multiple(spec: ModelSpec) -> int:
    """The side an image input must be a multiple of: 4 for a ResNet CycleGAN, 2**num_downs for a U-Net."""
    if spec.family == "pix2pix":
        return 2 ** spec.generator.get("num_downs", 8)
    return 2 ** spec.generator.get("n_downsampling", 2)


def signature(spec: ModelSpec) -> Signature:
    """The inputs of ``spec``'s generator, with a dynamic batch and, for translators, dynamic height and width."""
    g = torch.Generator().manual_seed(0)
    if spec.task == "noise":
        def latents(n: int) -> tuple[torch.Tensor, ...]:
            z = torch.randn(n, spec.latent_dim, generator=g)
            return (z, torch.arange(n) % len(spec.classes)) if spec.conditional else (z,)
        names = ("z", "labels") if spec.conditional else ("z",)
        return Signature(names, {n: {0: "batch"} for n in (*names, "images")}, latents(2), latents(3))
    m = _multiple(spec)
    side = max(spec.preprocess.size, m)
    c = spec.preprocess.channels

    def image(n: int, h: int, w: int) -> torch.Tensor:
        return torch.rand(n, c, h, w, generator=g) * 2 - 1
    axes = {0: "batch", 2: "height", 3: "width"}
    # the check: another batch, and a non-square size of multiples of m (wider than tall)
    return Signature(("image",), {"image": axes, "images": axes}, (image(1, side, side),),
                     (image(2, side, side + 2 * m if spec.family == "cyclegan" else side + m),))


def prepare(model: nn.Module, spec: ModelSpec, mode: str = "deterministic") -> nn.Module:
    """The module to export: ``model`` in eval mode, a Pix2Pix in ``mode`` ('deterministic' or 'eval')."""
    if spec.family == "pix2pix":
        if mode not in ("deterministic", "eval"):
            raise ValueError(f"a Pix2Pix exports in mode 'deterministic' or 'eval' (mode 'paper' draws random "
                             f"dropout masks), got {mode!r}")
        return pix2pix.with_mode(model, mode)
    if mode != "deterministic":
        raise ValueError(f"{spec.name!r} has one inference behaviour; --mode applies to Pix2Pix models")
    return model.eval()


def _onnx_needed() -> None:
    try:
        import onnx  # noqa: F401
    except ModuleNotFoundError:
        raise RuntimeError("ONNX export needs the onnx package (and onnxruntime to check the file): "
                           "pip install onnx onnxruntime") from None


def export(model: nn.Module, spec: ModelSpec, path: str | Path, fmt: str = "onnx", *, mode: str = "deterministic",
           verify: bool = True) -> tuple[Path, float | None]:
    """Write ``model`` (the generator of ``spec``) to ``path`` as ONNX or TorchScript.

    Returns (path, the largest absolute difference from PyTorch fp32 at the check inputs, or None when
    ``verify`` is False or onnxruntime is missing)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = prepare(model.float().cpu(), spec, mode)
    sig = signature(spec)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated upstream; it is what works here
        if fmt == "onnx":
            _onnx_needed()
            torch.onnx.export(module, sig.example, str(path), input_names=list(sig.input_names),
                              output_names=["images"], dynamic_axes=sig.dynamic_axes, opset_version=OPSET,
                              dynamo=False, do_constant_folding=True)
        else:
            traced = torch.jit.trace(module, sig.example, check_trace=False)
            traced.save(str(path))
    if not verify:
        return path, None
    try:
        return path, max_difference(path, module, spec)
    except ModuleNotFoundError:
        log.warning("onnxruntime is not installed: %s was written but not checked", path.name)
        return path, None


def run_exported(path: str | Path, *inputs: torch.Tensor) -> np.ndarray:
    """Run an exported file (ONNX in onnxruntime, TorchScript in torch.jit) on ``inputs``."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
        return session.run(None, feed)[0]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream, and works in torch 2.14
        return torch.jit.load(str(path)).eval()(*inputs).numpy()


def max_difference(path: str | Path, module: nn.Module, spec: ModelSpec) -> float:
    """The largest absolute difference between the exported file and ``module`` on both check inputs."""
    sig = signature(spec)
    worst = 0.0
    for inputs in (sig.example, sig.check):
        with torch.no_grad():
            want = module(*inputs).numpy()
        got = run_exported(path, *inputs)
        if got.shape != want.shape:
            raise RuntimeError(f"the exported model gives shape {got.shape}, PyTorch {want.shape}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst
