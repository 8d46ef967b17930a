"""Loading a model's weights without holding a request: the load runs in the background, a request waits
at most ``LOAD_WAIT_S`` and is then told to try again shortly."""
from __future__ import annotations

import threading
from typing import Any

import gan

LOAD_WAIT_S = 5.0  # a request waits this long for a model's weights; the download then goes on in the background
_loading: dict[tuple[str, str | None], tuple[threading.Thread, list[BaseException]]] = {}
_loading_lock = threading.Lock()


class StillLoadingError(RuntimeError):
    """A model's weights are still being fetched; the message says to try again shortly."""


def loaded(name: str, weights: Any = None, wait: float | None = None) -> None:
    """Load (name, weights) for serving, waiting at most ``wait`` seconds (default LOAD_WAIT_S).

    Model calls share a few concurrency slots with every user's sliders, so a request must not hold one
    for the length of a download (a Hub that hangs held four users' Translate requests for minutes and
    every slider of every user behind them). The load runs in a background thread, one per model; a
    request that is not answered in ``wait`` seconds gets StillLoadingError; so does, at once, any request
    that comes while the load goes on. A later one finds the model loaded, or its failure (cached with a
    backoff by ``gan``)."""
    if gan.serving.is_served(name, weights):
        return
    key = (name, None if weights is None else str(weights))
    with _loading_lock:
        thread, errors = _loading.get(key, (None, []))
        started = thread is None or not thread.is_alive()
        if started:
            errors = []
            thread = threading.Thread(target=gan.serving.load_recording, args=(name, weights, errors), daemon=True,
                                      name=f"load {name}")
            _loading[key] = (thread, errors)
            thread.start()
    # only the request that started the load waits for it; while it goes on, the others are answered at once
    thread.join((LOAD_WAIT_S if wait is None else wait) if started else 0)
    if thread.is_alive():
        raise StillLoadingError(f"Still fetching the weights of {name}: this can take a minute on a slow "
                                f"connection. Try again shortly; other models work meanwhile.")
    if errors:
        raise errors[0]
