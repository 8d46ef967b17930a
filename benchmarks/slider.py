"""Slider latency: the round trip of one latent-slider move through the running app, per model.

The app (``app.py``'s ``demo``, or a stand-in while it does not exist) runs in a subprocess on
127.0.0.1 with weights for every noise->image model (``benchmarks.serve_app``). Each iteration
moves a slider (``/sample_live``) and calls two floors, in rotating order:

- ``/bench_noop``: an empty handler: Gradio's own round trip;
- ``/bench_image``: a fixed 256x256 image through the same outputs as the Sample tab.

Two clients measure the same server: ``gradio_client`` (what the task asks for; it polls for
messages every 50 ms, which dominates its floor) and a plain SSE client that speaks Gradio's
queue protocol the way the browser does (join, then read the event stream), which shows what a
browser user waits.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import NOISE_MODELS, ROOT, Row, percentile, weights_dir

SLIDER_API = "sample_live"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> float:
    """Poll ``url`` until it answers 200; seconds waited. Raises if the process dies or time runs out."""
    start = time.perf_counter()
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {proc.returncode} before serving {url}")
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def serve(args: list[str], env: dict[str, str] | None = None, log: Path | None = None
          ) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``python -m benchmarks.serve_app PORT *args`` and yield (base URL, process); stops it after."""
    port = free_port()
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.serve_app", str(port), *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_page(url, proc)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


class RawClient:
    """Gradio's queue protocol (sse_v3) as the browser speaks it: POST queue/join, read queue/data."""

    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/")
        self.http = httpx.Client(timeout=60.0)
        config = self.http.get(self.base + "/config").json()
        self.prefix = config.get("api_prefix", "/gradio_api")
        components = {c["id"]: c for c in config["components"]}
        self.deps = {d.get("api_name"): d for d in config["dependencies"] if d.get("api_name")}
        self.types = {name: [components[i]["type"] for i in d["inputs"]] for name, d in self.deps.items()}

    def call(self, api: str, values: list[Any]) -> dict[str, Any]:
        dep = self.deps[api]
        values = list(values)
        data = [None if kind == "state" else values.pop(0) if values else None for kind in self.types[api]]
        session = uuid.uuid4().hex[:11]
        joined = self.http.post(f"{self.base}{self.prefix}/queue/join", json={
            "data": data, "fn_index": dep.get("id"), "session_hash": session, "event_data": None,
            "trigger_id": dep.get("targets", [[None]])[0][0]})
        joined.raise_for_status()
        with self.http.stream("GET", f"{self.base}{self.prefix}/queue/data", params={"session_hash": session}) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        if not msg.get("success", False):
                            raise RuntimeError(f"{api} failed: {msg.get('output')}")
                        return msg["output"].get("data", [])
        raise RuntimeError(f"{api}: the event stream ended without a result")

    def close(self) -> None:
        self.http.close()


def _slider_args(model: str, value: float, n_edits: int) -> list[Any]:
    edits = [0.0] * n_edits
    edits[0] = value
    return [model, 0, 1.0, 0, *edits]


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 50) * 1e3, "p95": percentile(samples, 95) * 1e3}


def measure(url: str, models: tuple[str, ...], iterations: int) -> dict[str, dict[str, dict[str, float]]]:
    """{client: {what: {p50, p95}}} for what in noop, image and every model, in milliseconds."""
    from gradio_client import Client

    gc = Client(url, verbose=False, download_files=False)
    api = gc.view_api(return_format="dict", print_info=False)["named_endpoints"]
    if f"/{SLIDER_API}" not in api:
        raise RuntimeError(f"the app has no /{SLIDER_API} endpoint; its endpoints: {', '.join(api)}")
    n_edits = sum(p["parameter_name"].startswith("edit_") for p in api[f"/{SLIDER_API}"]["parameters"])
    raw = RawClient(url)
    clients = {
        "gradio_client": lambda name, args: gc.predict(*args, api_name=f"/{name}"),
        "browser-like SSE": lambda name, args: raw.call(name, args),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for client_name, call in clients.items():
        samples: dict[str, list[float]] = {}
        for model in models:
            call(SLIDER_API, _slider_args(model, 0.5, n_edits))  # load, prepare and PCA once, off the clock
            plan = [("noop", "bench_noop", [1]), ("image", "bench_image", [1])] + [
                (model, SLIDER_API, None)]
            for i in range(iterations):
                for what, endpoint, args in plan[i % 3:] + plan[: i % 3]:
                    if args is None:
                        args = _slider_args(model, -3 + 6 * ((i * 7) % iterations) / iterations, n_edits)
                    start = time.perf_counter()
                    out = call(endpoint, args)
                    samples.setdefault(what, []).append(time.perf_counter() - start)
                    if what == model and client_name == "browser-like SSE" and i == 0 and not out[0]:
                        raise RuntimeError(f"the slider of {model} returned no image: {out[-1]}")
        results[client_name] = {what: _stats(s) for what, s in samples.items()}
    raw.close()
    return results


def handler_times(models: tuple[str, ...], root: Path, repeats: int = 30) -> dict[str, float]:
    """Median seconds of the slider handler itself (app.sample_image) in this process, per model."""
    import statistics

    os.environ["FORGER_WEIGHTS_DIR"] = str(root)
    from gan import weights as gan_weights

    gan_weights.WEIGHTS_DIR = root
    sys.path.insert(0, str(ROOT))
    import app  # noqa: E402

    out = {}
    for model in models:
        args = [model, 0, 1.0, 0] + [0.0] * 32 + [None]
        app.sample_image(*args)
        times = []
        for i in range(repeats):
            args[4] = -3 + 6 * i / repeats
            start = time.perf_counter()
            app.sample_image(*args)
            times.append(time.perf_counter() - start)
        out[model] = statistics.median(times)
    return out


def run(quick: bool = False, log_dir: Path | None = None) -> list[Row]:
    models = NOISE_MODELS
    root = weights_dir(models)
    iterations = 12 if quick else 40
    log = (log_dir / "slider-server.log") if log_dir else None
    with serve([], env={"FORGER_WEIGHTS_DIR": str(root)}, log=log) as (url, _):
        results = measure(url, models, iterations)
    rows = []
    for client_name, res in results.items():
        floor, image = res["noop"], res["image"]
        for model in models:
            r = res[model]
            added50, added95 = r["p50"] - floor["p50"], r["p95"] - floor["p95"]
            targets = [(f"{model}: slider adds <= 25 ms at p50 ({client_name})", added50 <= 25),
                       (f"{model}: slider adds <= 50 ms at p95 ({client_name})", added95 <= 50)]
            rows.append(Row("slider", {
                "client": client_name, "model": model,
                "slider p50 ms": r["p50"], "slider p95 ms": r["p95"],
                "no-op p50 ms": floor["p50"], "no-op p95 ms": floor["p95"],
                "image-only p50 ms": image["p50"],
                "added p50 ms": added50, "added p95 ms": added95,
            }, targets))
    return rows
