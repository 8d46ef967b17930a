"""Training on demand: every family in one loop shape, resumable to the step.

    >>> from gan.train import TrainConfig, train
    >>> for event in train(TrainConfig("mnist-dcgan", data="mnist-offline", steps=2000)):
    ...     if event.done:
    ...         print(event.message)   # weights in runs/mnist-dcgan/weights/mnist-dcgan

``python -m gan train MODEL ...`` is the same from the command line (see ``gan/train/cli.py``).
Layout: ``config.py`` (``TrainConfig``), ``loop.py`` (events, the loop), ``common.py`` (what all families share:
hardware, data stream, losses, EMA, checkpoints, grids, export), ``distributed.py`` (several
processes that train as one), one file per family that differs: ``noise.py``, ``pix2pix.py``,
``cyclegan.py``.
"""
from __future__ import annotations

from gan.train.common import TrainingOutOfMemoryError, load_checkpoint, push_run
from gan.train.config import TrainConfig
from gan.train.loop import TrainEvent, train

__all__ = ["TrainConfig", "TrainEvent", "train", "load_checkpoint", "push_run", "TrainingOutOfMemoryError"]
