"""Cold start: from ``python app.py`` (a fresh process) to the first page served.

The page is built before torch is imported (``import gan`` and the model pickers need only the registry), so
``import torch`` is timed for scale: the app's start is about ``import gradio`` plus building and launching.

For the floor, the same run starts an empty Gradio app (one textbox, one button) the same way.

The app runs on a free port (GRADIO_SERVER_PORT, which Gradio's launch() honours) and the
benchmark polls http://127.0.0.1:PORT/ until it answers 200. For scale, the same run times
a bare ``import torch`` and ``import gradio`` in fresh processes, and the first slider image
(the first /sample_live call, which loads and prepares the model).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, NOISE_MODELS, Row, weights_dir
from benchmarks.slider import free_port, stop, wait_for_page

TARGET_S = 3.0  # issue 26: the page served within 3 s, median of 5


def import_time(module: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)
    return time.perf_counter() - start


# The floor Gradio sets on this machine: an app of one textbox and one button, started and timed the same way.
EMPTY_APP = """import gradio as gr
with gr.Blocks() as demo:
    box = gr.Textbox()
    gr.Button("echo").click(lambda s: s, box, box)
demo.launch()
"""


def app_start(env: dict[str, str], script: str = "app.py") -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, script], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **env, "GRADIO_SERVER_PORT": str(port)})
    try:
        wait_for_page(f"http://127.0.0.1:{port}/", proc, timeout=120)
        return time.perf_counter() - start
    finally:
        stop(proc)


def run(quick: bool = False) -> list[Row]:
    if not (ROOT / "app.py").exists():
        return []
    repeats = 1 if quick else 5
    env = {"FORGER_WEIGHTS_DIR": str(weights_dir(NOISE_MODELS))}
    starts, torch_s, gradio_s, empty_s = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty_app.py"
        empty.write_text(EMPTY_APP)
        for _ in range(repeats):  # interleaved, so a busy moment hits all four alike
            torch_s.append(import_time("torch"))
            gradio_s.append(import_time("gradio"))
            empty_s.append(app_start(env, str(empty)))
            starts.append(app_start(env))
    median = statistics.median(starts)
    return [Row("coldstart", {
        "python app.py -> first page s (median)": median, "worst s": max(starts),
        "empty Gradio app -> first page s": statistics.median(empty_s),
        "import torch s": statistics.median(torch_s), "import gradio s": statistics.median(gradio_s),
        "runs": repeats,
    }, [(f"cold start <= {TARGET_S:g} s to a served page", median <= TARGET_S)])]
