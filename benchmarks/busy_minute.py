"""The training minute with one core busy (issue 26, part 4).

The default recipe, ``python -m gan train mnist-dcgan --data mnist-offline --minutes 1``, runs as a user runs
it (a fresh process, torch's default thread count), while another process keeps one core at 100% for the
whole minute (a Python busy loop). Then the exported generator is evaluated as
``python -m gan evaluate mnist-dcgan --weights ...`` does it (1,250 samples, the bundled digit classifier):
the share of samples classified as the requested digit, and the digits covered. The busy loop is stopped
before the evaluation, which is not part of the minute.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, Row

MODEL = "mnist-dcgan"
COMMAND = ["-m", "gan", "train", MODEL, "--data", "mnist-offline", "--minutes", "1"]
ACCURACY, COVERAGE = 0.90, 10  # issue 26: >= 90% the requested digit, 10/10 digits, with one core busy


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def busy_minute(out: Path, busy: bool = True, extra: tuple[str, ...] = ()) -> dict[str, object]:
    """Train the default minute (with a busy loop on one core when ``busy``, and ``extra`` arguments); the steps
    it made, its load."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    load_before = _load()
    try:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *COMMAND, *extra, "--out", str(out)], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "TQDM_DISABLE": "1"}, timeout=900, check=False)
        seconds = time.perf_counter() - started
        spinner_cpu = _cpu_seconds(spinner.pid) if spinner else 0.0
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if done.returncode != 0:
        raise RuntimeError(f"the training minute failed ({done.returncode}): {done.stderr[-2000:]}")
    found = re.search(r"for ([\d,]+) steps", done.stdout + done.stderr)
    steps = int(found.group(1).replace(",", "")) if found else -1
    return {"steps": steps, "wall s": seconds, "load average (before / after)": f"{load_before} / {_load()}",
            "busy loop's CPU %": 100 * spinner_cpu / seconds if spinner else float("nan")}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run(quick: bool = False) -> list[Row]:
    import gan.evaluate

    with tempfile.TemporaryDirectory(prefix="forger-bench-minute-") as tmp:
        cells: dict[str, object] = {"command": "python " + " ".join(COMMAND), "beside": "one core at 100%"}
        cells.update(busy_minute(Path(tmp) / "run"))
        result = gan.evaluate.evaluate(MODEL, n=500 if quick else 1250,
                                       weights=Path(tmp) / "run" / "weights" / MODEL)
    metrics = result["metrics"]
    accuracy = metrics["requested_digit_accuracy"]["value"]
    coverage = metrics["class_coverage"]["value"]
    cells["requested digit %"] = 100 * accuracy
    cells["digits covered"] = coverage
    cells["samples evaluated"] = result["n"]
    return [Row("busyminute", cells, [
        (f"{MODEL}'s default minute with one core busy: >= {ACCURACY:.0%} the requested digit",
         accuracy >= ACCURACY),
        (f"{MODEL}'s default minute with one core busy: {COVERAGE}/10 digits covered", coverage >= COVERAGE),
    ])]
