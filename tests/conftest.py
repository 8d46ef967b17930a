"""Shared fixtures. Every test runs offline on the CPU."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent  # the checkout (pyproject.toml puts it on the path for pytest)

# Serving choices and downloads are cached in a folder of this run's own, never in the user's ~/.cache.
os.environ["FORGER_CACHE"] = tempfile.mkdtemp(prefix="forger-test-cache-")
atexit.register(shutil.rmtree, os.environ["FORGER_CACHE"], ignore_errors=True)  # ~150 MB a run otherwise left behind
# One torch thread for every test (fastest on a busy 2-core machine, beside servers and browsers), or
# FORGER_TEST_THREADS: CI's CPU matrix runs the numerics-sensitive tests with 3 as well (another reduction order).
torch.set_num_threads(int(os.environ.get("FORGER_TEST_THREADS", "1")))


def _favour(path: str) -> None:
    """FORGER_TEST_FAVOUR=PATH: run the suite as on a machine where PATH is the fastest. Every timing the
    runtime takes is real, then PATH's is divided by 5 ("bf16": both bf16 serving paths, and bf16 training),
    or, for "eager", every other path's is multiplied by 5 (and training stays fp32). The runtime then picks
    PATH wherever it meets the accuracy bound, as it would on such a machine: bf16 on an AMX CPU, eager on a
    GPU at batch 1. The images are still computed for real; only the choice is steered.

    FORGER_TEST_FAVOUR=random:SEED (or random: a seed is drawn and printed in pytest's header) favours, per
    model, one path drawn from SEED and the model's name: the suite runs as on a machine where each model
    has its own fastest path. Rerun a failure with the printed seed."""
    import random
    import zlib

    from gan import serving
    from gan.train import precision

    if path.startswith("random"):
        seed = path.partition(":")[2] or str(random.SystemRandom().randrange(10 ** 6))
        os.environ["FORGER_TEST_FAVOUR"] = f"random:{seed}"

        def favoured_of(label: str) -> set[str]:
            options = serving.candidates(torch.device("cpu"))
            return {random.Random(zlib.crc32(f"{seed}|{label}".encode())).choice(options)}
    elif path in serving.PATHS:
        favoured_of = lambda label: {"bf16", "bf16-autocast"} if path == "bf16" else {path}  # noqa: E731
    else:
        raise pytest.UsageError(f"FORGER_TEST_FAVOUR must be one of {', '.join(serving.PATHS)} or random[:SEED], "
                                f"not {path!r}")
    measured_steps = precision.time_steps

    def steered(label: str, p: str, seconds: float) -> float:
        favoured = favoured_of(label)
        if favoured == {"eager"}:
            return seconds if p == "eager" else 5 * seconds
        return seconds / 5 if p in favoured else seconds

    def steered_steps(steps, device, repeats=precision.REPEATS):
        seconds = measured_steps(steps, device, repeats)
        seconds["bf16"] = seconds["fp32"] / 5 if path == "bf16" else 5 * seconds["fp32"]
        return seconds

    steered_steps.__wrapped__ = measured_steps
    serving.timing_hook, precision.time_steps = steered, steered_steps


def _steering() -> str | None:
    steer = os.environ.get("FORGER_TEST_FAVOUR")
    return f"FORGER_TEST_FAVOUR={steer} (rerun with the same value to repeat these choices)" if steer else None


def pytest_report_header(config):
    return _steering()


def pytest_terminal_summary(terminalreporter):
    """The steering again at the end, where `pytest -q` (which shows no header) prints it too."""
    if _steering():
        terminalreporter.write_line(_steering())


if os.environ.get("FORGER_TEST_FAVOUR"):
    _favour(os.environ["FORGER_TEST_FAVOUR"])


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A FakeHub on 127.0.0.1 with the real huggingface_hub client pointed at it (fresh HF_HOME),
    and Forger's URL cache in a fresh folder."""
    from hub_server import FakeHub, configure_hf_hub_client

    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "forger-cache"))
    with FakeHub() as hub:
        configure_hf_hub_client(monkeypatch, hub.url, tmp_path / "hf_home")
        yield hub
