"""The first image against the second, in a fresh app with a cold serving cache (issue 30).

    python -m benchmarks --only firstimage        # or: python -m benchmarks.first_image

A fresh ``python app.py`` (a new process, an empty ``FORGER_CACHE``) on a free port; as soon as its page
answers, a browser-like client (one session, Gradio's SSE queue protocol) asks, for each model, the
Sample tab's ``/sample``, then ``/interpolate`` (8 frames) and a 64-image ``/variations`` grid, each twice
in a row: the first call of each pays whatever the first use costs (loading the model, choosing its
serving path), the second is the warm reference. Reported as first / second, in the same run, with the
seconds from the launch to the page and to the first image (what a user who starts the app waits in all).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import ROOT, Row, weights_dir
from benchmarks.slider import RawClient, free_port, stop, wait_for_page

MODELS = ("dcgan-faces", "mnist-dcgan", "mnist-gan", "cifar10-gan")
TARGET = 3.0  # the first call takes at most this many times the second


def _args(raw: RawClient, api: str, given: list[Any]) -> list[Any]:
    """``given`` first, then 0.0 for every slider and None for anything else the endpoint takes."""
    kinds = [k for k in raw.types[api] if k != "state"]
    return [given[i] if i < len(given) else (0.0 if kind == "slider" else None) for i, kind in enumerate(kinds)]


def _timed(raw: RawClient, api: str, values: list[Any]) -> float:
    start = time.perf_counter()
    raw.call(api, _args(raw, api, values))
    return time.perf_counter() - start


def measure(models: tuple[str, ...] = MODELS) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, float]]:
    """({model: {tab: (first s, second s)}}, {"page": s, "first image": s} from the launch) from one fresh app
    with a cold cache."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "FORGER_CACHE": tempfile.mkdtemp(prefix="forger-cold-"),
           "FORGER_WEIGHTS_DIR": str(weights_dir(models))}
    command = [sys.executable, "app.py"]
    if "onnxruntime" in sys.modules and sys.modules["onnxruntime"] is None:  # --without-onnxruntime: the app too
        command = [sys.executable, "-c", "import runpy, sys; sys.modules['onnxruntime'] = None; "
                   "sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')"]
    launched = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_page(url, proc, timeout=120)
        since_launch = {"page": time.perf_counter() - launched}
        raw = RawClient(url)
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for name in models:
            calls = {"Sample": ("sample", [name, 3, 1.0, 0]),
                     "Interpolate (8 frames)": ("interpolate", [name, 1, 2, 0, 1, 8, "slerp"]),
                     "64-image grid": ("variations", [name, 3, 1.0, 0, 64])}
            out[name] = {}
            for tab, (api, values) in calls.items():
                first = _timed(raw, api, values)
                since_launch.setdefault("first image", time.perf_counter() - launched)
                out[name][tab] = (first, _timed(raw, api, values))
        raw.close()
        return out, since_launch
    finally:
        stop(proc)


def run(quick: bool = False) -> list[Row]:
    if not (ROOT / "app.py").exists():
        return []
    rows, (results, since_launch) = [], measure(MODELS[:2] if quick else MODELS)
    for name, tabs in results.items():
        for tab, (first, second) in tabs.items():
            ratio = first / second
            target = [(f"{name} {tab}: first call <= {TARGET:g}x the second", ratio <= TARGET)] \
                if name in ("dcgan-faces", "mnist-dcgan") and tab != "64-image grid" else []
            rows.append(Row("firstimage", {"model": name, "tab": tab, "first ms": first * 1e3,
                                           "second ms": second * 1e3, "first / second": ratio}, target))
    rows.append(Row("firstimage", {"model": MODELS[0], "tab": "from the launch", "page s": since_launch["page"],
                                   "first image s": since_launch["first image"]}))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    results, since_launch = measure()
    print(f"from the launch: page {since_launch['page']:.2f} s, first image {since_launch['first image']:.2f} s")
    for model, tabs in results.items():
        for tab, (first, second) in tabs.items():
            print(f"{model:12} {tab:24} first {first * 1e3:8.1f} ms  second {second * 1e3:8.1f} ms  "
                  f"{first / second:5.2f}x")
