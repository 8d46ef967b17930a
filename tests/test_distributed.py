"""Several processes train as one: torchrun with 2 processes of batch b gives the losses and the weights of
1 process with batch 2b (on the CPU, gloo), so BatchNorm, random draws, dropout, minibatch std, mode-seeking
pairs, CycleGAN's image pool and the reported losses all see the global batch.

"As one" is up to float rounding, and how much rounding depends on the CPU, so no tolerance here is a
constant: the test measures this machine's own noise floor. Beside the 1-process run it compares (1 thread),
it trains the same 1-process run twice more, with 2 threads, and with other kernels (another oneDNN ISA cap,
ATen's other vector kernels): computations that differ only in the order of their sums. The
2-process run must stay within NOISE_MULTIPLE times the largest difference among these three (plus a few
float32 ulps, so that a floor of 0 still allows a last-bit difference)."""
from __future__ import annotations

import importlib.util
import json
import os
import platform
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

# The bound, as a multiple of the noise floor. Measured on a 2-core AMD EPYC (AVX-512, no AMX), plain and with
# each CPU-matrix setting (oneDNN capped at AVX2, ATen's avx2 or default kernels, OMP_NUM_THREADS 1 or 3): the
# 2-process run's losses came within 0.31 of the bound (cyclegan-digits2mnist), its weights within 1.3 times
# the floor. Every bug of the mutation table in docs/testing.md (per-process BatchNorm, dropout, draws, image
# pool; strided minibatch-std groups) still fails it at the first step (the image pool's at step 7, once the
# pool is full), by 6 (mnist-gan's BatchNorm, the first loss checked) to 5,000 (draws) times the bound.
NOISE_MULTIPLE = 10
# Where the references agree to the last bits, the 2-process run may still differ in them: 32 float32 ulps
# (of 1 for the losses, which are compared relative to max(1, |loss|); absolute for the weights). A gradient of
# rounding noise that only the 2-process run rounds the other way (below) moved mnist-gan's G loss by 17.
ULPS = 32 * torch.finfo(torch.float32).eps
# Why threads alone are not enough: the thread count barely changes the sums of oneDNN's convolutions here.
# For cyclegan-digits2mnist, 1 against 2 or 3 threads gave a floor of 4e-7 to 9e-7 through step 8, while the
# 2-process run (convolutions at batch 4, not 8: other kernels) differed by 1.5e-5 at step 8 (39 times).
# Why kernels alone are not enough either: where a gradient is rounding noise (Adam then moves the weight by
# up to lr whatever the noise's size), runs fall in two camps, rounding it one way or the other. With ATen's
# default kernels, mnist-gan's 1-thread run and a run with 2 threads and other kernels fell in one camp, the
# 2-thread and the 2-process runs in the other (a weight 2.6e-4 apart, the G loss 2e-6 = 17 ulps at step 4).
REFERENCES = {"threads": dict(threads=2), "kernels": dict(other_kernels=True)}


def _other_kernels(env: dict[str, str]) -> dict[str, str]:
    """``env`` with other CPU kernels than ``env`` gets: ATen's default (non-vector) kernels, or its best
    where ``env`` asks for the default; oneDNN capped at AVX2 on x86, or uncapped where ``env`` caps at AVX2."""
    env = dict(env)
    if env.get("ATEN_CPU_CAPABILITY", "").lower() == "default":
        env.pop("ATEN_CPU_CAPABILITY")
    else:
        env["ATEN_CPU_CAPABILITY"] = "default"
    if platform.machine().lower() in ("x86_64", "amd64"):
        if env.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2":
            env.pop("ONEDNN_MAX_CPU_ISA")
        else:
            env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    return env


@pytest.fixture(scope="module")
def launcher():
    """torchrun needs nothing but torch; the trainer needs accelerate for several processes (requirements-dev)."""
    if importlib.util.find_spec("accelerate") is None:
        if os.environ.get("CI"):
            pytest.fail("accelerate is missing: pip install -r requirements-dev.txt")
        pytest.skip("accelerate is not installed (pip install -r requirements-dev.txt)")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _start(launcher, model, processes, out, threads=1, other_kernels=False):
    args = [*CASES[model], "--batch-size", str(int(_arg(model, "--batch-size")) // processes)]  # the last one counts
    args = ["-m", "gan", "train", model, *args, "--precision", "fp32", "--threads", str(threads),
            "--sample-every", "1000", "--out", str(out)]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # passive: a thread that waits sleeps rather than spins, beside the other runs on a small machine
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": path}
    if other_kernels:
        env = _other_kernels(env)
    return subprocess.Popen([*launcher, *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _arg(model, name):
    return CASES[model][CASES[model].index(name) + 1]


def _losses(out):
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


def _loss_difference(a, b):
    """The largest difference of two steps' losses, each relative to max(1, |loss|)."""
    assert a.keys() == b.keys()
    return max(abs(a[k] - b[k]) / max(1.0, abs(a[k])) for k in a if k != "step")


@pytest.mark.parametrize("model", CASES)
def test_two_processes_with_batch_b_train_as_one_process_with_batch_2b(launcher, model, tmp_path):
    """mnist-dcgan: BatchNorm in G and D, labels, DiffAugment, minibatch std, mode-seeking pairs;
    mnist-gan: BatchNorm in G, dropout in D; cyclegan-digits2mnist: the image pool's draws, two exports.
    Contract: bounded: two computations that legitimately differ (reduction order across processes/threads),
    bounded by a multiple of this machine's own noise floor measured in the test."""
    one, two = tmp_path / "one", tmp_path / "two"
    noise = [one, *(tmp_path / name for name in REFERENCES)]  # the 1-process runs
    runs = [([sys.executable], 1, one, {}), (launcher, 2, two, {}),
            *(([sys.executable], 1, out, kw) for out, kw in zip(noise[1:], REFERENCES.values()))]
    # the 1-thread runs side by side, then each run of several threads on its own (a thread that waits for
    # another one, descheduled on a busy machine, would hold up its whole run)
    side_by_side = [run for run in runs if run[3].get("threads", 1) == 1]
    for stage in [side_by_side, *([run] for run in runs if run not in side_by_side)]:
        for proc in [_start(command, model, processes, out, **kw) for command, processes, out, kw in stage]:
            _, stderr = proc.communicate(timeout=600)  # generous: ~40 s in all here
            assert proc.returncode == 0, stderr[-3000:]

    single, double, references = _losses(one), _losses(two), [_losses(out) for out in noise]
    steps = list(range(1, int(_arg(model, "--steps")) + 1))
    assert [s["step"] for s in double] == steps
    assert all([s["step"] for s in r] == steps for r in references)
    pairs = [(i, j) for i in range(len(noise)) for j in range(i)]
    floor, worst = 0.0, 0.0  # the noise floor so far: rounding noise grows with the steps, it does not shrink
    for s, (a, b) in enumerate(zip(single, double)):
        floor = max(floor, *(_loss_difference(references[i][s], references[j][s]) for i, j in pairs))
        bound = NOISE_MULTIPLE * floor + ULPS
        assert a.keys() == b.keys()
        for k in a:
            difference = abs(a[k] - b[k]) / max(1.0, abs(a[k]))
            worst = max(worst, difference / bound)
            assert difference <= bound, (k, a["step"], a[k], b[k],
                                         f"difference {difference:.3g}, noise floor {floor:.3g}, bound {bound:.3g}")

    files = sorted(p.relative_to(one) for p in (one / "weights").glob("*/*.safetensors"))
    assert len(files) >= 2 and files == sorted(p.relative_to(two) for p in (two / "weights").glob("*/*.safetensors"))
    print(f"{model}: losses: noise floor {floor:.2g} at the last step, at most {worst:.2g} of the bound")
    for name in files:  # generators and discriminators
        w1, w2, ws = load_file(one / name), load_file(two / name), [load_file(out / name) for out in noise]
        assert w1.keys() == w2.keys()  # the 2-process weights load into the 1-process model
        floor = max((ws[i][k].float() - ws[j][k].float()).abs().max().item() for i, j in pairs for k in w1)
        bound = NOISE_MULTIPLE * floor + ULPS
        print(f"{name}: noise floor {floor:.2g}, 2 processes differ by "
              f"{max((w1[k].float() - w2[k].float()).abs().max().item() for k in w1):.2g}, bound {bound:.2g}")
        for k in w1:
            difference = (w1[k].float() - w2[k].float()).abs().max().item()
            assert difference <= bound, (str(name), k,
                                         f"difference {difference:.3g}, noise floor {floor:.3g}, bound {bound:.3g}")
