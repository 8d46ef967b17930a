"""Hugging Face ZeroGPU: every model call of the app goes through ``on_gpu``, which runs it with a GPU on
ZeroGPU hardware (``spaces.GPU``) and is a plain call elsewhere."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def zero_gpu(func: Callable[..., T]) -> Callable[..., T]:
    """``func`` under ``spaces.GPU`` when the ``spaces`` package is importable (Hugging Face ZeroGPU
    hardware attaches a GPU only inside such calls), else ``func`` unchanged."""
    try:
        import spaces
    except ImportError:
        return func
    return spaces.GPU(func)


def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


# Every model call of the app goes through this: on ZeroGPU it runs with a GPU, elsewhere it is a plain call.
# Module level, as ZeroGPU wants its functions decorated at start-up; the arguments are picklable.
on_gpu = zero_gpu(_call)


def active() -> bool:
    """Whether model calls run under ``spaces.GPU`` (ZeroGPU hardware): a GPU is attached only inside them."""
    return on_gpu is not _call
