"""Several processes train as one: torchrun with 2 processes of batch b gives the losses and the weights of
1 process with batch 2b (on the CPU, gloo), so BatchNorm, random draws, dropout, minibatch std, mode-seeking
pairs, CycleGAN's image pool and the reported losses all see the global batch."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT

# model -> the 1-process run's arguments (the 2-process run's batch is half). CycleGAN's pool of 50 is full
# after 7 steps of 8; its recipe's lr (2e-4) grows rounding noise 30-fold a step on these digits (as 1 against
# 2 threads shows), so it learns slowly enough here to compare 9 steps.
# mnist-dcgan's recipe lr (4e-4) does the same past step 3 (2e-5 at step 4), so it runs at 2e-4.
CASES = {"mnist-dcgan": ["--data", "mnist-offline", "--steps", "4", "--batch-size", "8", "--lr", "2e-4"],
         "mnist-gan": ["--data", "mnist-offline", "--steps", "4", "--batch-size", "8"],
         "cyclegan-digits2mnist": ["--data", "digits2mnist", "--steps", "9", "--batch-size", "8", "--lr", "1e-6"]}
# Float rounding only: sums over the global batch are added in another order (per process, then across
# processes). Measured here: losses within 2e-6 of each other, relative to max(1, |loss|). Per-process
# BatchNorm statistics, dropout masks or draws, strided minibatch-std groups, a per-process mode-seeking
# mean or rank 0's losses alone move the first step's losses by 3e-5 (mnist-gan's BatchNorm, which only
# its fakes see) to 2e-1.
LOSS_TOLERANCE = 1e-5
# Weights within 1e-5, except where the true gradient is 0 (a bias right before BatchNorm): there Adam steps
# on rounding noise, by up to lr * noise / eps per step (measured 7e-5 over 4 steps). Bound: one step of lr.
WEIGHT_TOLERANCE = 2e-4


@pytest.fixture(scope="module")
def launcher():
    """torchrun needs nothing but torch; the trainer needs accelerate for several processes (requirements-dev)."""
    if importlib.util.find_spec("accelerate") is None:
        if os.environ.get("CI"):
            pytest.fail("accelerate is missing: pip install -r requirements-dev.txt")
        pytest.skip("accelerate is not installed (pip install -r requirements-dev.txt)")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _start(launcher, model, processes, out):
    args = [*CASES[model], "--batch-size", str(int(_arg(model, "--batch-size")) // processes)]  # the last one counts
    args = ["-m", "gan", "train", model, *args, "--precision", "fp32", "--threads", "1", "--sample-every", "1000",
            "--out", str(out)]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    return subprocess.Popen([*launcher, *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _arg(model, name):
    return CASES[model][CASES[model].index(name) + 1]


def _losses(out):
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model", CASES)
def test_two_processes_with_batch_b_train_as_one_process_with_batch_2b(launcher, model, tmp_path):
    """mnist-dcgan: BatchNorm in G and D, labels, DiffAugment, minibatch std, mode-seeking pairs;
    mnist-gan: BatchNorm in G, dropout in D; cyclegan-digits2mnist: the image pool's draws, two exports."""
    one, two = tmp_path / "one", tmp_path / "two"
    runs = [_start([sys.executable], model, 1, one), _start(launcher, model, 2, two)]  # side by side
    for proc in runs:
        _, stderr = proc.communicate(timeout=600)  # generous: ~10 s here
        assert proc.returncode == 0, stderr[-3000:]

    single, double = _losses(one), _losses(two)
    assert [s["step"] for s in single] == [s["step"] for s in double] == list(range(1, int(_arg(model, "--steps")) + 1))
    for a, b in zip(single, double):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) <= LOSS_TOLERANCE * max(1.0, abs(a[k])), (k, a["step"], a[k], b[k])

    files = sorted(p.relative_to(one) for p in (one / "weights").glob("*/*.safetensors"))
    assert len(files) >= 2 and files == sorted(p.relative_to(two) for p in (two / "weights").glob("*/*.safetensors"))
    for name in files:  # generators and discriminators
        w1, w2 = load_file(one / name), load_file(two / name)
        assert w1.keys() == w2.keys()  # the 2-process weights load into the 1-process model
        for k in w1:
            assert torch.allclose(w1[k].float(), w2[k].float(), rtol=0, atol=WEIGHT_TOLERANCE), \
                (name, k, (w1[k].float() - w2[k].float()).abs().max().item())
