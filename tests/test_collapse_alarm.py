"""The collapse alarm (``gan.train.diversity``): a diversity figure of the live samples at every sample grid,
and a plain warning when it falls.

Both ways on real training runs: a deliberately collapsing configuration (the 2014 MLP GAN at 250 times its
recipe's learning rate) sees the alarm; the same model and steps at the recipe's rate, and the class-conditional
digit model's recipe, do not. The runs are seeded eager fp32 on one thread (the *exact* promise of
docs/testing.md); here the collapsing run's spread ends at 0.00 against the alarm's 0.34, and the healthy ones
only rise (docs/notes/collapse-alarm.md has the runs that chose the thresholds).
"""
from __future__ import annotations

import json

import pytest
import torch

from gan.registry import get_spec
from gan.train import TrainConfig, train
from gan.train.diversity import FALL, LOW, DiversityMonitor
from gan.train.finetune import hand_models

MODEL = hand_models()[0]  # the class-conditional digit model (the Train tab's default)
MLP = "mnist-gan"  # the fully connected GAN of 2014: a very high learning rate collapses it in a few dozen steps


def _run(tmp_path, model: str, steps: int, **changes) -> list:
    """The collapse alarm's measurements of a real seeded run, one every 6 steps."""
    config = TrainConfig(model=model, data="mnist-offline", steps=steps, out=tmp_path, precision="fp32",
                         sample_every=6, sample_seconds=None, **changes)
    return [e.diversity for e in train(config) if e.diversity is not None]


def test_a_collapsing_run_sets_off_the_alarm_and_healthy_ones_do_not(tmp_path):
    """The same model and steps, only the learning rate differs: the recipe's (2e-4) stays quiet, 250 times it
    (D's too, at the recipe's ratio) collapses it to one shape and sets the alarm off. The digit model's recipe
    stays quiet too."""
    for model, steps in ((MLP, 100), (MODEL, 60)):
        healthy = _run(tmp_path / f"healthy-{model}", model, steps)
        assert len(healthy) >= 10 and not any(d.alarm for d in healthy), [d.as_dict() for d in healthy]
    collapsing = _run(tmp_path / "collapsing", MLP, 100, lr=0.05)
    alarms = [d for d in collapsing if d.alarm]
    assert alarms, [d.as_dict() for d in collapsing]
    first = alarms[0]
    assert first.step > collapsing[0].step  # a fall, seen after the first measurement
    assert "Collapse alarm" in first.alarm and "as varied as real images" in first.alarm
    assert first.spread < LOW and first.spread < FALL * max(d.spread for d in collapsing if d.step < first.step)
    assert collapsing[-1].alarm  # and it stays collapsed
    # the measurements are in the run folder too, one line per grid
    lines = [json.loads(line) for line in (tmp_path / "collapsing" / "diversity.jsonl").read_text().splitlines()]
    assert [row["step"] for row in lines] == [d.step for d in collapsing]
    assert sum(bool(row["alarm"]) for row in lines) == len(alarms)


def test_the_figure_is_one_for_real_images_and_falls_for_copies_of_one():
    """The monitor's reference is real digits: real digits of the same classes read as about 1, one digit
    repeated for every latent as 0, with one class read for all of them."""
    from gan import data
    from gan.evaluate.metrics import interleaved

    spec = get_spec(MODEL)
    images, labels = data.mnist_offline("train")
    order = interleaved(labels)  # 0, 1, ..., 9, 0, ...
    real, labels = images[order][:, None].float() / 127.5 - 1, labels[order]
    monitor = DiversityMonitor(spec, real[:100], labels[:100])

    class Copies(torch.nn.Module):
        """A 'generator' that gives real digits of the asked class (others than the reference's), or one digit."""

        def __init__(self, one: bool) -> None:
            super().__init__()
            self.one, self.weight = one, torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, asked):
            if self.one:
                return real[:1].expand(len(z), -1, -1, -1)
            pool = {int(c): real[100:][labels[100:] == c] for c in asked.unique()}
            return torch.stack([pool[int(c)][i] for i, c in enumerate(asked)])

    varied = monitor.measure(Copies(one=False), step=1)
    assert 0.8 < varied.spread < 1.25 and varied.classes > 8 and not varied.alarm
    one = monitor.measure(Copies(one=True), step=2)
    assert one.spread == pytest.approx(0.0, abs=1e-6) and one.classes == pytest.approx(1.0)
    assert max(one.histogram) == 100 and "Collapse alarm" in one.alarm and "1.0 kinds of digit" in one.alarm


def test_models_without_the_digit_classifier_are_measured_in_pixels():
    spec = get_spec("dcgan-faces")
    real = torch.rand(20, 3, 64, 64) * 2 - 1
    monitor = DiversityMonitor(spec, real)
    assert monitor.space == "pixels" and monitor.labels is None

    class Noise(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, labels=None):
            return torch.rand(len(z), 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1

    found = monitor.measure(Noise(), step=1)
    assert found.histogram is None and found.classes is None and 0.9 < found.spread < 1.1


def test_models_without_the_classifier_are_measured_on_their_sample_grid_with_no_extra_forward_pass(tmp_path):
    """A face model's alarm reads the grid it already drew (its generator may be costly): one generator call per
    step and one per grid, none for the alarm."""
    import numpy as np
    from PIL import Image

    from gan.train.loop import _loop, prepare

    rng = np.random.default_rng(0)
    (tmp_path / "faces").mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "faces" / f"{i}.png")
    run = prepare(TrainConfig("dcgan-faces", data=str(tmp_path / "faces"), steps=3, batch_size=4, out=tmp_path / "run",
                              precision="fp32", sample_every=1, sample_seconds=None, workers=0))
    calls = []
    run.trainer.G.register_forward_hook(lambda *_: calls.append(1))
    events = list(_loop(run, None))
    measured = [e.diversity for e in events if e.diversity is not None]
    grids = [e for e in events if e.grid is not None]
    assert len(measured) == len(grids) == 3 and all(d.space == "pixels" and d.histogram is None for d in measured)
    assert len(calls) == 3 + len(grids)  # the steps' fakes and the grids; the alarm drew nothing itself
