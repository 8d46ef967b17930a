"""Slider latency: the round trip of one latent-slider move through the running app, per model.

The app (``app.py``'s ``demo``, or a stand-in while it does not exist) runs in a subprocess on
127.0.0.1 with weights for every noise->image model (``benchmarks.serve_app``). Each iteration
moves a slider (``/sample_live``) and calls two floors, in rotating order:

- ``/bench_noop``: an empty handler: Gradio's own round trip;
- ``/bench_image``: a fixed 256x256 image through the same outputs as the Sample tab.

Two clients measure the same server: a plain SSE client that speaks Gradio's queue protocol the
way the browser does (join, then read the event stream), which shows what a browser user waits
and is the one the targets are checked on; and ``gradio_client``, reported for information only:
it polls for messages every 50 ms, which sets its ~80 ms floor and hides any handler shorter than
that.

The slider's added latency is taken pair by pair: each slider call minus the no-op call of the
same round (timed next to it), then the median and p95 of those differences. A difference of two
percentiles would not be a percentile of anything, and could be negative.
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


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


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
        stop(proc)
        if log:
            out.close()


class RawClient:
    """Gradio's queue protocol (sse_v3) as the browser speaks it: POST queue/join, read queue/data,
    with one session for all its calls, as one page keeps one (a new session per call would make the
    server build that session's copy of the app's config every time: about 20 ms of its event loop)."""

    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/")
        self.session = uuid.uuid4().hex[:11]
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
        session = self.session
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

    def post(self, api: str, values: list[Any]) -> list[Any]:
        """A queue=False event as the web page sends it: one POST to run/{api_name}."""
        values = list(values)
        data = [None if kind == "state" else values.pop(0) if values else None for kind in self.types[api]]
        r = self.http.post(f"{self.base}{self.prefix}/run/{api}",
                           json={"data": data, "event_data": None, "session_hash": self.session})
        r.raise_for_status()
        return r.json().get("data", [])

    def close(self) -> None:
        self.http.close()


def _slider_args(model: str, value: float, n_edits: int) -> list[Any]:
    edits = [0.0] * n_edits
    edits[0] = value
    return [model, 0, 1.0, 0, *edits]


NO_COMPUTE_THREAD = "default threads, no compute thread"
TARGET_CLIENT = "browser-like SSE"  # the client the targets are checked on; gradio_client is information


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 50) * 1e3, "p95": percentile(samples, 95) * 1e3}


def paired_added(slider: list[float], noop: list[float]) -> dict[str, float]:
    """Median and p95 (ms) of slider[i] - noop[i]: each slider call against the no-op of its own round."""
    if len(slider) != len(noop):
        raise ValueError(f"{len(slider)} slider calls but {len(noop)} no-op calls: they must pair up")
    return _stats([s - n for s, n in zip(slider, noop)])


def measure(url: str, models: tuple[str, ...], iterations: int) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{client: {model: {what: {p50, p95}}}} in milliseconds, for what in: noop, image, slider and (for the
    browser-like client) noop and slider with queue=False (one direct POST), plus "added" (and "added
    queue=False"): the percentiles of the paired differences slider - noop, one pair per round."""
    from gradio_client import Client

    gc = Client(url, verbose=False, download_files=False)
    api = gc.view_api(return_format="dict", print_info=False)["named_endpoints"]
    if f"/{SLIDER_API}" not in api:
        raise RuntimeError(f"the app has no /{SLIDER_API} endpoint; its endpoints: {', '.join(api)}")
    n_edits = sum(p["parameter_name"].startswith("edit_") for p in api[f"/{SLIDER_API}"]["parameters"])
    raw = RawClient(url)
    direct = "bench_slider_direct" in raw.deps
    clients = {
        "gradio_client": lambda name, args: gc.predict(*args, api_name=f"/{name}"),
        TARGET_CLIENT: lambda name, args: (raw.post if name.endswith("_direct") else raw.call)(name, args),
    }
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for client_name, call in clients.items():
        results[client_name] = {}
        for model in models:
            samples: dict[str, list[float]] = {}
            call(SLIDER_API, _slider_args(model, 0.5, n_edits))  # load, prepare and PCA once, off the clock
            plan: list[tuple[str, str, list[Any] | None]] = [
                ("noop", "bench_noop", [1]), ("image", "bench_image", [1]), ("slider", SLIDER_API, None)]
            if client_name != "gradio_client" and direct:
                plan += [("noop queue=False", "bench_noop_direct", [1]),
                         ("slider queue=False", "bench_slider_direct", None)]
            for i in range(iterations):
                for what, endpoint, args in plan[i % len(plan):] + plan[: i % len(plan)]:
                    if args is None:
                        args = _slider_args(model, -3 + 6 * ((i * 7) % iterations) / iterations, n_edits)
                    start = time.perf_counter()
                    out = call(endpoint, args)
                    samples.setdefault(what, []).append(time.perf_counter() - start)
                    if endpoint != "bench_noop" and not endpoint.startswith("bench_noop") and i == 0 \
                            and client_name != "gradio_client" and not out[0]:
                        raise RuntimeError(f"{endpoint} returned no image for {model}: {out[-1]}")
            stats = {what: _stats(v) for what, v in samples.items()}
            stats["added"] = paired_added(samples["slider"], samples["noop"])
            if "slider queue=False" in samples:
                stats["added queue=False"] = paired_added(samples["slider queue=False"], samples["noop queue=False"])
            results[client_name][model] = stats
    raw.close()
    return results


def run(quick: bool = False, log_dir: Path | None = None) -> list[Row]:
    """The app as it is (torch's default threads) and, in the full run, with one torch thread, and
    (information) without the one compute thread (``FORGER_COMPUTE_THREAD=0``: each request's thread runs
    its own model calls)."""
    models = NOISE_MODELS
    root = weights_dir(models)
    iterations = 12 if quick else 30
    configs = {"default threads": ([], {})}  # name: (server arguments, environment)
    if not quick:
        configs["1 thread"] = (["--threads", "1"], {})
        configs[NO_COMPUTE_THREAD] = ([], {"FORGER_COMPUTE_THREAD": "0"})
    rows = []
    for config, (args, env) in configs.items():
        log = (log_dir / f"slider-server-{len(rows)}.log") if log_dir else None
        with serve(args, env={"FORGER_WEIGHTS_DIR": str(root), **env}, log=log) as (url, _):
            results = measure(url, models, iterations)
        for client_name, per_model in results.items():
            for queued in (True, False):
                suffix = "" if queued else " queue=False"
                for model in models:
                    res = per_model[model]
                    if f"noop{suffix}" not in res:
                        continue
                    floor, image, r = res[f"noop{suffix}"], res["image"], res[f"slider{suffix}"]
                    added = res[f"added{suffix}"]
                    how = f"{client_name}, {config}{',' + suffix if suffix else ''}"
                    # gradio_client's polling hides the handler; the app always runs with its compute thread
                    counts = queued and client_name == TARGET_CLIENT and config != NO_COMPUTE_THREAD
                    targets = [(f"{model}: slider adds <= 25 ms at p50 ({how})", added["p50"] <= 25),
                               (f"{model}: slider adds <= 50 ms at p95 ({how})", added["p95"] <= 50)] if counts else []
                    rows.append(Row("slider", {
                        "server": config, "client": client_name + suffix, "model": model,
                        "slider p50 ms": r["p50"], "slider p95 ms": r["p95"],
                        "no-op p50 ms": floor["p50"], "no-op p95 ms": floor["p95"],
                        "image-only p50 ms": image["p50"] if queued else float("nan"),
                        "added p50 ms (paired)": added["p50"], "added p95 ms (paired)": added["p95"],
                        "targets": "checked" if counts else "information",
                    }, targets))
    return rows
