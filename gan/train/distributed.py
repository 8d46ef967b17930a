"""Several processes that train as one: N processes with batch b each give the losses and weights of one
process with batch N * b, up to float rounding (tests/test_distributed.py checks it on the CPU with gloo).

Data parallelism (DistributedDataParallel) averages the gradients, which is exact for a loss that is a mean
over images. Everything else that looks across the batch must see the global batch, not this process's part:

- BatchNorm: ``GlobalBatchNorm`` takes the mean and variance over the global batch (a differentiable
  all-reduce of per-channel sums), and updates the running statistics as one process would.
- Random draws: every process draws for the global batch from the same seeded generator and keeps its
  own slice (``Draws`` for latents, labels, augmentation; ``GlobalDropout`` for dropout masks).
- Batch-wise features (minibatch std, mode-seeking pairs) are defined on consecutive images, so that each
  process's part of the batch holds whole groups (see ``gan.models.cdcgan.minibatch_std``).
- Nonlinear functions of a batch mean (the mode-seeking term) and the reported losses: ``process_mean``.

With one process none of this runs: the draws, and so every result, are the same as before.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum over processes, differentiable: its backward sums the gradients of every process."""
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(x)


def process_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over processes (elementwise, differentiable); ``x`` itself with one process."""
    world = _world()
    return x if world == 1 else _all_reduce_sum(x) / world


def gather(x: torch.Tensor | None) -> torch.Tensor | None:
    """Every process's ``x`` (B, ...) concatenated in rank order (the global batch), not differentiable."""
    world = _world()
    if x is None or world == 1:
        return x
    import torch.distributed as dist

    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def own_part(x: torch.Tensor | None) -> torch.Tensor | None:
    """This process's slice of a global batch (B * world, ...) -> (B, ...)."""
    world = _world()
    if x is None or world == 1:
        return x
    n = len(x) // world
    return x.narrow(0, _rank() * n, n)


@dataclass
class Draws:
    """Random draws for the global batch, sliced to this process's part.

    ``draws(torch.randn, size=(n, 100))`` is ``torch.randn((n * world, 100), generator=...)[rank * n:(rank + 1) * n]``:
    every process holds the same generator state and draws the whole global batch, so process r gets exactly
    the values that one process with the global batch would give to images r * n ... (r + 1) * n - 1. ``dim``
    is where the batch is in ``size``. The draws are made on the generator's device (on CUDA no host copy);
    on the CPU with one process they are the plain ``fn(*args, size, generator=...)`` stream.
    """

    generator: torch.Generator
    rank: int = 0
    world: int = 1

    def __call__(self, fn: Callable[..., torch.Tensor], *args: int, size: tuple[int, ...], dim: int = 0
                 ) -> torch.Tensor:
        n = size[dim]
        full = (*size[:dim], n * self.world, *size[dim + 1:])
        out = fn(*args, full, generator=self.generator, device=self.generator.device)
        return out if self.world == 1 else out.narrow(dim, self.rank * n, n)


class GlobalBatchNorm:
    """A BatchNorm layer (mixed in front of its own class) that, in training, normalises with the mean and
    the biased variance of the global batch and updates the running statistics with its unbiased variance,
    as a BatchNorm layer of one process would. Works on gloo (CPU) and NCCL, where torch's SyncBatchNorm
    has no CPU kernel. Eval mode, and one process, are the layer's own forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world = _world()
        if not self.training or world == 1:
            return super().forward(x)
        dims = [0, *range(2, x.ndim)]  # every dimension but the channels
        shape = [1, -1] + [1] * (x.ndim - 2)
        n = x.numel() // x.shape[1] * world  # values per channel in the global batch
        h = x.float()
        mean = _all_reduce_sum(h.sum(dims)) / n  # (C,)
        centred = h - mean.view(shape)
        var = _all_reduce_sum(centred.square().sum(dims)) / n  # (C,), two passes: as exact as torch's own
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_((var * n / max(n - 1, 1)).to(self.running_var.dtype), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


class GlobalDropout:
    """A dropout layer (mixed in front of its own class) whose training mask is this process's slice of the
    mask one process would draw for the global batch: each process draws that whole mask from torch's
    global RNG (seeded alike in every process) with the same call as plain dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world = _world()
        if not self.training or world == 1 or self.p == 0:
            return super().forward(x)
        n = x.shape[0]
        mask = F.dropout(x.new_ones((n * world, *x.shape[1:])), self.p, True)  # 0 or 1 / (1 - p)
        return x * mask.narrow(0, _rank() * n, n)


@functools.cache
def _global(mixin: type, cls: type) -> type:
    """``cls`` with ``mixin``'s forward in front: the same parameters, buffers and state_dict keys."""
    return type(f"Global{cls.__name__}", (mixin, cls), {})


def use_global_batch(model: nn.Module) -> nn.Module:
    """Turn ``model``'s BatchNorm and dropout layers, in place, into ones that see the global batch.

    Only the layers' class changes: their weights, buffers and state_dict keys stay, so checkpoints and
    exported weights load into the one-process model as before. Returns ``model``.
    """
    for m in model.modules():
        if isinstance(m, (GlobalBatchNorm, GlobalDropout)):
            continue
        if isinstance(m, _BatchNorm):
            m.__class__ = _global(GlobalBatchNorm, type(m))
        elif isinstance(m, nn.Dropout):
            m.__class__ = _global(GlobalDropout, type(m))
    return model
