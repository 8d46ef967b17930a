"""Training data on the training device: an in-memory dataset is one uint8 tensor there, and its batches
are exactly the DataLoader's (so runs, resumes and their losses do not change)."""
from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from gan.data import TensorImageDataset, mnist_offline
from gan.train.common import BatchStream, EpochData, Hardware, batches


def _loader_batches(dataset, batch_size, seed, start, n):
    stream = BatchStream(len(dataset), batch_size, seed, start)
    return list(itertools.islice(iter(DataLoader(EpochData(dataset), batch_sampler=stream)), n))


def test_in_memory_batches_are_gathered_on_the_device_and_equal_the_dataloaders(monkeypatch):
    from gan.train import common

    images, labels = mnist_offline("train")
    for channels in (1, 3):  # grey kept, and grey made RGB on the device
        dataset = TensorImageDataset(images[:300], labels[:300], 28, channels)
        assert dataset.stored.dtype == torch.uint8  # a quarter of float32's memory
        hw = Hardware(torch.device("cpu"), False)
        # from step 0, and from the middle of an epoch (a resume) across an epoch boundary
        for start in (0, 7):
            want = _loader_batches(dataset, 32, 5, start, 4)
            with monkeypatch.context() as m:
                m.setattr(common, "DataLoader", None)  # the in-memory path never builds one
                got = list(itertools.islice(batches(dataset, 32, 5, start, hw), 4))
            for (x, y), (x_ref, y_ref) in zip(got, want):
                assert x.shape == (32, channels, 28, 28) and x.dtype == torch.float32
                assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_resized_datasets_are_kept_as_floats_and_still_match():
    images, labels = mnist_offline("train")
    dataset = TensorImageDataset(images[:100], labels[:100], 32)
    assert dataset.stored.dtype == torch.float32
    hw = Hardware(torch.device("cpu"), False)
    (x, y), = itertools.islice(batches(dataset, 16, 0, 0, hw), 1)
    (x_ref, y_ref), = _loader_batches(dataset, 16, 0, 0, 1)
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and x.shape[-1] == 32


# ---------------------------------------------------------------------------- precision, by measurement


def test_bf16_is_kept_only_when_a_step_measures_faster_and_the_choice_is_cached(tmp_path, monkeypatch):
    from gan.train import precision

    monkeypatch.setenv("FORGER_CACHE", str(tmp_path))
    asked = []

    def timings(table):
        def measure():
            asked.append(table)
            return table
        return measure

    # a fake timing table for each kind of machine: AMX-like, AVX-512-bf16-like, a tie
    assert precision.choose("amx", timings({"fp32": 3.0, "bf16": 1.0}))[0] is True
    assert precision.choose("no-amx", timings({"fp32": 1.0, "bf16": 1.6}))[0] is False
    assert precision.choose("tie", timings({"fp32": 1.0, "bf16": 0.95}))[0] is False  # within MARGIN: fp32
    assert len(asked) == 3
    use, entry = precision.choose("amx", timings({"fp32": 1.0, "bf16": 9.0}))  # a restart reads the cache
    assert use is True and entry["source"] == "cache" and len(asked) == 3
    assert set(json.loads((tmp_path / "training.json").read_text())) == {"amx", "no-amx", "tie"}


def test_a_precision_far_slower_in_its_warm_up_is_not_timed_again(monkeypatch):
    """On a CPU that only emulates bf16, a large model's bf16 step took 29 s against fp32's 0.5 s, and the probe
    called it four times before training began. A step whose warm-up is over CUT times the fastest one's (and
    over CUT_MIN_S) is now called once and loses; steps within CUT, or short ones, are all timed REPEATS times."""
    import time

    from gan.train import precision

    monkeypatch.setattr(precision, "CUT_MIN_S", 0.1)

    time_steps = getattr(precision.time_steps, "__wrapped__", precision.time_steps)  # not the test's steering
    calls = {"fp32": 0, "bf16": 0}

    def step(name, seconds):
        def run():
            calls[name] += 1
            time.sleep(seconds)
        return run

    slow = time_steps({"fp32": step("fp32", 0.0), "bf16": step("bf16", 0.2)}, torch.device("cpu"))
    assert calls == {"fp32": 1 + precision.REPEATS, "bf16": 1}, calls
    assert slow["bf16"] >= 0.2 and slow["bf16"] > precision.CUT * slow["fp32"]
    assert precision.choose("slow-bf16", lambda: slow)[0] is False
    calls.update(fp32=0, bf16=0)
    time_steps({"fp32": step("fp32", 0.02), "bf16": step("bf16", 0.03)}, torch.device("cpu"))
    assert calls == {"fp32": 1 + precision.REPEATS, "bf16": 1 + precision.REPEATS}, calls
    calls.update(fp32=0, bf16=0)
    monkeypatch.setattr(precision, "CUT_MIN_S", 1.0)  # far slower, but short: a first call's one-time costs
    time_steps({"fp32": step("fp32", 0.0), "bf16": step("bf16", 0.2)}, torch.device("cpu"))
    assert calls == {"fp32": 1 + precision.REPEATS, "bf16": 1 + precision.REPEATS}, calls


def test_the_precision_probe_leaves_the_run_exactly_as_without_it(tmp_path, monkeypatch):
    """bf16 asked for: the trainer is copied and timed in both precisions before the first step. The run
    (its losses) is then the one it would be without the probe, in whichever precision was chosen."""
    from gan.train import precision
    from gan.train.loop import TrainConfig, train

    monkeypatch.setenv("FORGER_CACHE", str(tmp_path / "cache"))
    measured = []
    real_measure = precision.measure
    monkeypatch.setattr(precision, "measure", lambda *a: measured.append(1) or real_measure(*a))
    kw = dict(data="sketch2digit", steps=3, batch_size=4, sample_every=100)  # dropout: torch's global RNG
    probed = [e.losses for e in train(TrainConfig("pix2pix-sketch2digit", out=tmp_path / "a", **kw))]
    assert measured == [1]
    chosen = json.loads((tmp_path / "cache" / "training.json").read_text())
    (entry,) = chosen.values()
    plain = [e.losses for e in train(TrainConfig("pix2pix-sketch2digit", out=tmp_path / "b",
                                                 precision="bf16" if entry["bf16"] else "fp32", **kw))]
    assert measured == [1]  # the second run read the cache
    assert probed == plain


def test_losses_are_read_every_log_every_steps_and_still_checked():
    from gan.train.loop import TrainConfig, train

    events = list(train(TrainConfig("mnist-gan", data="mnist-offline", steps=7, batch_size=8, precision="fp32",
                                    log_every=3, sample_every=100, sample_seconds=None, out=Path(tempfile.mkdtemp()))))
    read = [e.step for e in events[:-1] if e.losses]
    assert read == [1, 3, 6, 7]  # step 1 (its grid), every 3rd step, and the last
    assert events[-1].losses and all(math.isfinite(v) for v in events[-1].losses.values())
