"""Shared fixtures. Every test runs offline on the CPU."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent  # the checkout (pyproject.toml puts it on the path for pytest)

# Serving choices and downloads are cached in a folder of this run's own, never in the user's ~/.cache.
os.environ["FORGER_CACHE"] = tempfile.mkdtemp(prefix="forger-test-cache-")
torch.set_num_threads(1)  # for every test: fastest on a busy 2-core machine, beside servers and browsers


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A FakeHub on 127.0.0.1 with the real huggingface_hub client pointed at it (fresh HF_HOME),
    and Forger's URL cache in a fresh folder."""
    from hub_server import FakeHub, configure_hf_hub_client

    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "forger-cache"))
    with FakeHub() as hub:
        configure_hf_hub_client(monkeypatch, hub.url, tmp_path / "hf_home")
        yield hub
