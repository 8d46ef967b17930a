"""The errors of loading weights, in a module that imports nothing heavy, so that code that only names
them (the app's list of errors a user is shown) does not import torch."""
from __future__ import annotations


class WeightsUnavailableError(RuntimeError):
    """No source could provide a model's weights. The message lists every source tried and why it failed."""


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: the message names the missing and unexpected keys."""


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be downloaded or found on disk; the message says how to get it."""
