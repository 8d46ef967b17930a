"""Training: every family learns, stops, crashes and resumes cleanly, exports loadable weights; the CLI."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from gan.train import TrainConfig, TrainingOutOfMemoryError, load_checkpoint, train
from gan.train.common import detach, evaluating, unwrap
from gan.train.loop import _loop, prepare
from conftest import ROOT


# ---------------------------------------------------------------------------- tiny datasets


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def photos(tmp_path):
    """Six small RGB photos of odd sizes (cropped and resized by the loader)."""
    rng = np.random.default_rng(0)
    for i in range(6):
        _save(tmp_path / "photos" / f"{i}.png", rng.integers(0, 256, (36, 40, 3), dtype=np.uint8))
    return tmp_path / "photos"


@pytest.fixture
def aligned(tmp_path):
    """The official pix2pix layout: train/*.png, each A|B side by side."""
    rng = np.random.default_rng(1)
    for i in range(6):
        a = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        _save(tmp_path / "aligned" / "train" / f"{i}.png", np.concatenate([a, 255 - a], 1))
    return tmp_path / "aligned"


@pytest.fixture
def unaligned(tmp_path):
    """The official CycleGAN layout: trainA/ and trainB/ of different sizes."""
    rng = np.random.default_rng(2)
    for domain, n in (("trainA", 5), ("trainB", 7)):
        for i in range(n):
            _save(tmp_path / "unaligned" / domain / f"{i}.png", rng.integers(0, 256, (28, 28), dtype=np.uint8))
    return tmp_path / "unaligned"


def _events(config, stop_after=None):
    stop = threading.Event()
    events = []
    for event in train(config, stop=stop):
        events.append(event)
        if stop_after is not None and event.step >= stop_after:
            stop.set()
    return events


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- every family learns and exports

FAMILIES = {  # model -> (data fixture or keyword, batch size)
    "mnist-gan": ("mnist-offline", 8),
    "mnist-dcgan": ("mnist-offline", 8),
    "cifar10-gan": ("photos", 2),
    "dcgan-faces": ("photos", 2),
    "pix2pix-sketch2digit": ("aligned", 2),
    "cyclegan-digits2mnist": ("digits2mnist", 2),  # labelled: its discriminators are class-conditional
}


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_trains_with_finite_losses_and_exports_weights_that_reproduce_its_generator(
        name, request, tmp_path, monkeypatch):
    monkeypatch.setattr("gan.train.noise.GRID_SIDE", 2)  # 2 x 2 grids: cifar10-gan's generator is slow on a CPU
    data, batch_size = FAMILIES[name]
    if data in ("photos", "aligned", "unaligned"):
        data = str(request.getfixturevalue(data))
    config = TrainConfig(name, data=data, steps=3, batch_size=batch_size, out=tmp_path / "run", sample_every=2,
                         ema=0.9 if name == "mnist-gan" else None)
    run = prepare(config)
    before = {n: _state(getattr(run.trainer, n)) for n in run.trainer.nets}
    events = list(_loop(run, None))

    assert [e.step for e in events] == [1, 2, 3, 3] and events[-1].done and not any(e.done for e in events[:-1])
    assert all(math.isfinite(v) for e in events for v in e.losses.values())
    assert events[1].grid is not None and events[-1].grid is not None  # sample_every=2
    assert events[0].grid is not None  # and a first grid at step 1, something to see at once
    for n in run.trainer.nets:  # every network learned something
        after = getattr(run.trainer, n).state_dict()
        assert any(not torch.equal(before[n][k], after[k]) for k in before[n] if after[k].is_floating_point()), n
    assert (tmp_path / "run" / "samples" / "step_000002.png").exists()

    spec = gan.model_info(name)
    exports = [(name, *(("G_A", "D_A") if spec["family"] == "cyclegan" else ("G", "D")))]
    if spec["reverse"]:
        exports.append((spec["reverse"], "G_B", "D_B"))  # CycleGAN exports both directions
    generators = run.final_generators()  # EMA copies get BatchNorm statistics of their own
    for export, attr, d_attr in exports:
        folder = tmp_path / "run" / "weights" / export
        assert {"model.safetensors", "discriminator.safetensors", "config.json", "README.md",
                "samples.png"} <= {p.name for p in folder.iterdir()}
        loaded = gan.load_generator(export, weights=folder)
        trained = generators[attr]
        if spec["task"] == "noise":
            x = (torch.randn(4, spec["latent_dim"]), torch.arange(4) if spec["classes"] else None)
        else:
            x = (torch.rand(1, spec["channels"], spec["image_size"], spec["image_size"]) * 2 - 1,)
        with torch.no_grad(), evaluating(trained):
            torch.testing.assert_close(loaded(*x), trained(*x))
        exported_d = gan.load_discriminator(export, weights=folder, pretrained=True).state_dict()
        trained_d = run.trainer.saved_discriminator(d_attr).state_dict()  # mnist-gan's: spectral norm baked in
        assert exported_d.keys() == trained_d.keys()
        for k, v in trained_d.items():  # the discriminator that was trained, tensor for tensor
            assert torch.equal(exported_d[k], v), (export, k)
    card = (tmp_path / "run" / "weights" / name / "README.md").read_text()
    assert "![samples](samples.png)" in card and "| steps | 3 of batch" in card


def test_ema_generator_is_what_gets_exported_with_batchnorm_statistics_of_its_own(tmp_path):
    run = prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=2, batch_size=4, ema=0.5, out=tmp_path))
    done = list(_loop(run, None))[-1]
    loaded = gan.load_generator("mnist-gan", weights=done.weights)
    exported = loaded.state_dict()
    for k, v in run.ema["G"].model.named_parameters():
        assert torch.equal(exported[k], v)
    assert not torch.equal(exported["main.0.weight"], run.trainer.G.state_dict()["main.0.weight"])
    # The running statistics were recomputed for the averaged weights: eval mode now matches what the
    # average does on a large batch in training mode, unlike the live model's statistics it carried.
    z = torch.randn(4096, 100, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        eval_out = loaded.eval()(z)
        batch_out = loaded.train()(z)
    assert (eval_out - batch_out).abs().mean() < 0.02
    stale = {k for k in exported if k.endswith("running_mean")}
    assert stale and all(not torch.equal(exported[k], run.ema["G"].model.state_dict()[k]) for k in stale)


def test_mnist_gan_recipe_normalises_d_smooths_its_real_target_decays_the_rate_and_exports_a_plain_d(tmp_path):
    """The MLP GAN's recipe (issue 27): D's linear layers spectrally normalised while it trains, its dropout off, its
    target for real digits 0.9, both learning rates constant for half the run then linearly to zero. The exported D is
    the registry's plain MLP with W / sigma baked in: the Expert loads it and it gives the trained D's logits."""
    run = prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=4, batch_size=4, out=tmp_path))
    D = unwrap(run.trainer.D)
    linears = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in linears)
    dropouts = [m for m in D.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0 for m in dropouts)  # the registry's D has them (0.3); the recipe turns them off
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        same = D.train()(x[:1].expand(8, -1, -1, -1))  # training mode: no dropout mask makes one copy differ
    torch.testing.assert_close(same, same[:1].expand(8))
    assert run.trainer._targets(4) == (0.9, 0.0)
    rates = []
    for _ in _loop(run, None):
        rates.append(run.trainer.opt_g.param_groups[0]["lr"])
    assert rates[0] == rates[1] == 2e-4 and rates[1] > rates[2] > rates[3] > 0, rates
    assert "spectral normalisation in D" in (tmp_path / "weights" / "mnist-gan" / "README.md").read_text()
    exported = gan.load_discriminator("mnist-gan", weights=tmp_path / "weights" / "mnist-gan", pretrained=True)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in exported.modules())
    with torch.no_grad(), evaluating(D):
        torch.testing.assert_close(exported.eval()(x), D(x))
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in
                   unwrap(prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, batch_size=4,
                                              out=tmp_path / "c")).trainer.D).modules())  # the recipe is mnist-gan's


def _exported_training(out, **recipe) -> dict:
    """The "training" facts of the weights a 1-step mnist-dcgan run with ``recipe`` exports."""
    done = list(_loop(prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, batch_size=8, out=out,
                                           **recipe)), None))[-1]
    return json.loads((done.weights / "config.json").read_text())["training"]


def test_mode_seeking_pairs_fakes_by_label_and_rewards_different_digits_for_different_latents(tmp_path):
    """A property, not the formula: pairs share a label and differ in z, and the term is positive and falls
    as the pair's images grow apart. fp32 pinned, so every machine checks the same arithmetic."""
    run = prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, batch_size=8, out=tmp_path,
                              precision="fp32"))
    trainer = run.trainer
    assert trainer.mode_seeking == 0.1  # the recipe's
    images, labels, z = trainer.generate((torch.zeros(8, 1, 28, 28), None))  # only the batch size matters
    # pairs are neighbours (2k, 2k + 1): same label, other latent
    assert torch.equal(labels[0::2], labels[1::2]) and (z[0::2] - z[1::2]).abs().min() > 0
    first = images[0::2].detach()

    def term(second: torch.Tensor) -> float:
        pair = torch.stack([first, second], 1).flatten(0, 1).requires_grad_()  # interleaved; a leaf for the G step
        return trainer.g_step(None, (pair, labels, z))["mode_seeking"].item()

    collapsed, near, far = term(first.clone()), term(first + 0.05), term(-first)
    assert 0 < far < near < collapsed  # the more alike a pair's images, the larger the penalty
    assert collapsed > 100 * near  # a collapsed pair (same image for two latents) is penalised hard
    off = prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, batch_size=8, out=tmp_path / "off",
                              mode_seeking=0))
    assert "mode_seeking" not in off.trainer.g_step(None, off.trainer.generate((torch.zeros(8, 1, 28, 28), None)))
    with pytest.raises(ValueError, match="class-conditional"):
        prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=1, out=tmp_path / "x", mode_seeking=0.1))
    training = _exported_training(tmp_path / "cmd", mode_seeking=0.2)
    assert "--mode-seeking 0.2" in training["command"] and "mode-seeking loss (MSGAN) weight 0.2" in training["recipe"]


def test_the_class_loss_teaches_d_to_name_real_digits_and_g_to_make_the_requested_one(tmp_path):
    """P2GAN's classification loss: D's class logits are its projection read as a classifier; D is penalised
    for misnaming real digits, G for fakes D does not name as requested. fp32 pinned."""
    from gan.models.cdcgan import Discriminator

    d = Discriminator(ndf=8)
    x, labels = torch.randn(4, 1, 28, 28), torch.tensor([0, 3, 3, 9])
    logits, classes = d(x, labels, classes=True)
    assert torch.allclose(logits, d(x, labels)) and classes.shape == (4, 10)
    assert torch.allclose(classes[torch.arange(4), labels], d(x, labels) - d(x), atol=1e-5)  # <embed(y), h>

    run = prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, batch_size=8, out=tmp_path,
                              precision="fp32"))
    trainer = run.trainer
    assert trainer.class_loss == 0.3  # the recipe's
    real = (torch.zeros(8, 1, 28, 28), torch.arange(8))
    fake = trainer.generate(real)
    d_losses, g_losses = trainer.d_step(real, detach(fake)), trainer.g_step(real, fake)
    assert d_losses["D_class"] > 0 and g_losses["G_class"] > 0
    off = prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, batch_size=8, out=tmp_path / "off",
                              class_loss=0))
    fake = off.trainer.generate(real)
    assert "D_class" not in off.trainer.d_step(real, detach(fake)) and "G_class" not in off.trainer.g_step(real, fake)
    with pytest.raises(ValueError, match="class-conditional"):
        prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=1, out=tmp_path / "x", class_loss=0.3))
    training = _exported_training(tmp_path / "cmd", class_loss=1)
    assert "--class-loss 1" in training["command"] and "classification loss (P2GAN) weight 1" in training["recipe"]


def test_minibatch_std_lets_the_discriminator_see_a_batch_without_variety():
    from gan.models.cdcgan import Discriminator, minibatch_std

    same, varied = torch.ones(8, 4, 3, 3), torch.randn(8, 4, 3, 3)
    assert minibatch_std(same)[:, -1].abs().max() < 1e-3  # no variety: the extra map is ~0
    assert minibatch_std(varied)[:, -1].min() > 0.5
    assert minibatch_std(torch.randn(6, 4, 3, 3)).shape == (6, 5, 3, 3)  # groups of 3 when 4 does not divide 6
    torch.manual_seed(0)
    d = Discriminator(minibatch_std=True).eval()
    one = torch.rand(1, 1, 28, 28) * 2 - 1
    labels = torch.zeros(8, dtype=torch.long)
    with torch.no_grad():
        assert not torch.allclose(d(one.repeat(8, 1, 1, 1), labels)[0], d(torch.cat([one, torch.rand(7, 1, 28, 28)]), labels)[0])


def test_cyclegan_with_class_conditional_discriminators_needs_labels_and_judges_by_label(unaligned, tmp_path,
                                                                                         monkeypatch):
    with pytest.raises(ValueError, match="labelled data"):  # before any step
        prepare(TrainConfig("cyclegan-digits2mnist", data=str(unaligned), steps=1, out=tmp_path / "x"))
    run = prepare(TrainConfig("cyclegan-digits2mnist", steps=1, batch_size=3, out=tmp_path / "run"))
    d = run.trainer.D_A.eval()
    image = torch.rand(1, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        one, seven = d(image, torch.tensor([1])), d(image, torch.tensor([7]))
    assert one.shape == (1, 1, 5, 5) and not torch.allclose(one, seven)  # the same image, judged by its label
    with pytest.raises(ValueError, match="class-conditional"):
        d(image)
    # The pool hands back stored fakes with the labels they were made with.
    from gan.train.cyclegan import ImagePool

    pool = ImagePool(2, torch.Generator().manual_seed(0))
    fakes = torch.arange(6.0).view(6, 1, 1, 1)
    images, labels = pool.query(fakes, torch.arange(6))
    assert torch.equal(images.flatten().long(), labels)
    # The official recipe (unlabelled folders, plain PatchGANs) is unchanged.
    spec = gan.registry.REGISTRY["cyclegan-digits2mnist"]
    plain = {k: v for k, v in spec.discriminator.items() if k != "num_classes"}
    monkeypatch.setitem(gan.registry.REGISTRY, spec.name, dataclasses.replace(spec, discriminator=plain))
    events = _events(TrainConfig(spec.name, data=str(unaligned), steps=2, batch_size=2, out=tmp_path / "plain"))
    assert events[-1].done and all(math.isfinite(v) for e in events for v in e.losses.values())


def test_cyclegan_image_pool_and_identity_loss_are_the_recipe_and_can_be_turned_off(tmp_path):
    """The paper's pool of past fakes and identity loss are on by default; pool=False and identity=0 turn them
    off (the plain loop benchmarks/training.py compares the trainer with), the exported command and recipe say
    so, and a resumed run keeps the choice."""
    kw = dict(steps=1, batch_size=2, precision="fp32", sample_every=100)
    run = prepare(TrainConfig("cyclegan-digits2mnist", out=tmp_path / "recipe", **kw))
    events = list(_loop(run, None))
    assert {"idt_A", "idt_B"} <= events[0].losses.keys()
    assert len(run.trainer.pool_a.images) == len(run.trainer.pool_b.images) == 2  # the first fakes are kept
    run = prepare(TrainConfig("cyclegan-digits2mnist", out=tmp_path / "off", pool=False, identity=0, **kw))
    events = list(_loop(run, None))
    assert not {"idt_A", "idt_B"} & events[0].losses.keys() and all(math.isfinite(v) for v in events[0].losses.values())
    assert not run.trainer.pool_a.images and not run.trainer.pool_b.images  # D saw this step's fakes only
    training = json.loads((events[-1].weights / "config.json").read_text())["training"]
    assert "--no-pool --identity 0" in training["command"]
    assert "identity 0 * 10" in training["recipe"] and "no image pool" in training["recipe"]
    resumed = prepare(TrainConfig("cyclegan-digits2mnist", out=tmp_path / "off", resume=True, steps=2))
    assert resumed.trainer.pool is False and resumed.trainer.identity == 0
    with pytest.raises(ValueError, match="CycleGAN"):
        prepare(TrainConfig("mnist-dcgan", data="mnist-offline", steps=1, out=tmp_path / "x", pool=True))


def test_cyclegan_runs_a_network_on_two_sets_of_images_at_once_as_on_each_alone(tmp_path):
    """A CycleGAN step judges real and fake images in one pass of each discriminator, and runs the cycle and
    the identity images through a generator together: each image must get what it gets alone (InstanceNorm
    normalises each image on its own; a norm over the batch would break this). Within fp32 rounding: oneDNN
    may block a batch of 5 differently from batches of 2 and 3."""
    from gan.train.cyclegan import CycleGANTrainer

    run = prepare(TrainConfig("cyclegan-digits2mnist", steps=1, batch_size=2, precision="fp32", out=tmp_path))
    torch.manual_seed(0)
    x, y = torch.rand(2, 1, 28, 28) * 2 - 1, torch.rand(3, 1, 28, 28) * 2 - 1
    x_labels, y_labels = torch.tensor([3, 7]), torch.tensor([0, 1, 9])
    with torch.no_grad():
        for net, labels in ((run.trainer.G_A, (None, None)), (run.trainer.D_A, (x_labels, y_labels))):
            alone = [CycleGANTrainer._judge(net, images, lab) for images, lab in zip((x, y), labels)]
            together = CycleGANTrainer._together(net, x, y, *labels)
            for a, b in zip(alone, together):
                torch.testing.assert_close(b, a)


# ---------------------------------------------------------------------------- stop, crash, resume


@pytest.mark.parametrize("name,data", [
    ("mnist-dcgan", "mnist-offline"),  # BatchNorm, class labels, Adam
    ("pix2pix-sketch2digit", "sketch2digit"),  # dropout (torch's global RNG), LR schedule
    ("cyclegan-digits2mnist", "digits2mnist"),  # image pool, per-epoch A/B pairing, two optimizers
])
def test_resuming_a_stopped_run_gives_the_same_losses_as_an_uninterrupted_run(name, data, tmp_path, monkeypatch):
    monkeypatch.setattr("gan.train.cyclegan.POOL_SIZE", 3)  # full after one step: the pool's draws matter
    kw = dict(data=data, steps=4, batch_size=3, precision="fp32", sample_every=100)
    whole = _events(TrainConfig(name, out=tmp_path / "whole", **kw))

    stopped = _events(TrainConfig(name, out=tmp_path / "part", **kw), stop_after=2)
    assert [e.step for e in stopped] == [1, 2, 2] and stopped[-1].done
    assert stopped[-1].checkpoint == tmp_path / "part" / "checkpoint.pt" and "resume" in stopped[-1].message
    assert load_checkpoint(stopped[-1].checkpoint)["step"] == 2

    resumed = _events(TrainConfig(name, out=tmp_path / "part", resume=True, **kw))
    assert [e.step for e in resumed] == [3, 4, 4]
    logged = [json.loads(line) for line in (tmp_path / "part" / "losses.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logged] == [1, 2, 3, 4]  # the losses log goes on from the checkpoint
    assert logged[2] == {"step": 3, **resumed[0].losses}
    for a, b in zip(whole[2:4], resumed[:2]):
        assert a.losses.keys() == b.losses.keys()
        for k in a.losses:
            assert abs(a.losses[k] - b.losses[k]) <= 1e-6, (k, a.step, a.losses[k], b.losses[k])


def test_resuming_a_run_with_ema_exports_the_same_average_as_an_uninterrupted_run(tmp_path):
    """The EMA state is part of the run: a resumed run's exported (averaged) generator is the
    uninterrupted run's. A decay of 0.5 forgets the start fast, so any lost average shows."""
    kw = dict(data="mnist-offline", steps=4, batch_size=4, ema=0.5, precision="fp32", sample_every=100)
    whole = _events(TrainConfig("mnist-gan", out=tmp_path / "whole", **kw))[-1]
    _events(TrainConfig("mnist-gan", out=tmp_path / "part", **kw), stop_after=2)
    resumed = _events(TrainConfig("mnist-gan", out=tmp_path / "part", resume=True, **kw))[-1]
    assert whole.step == resumed.step == 4
    a = gan.load_generator("mnist-gan", weights=whole.weights).state_dict()
    b = gan.load_generator("mnist-gan", weights=resumed.weights).state_dict()
    raw = load_checkpoint(tmp_path / "whole")["trainer"]
    assert any(not torch.equal(a[k], v) for k, v in raw["nets"]["G"].items() if k in a)  # exported: the average
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)


def _failing_at(run, call, error):
    g_step, calls = run.trainer.g_step, []

    def failing(batch, fake):
        calls.append(1)
        if len(calls) == call:
            raise error
        return g_step(batch, fake)

    run.trainer.g_step = failing


def test_keyboard_interrupt_mid_step_saves_a_checkpoint_and_weights_that_load(tmp_path):
    run = prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=10, batch_size=4, out=tmp_path))
    _failing_at(run, 3, KeyboardInterrupt())
    events = list(_loop(run, None))
    assert events[-1].done and events[-1].step == 2 and "interrupted at step 2" in events[-1].message
    assert load_checkpoint(tmp_path)["step"] == 2
    gan.load_generator("mnist-gan", weights=events[-1].weights)
    resumed = _events(TrainConfig("mnist-gan", out=tmp_path, resume=True))  # the run's recipe comes back
    assert [e.step for e in resumed][:1] == [3] and resumed[-1].step == 10


def test_a_crash_leaves_the_last_periodic_checkpoint_whole_and_resumable(tmp_path):
    run = prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=6, batch_size=4, out=tmp_path,
                              checkpoint_every=2))
    _failing_at(run, 4, RuntimeError("boom"))
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        for event in _loop(run, None):
            seen.append(event)
    assert seen[1].checkpoint == tmp_path / "checkpoint.pt" and seen[2].checkpoint is None
    assert load_checkpoint(tmp_path)["step"] == 2
    assert not list(tmp_path.glob(".*.tmp"))
    assert [e.step for e in _events(TrainConfig("mnist-gan", out=tmp_path, resume=True))] == [3, 4, 5, 6, 6]


def test_out_of_memory_says_to_use_a_smaller_batch(tmp_path):
    run = prepare(TrainConfig("mnist-gan", data="mnist-offline", steps=2, batch_size=8, out=tmp_path))
    _failing_at(run, 1, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    with pytest.raises(TrainingOutOfMemoryError, match="--batch-size 4"):
        list(_loop(run, None))


# ---------------------------------------------------------------------------- errors before the first step


def test_bad_data_or_config_fails_at_the_call_before_any_step(tmp_path):
    (tmp_path / "empty").mkdir()
    paired = tmp_path / "paired"
    _save(paired / "A" / "cat.png", np.zeros((32, 32), np.uint8))
    _save(paired / "B" / "dog.png", np.zeros((32, 32), np.uint8))
    _save(tmp_path / "onlyA" / "trainA" / "0.png", np.zeros((28, 28), np.uint8))
    out = tmp_path / "out"
    cases = [
        (TrainConfig("dcgan-faces", data=str(tmp_path / "empty"), out=out), "holds no images"),
        (TrainConfig("pix2pix-sketch2digit", data=str(paired), out=out), "do not pair up"),
        (TrainConfig("cyclegan-digits2mnist", data=str(tmp_path / "onlyA"), out=out), "trainB"),
        (TrainConfig("dcgan-faces", out=out), "pass data"),  # its own dataset is not bundled
        (TrainConfig("mnist-dcgan", data="sketch2digit", out=out), "for 'paired' models"),
        (TrainConfig("mnist-gan", steps=3, epochs=1, out=out), "not both"),
        (TrainConfig("mnist-gan", loss="wasserstein", out=out), "unknown loss"),
        (TrainConfig("mnist-gan", resume=True, out=out), "no checkpoint to resume"),
    ]
    for config, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            train(config)  # raises at the call: no event, no step
    assert not out.exists()


def test_epochs_count_passes_over_the_data(tmp_path):
    events = _events(TrainConfig("mnist-gan", data="mnist-offline", classes=["7"], epochs=0.05, batch_size=5,
                                 out=tmp_path))
    assert events[-1].total == 3  # 5% of the 250 sevens, 5 at a time


# ---------------------------------------------------------------------------- push and the command line


def test_push_uploads_the_weights_folder_which_downloads_back_and_loads_from_the_hub(tmp_path, monkeypatch,
                                                                                   fake_hub):
    """`python -m gan push` through the real huggingface_hub client against the local Hub's write API."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    from gan.__main__ import main

    done = _events(TrainConfig("mnist-gan", data="mnist-offline", steps=1, batch_size=4, out=tmp_path / "run"))[-1]
    metrics = {"model": "mnist-gan", "metrics": {"fid": {"value": 12.5}}}
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setenv("HF_TOKEN", "hf_me")  # the CLI's default token, read at call time
    assert main(["push", str(tmp_path / "run"), "--repo", "me/mnist-gan", "--private"]) == 0

    card = (done.weights / "README.md").read_text()
    assert "## Metrics" in card and "12.5" in card and "![samples](samples.png)" in card and "mnist-offline" in card
    commit = fake_hub.commits[-1]
    assert commit["repo_id"] == "me/mnist-gan" and commit["summary"] == "Upload Forger weights"
    local = sorted(p.name for p in done.weights.iterdir())
    assert commit["files"] == local and {"model.safetensors", "discriminator.safetensors", "config.json",
                                         "README.md", "samples.png", "metrics.json"} <= set(local)
    for name in local:  # what was pushed is what comes back
        assert Path(hf_hub_download("me/mnist-gan", name, token="hf_me")).read_bytes() == \
            (done.weights / name).read_bytes(), name
    with pytest.raises(RepositoryNotFoundError):  # --private: nothing without the token
        hf_hub_download("me/mnist-gan", "model.safetensors", token=False, cache_dir=tmp_path / "anonymous")

    spec = gan.registry.get_spec("mnist-gan")
    monkeypatch.setitem(gan.registry.REGISTRY, "mnist-gan",
                        dataclasses.replace(spec, sources=(gan.registry.Source("hub", "me/mnist-gan"),)))
    from_hub = gan.load_generator("mnist-gan").state_dict()
    for k, v in gan.load_generator("mnist-gan", weights=done.weights).state_dict().items():
        assert torch.equal(from_hub[k], v), k


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "gan", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_cli_trains_on_the_cores_other_processes_leave_idle():
    """``python -m gan train`` without --threads uses as many threads as cores are idle (at least one): with
    every core kept busy by another process, one thread, which does not wait on a thread that shares a core.
    --threads is taken as given."""
    from gan import hardware
    from gan.train.cli import cpu_threads

    cores = os.cpu_count() or 1
    before = torch.get_num_threads()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.5)  # the busy loops running
        assert hardware.idle_cores(0.5) < 0.5
        torch.set_num_threads(max(2, cores))
        assert cpu_threads(None, "cpu") == 1 == torch.get_num_threads()
        assert cpu_threads(3, "cpu") == 3 == torch.get_num_threads()
    finally:
        for p in busy:
            p.kill()
            p.wait()
        torch.set_num_threads(before)


def test_cli_trains_end_to_end_and_the_weights_sample(tmp_path):
    proc = _cli("train", "mnist-dcgan", "--data", "mnist-offline", "--steps", "3", "--batch-size", "8",
                "--sample-every", "2", "--workers", "1", "--out", str(tmp_path))
    stdout, stderr = proc.communicate(timeout=600)  # generous: seconds here, minutes on a loaded 2-core machine
    assert proc.returncode == 0, stderr
    assert "trained mnist-dcgan for 3 steps" in stdout and "3/3" in stderr  # the tqdm bar
    assert (tmp_path / "samples" / "step_000002.png").exists() and (tmp_path / "samples" / "step_000003.png").exists()
    config = json.loads((tmp_path / "weights" / "mnist-dcgan" / "config.json").read_text())
    assert config["training"]["steps"] == 3 and config["training"]["data"] == "mnist-offline"
    gan.sample("mnist-dcgan", seed=0, n=2, label=3, weights=tmp_path / "weights" / "mnist-dcgan")


def test_cli_ctrl_c_saves_a_checkpoint_and_exits_130_with_the_resume_command(tmp_path, capsys):
    from gan.__main__ import main

    def press_ctrl_c_once_training():  # the CLI's handler is installed before the first step
        deadline = time.monotonic() + 600
        while not (tmp_path / "samples" / "step_000002.png").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_once_training, daemon=True).start()
    code = main(["train", "mnist-gan", "--data", "mnist-offline", "--steps", "100000", "--batch-size", "4",
                 "--sample-every", "1", "--out", str(tmp_path)])
    stderr = capsys.readouterr().err
    assert code == 130, stderr
    assert f"interrupted; checkpoint saved to {tmp_path / 'checkpoint.pt'}" in stderr and "--resume" in stderr
    assert 2 <= load_checkpoint(tmp_path)["step"] < 100000
    assert (tmp_path / "weights" / "mnist-gan" / "model.safetensors").exists()


def test_a_time_budget_ends_the_run_cleanly_and_grids_come_early_and_by_time(tmp_path):
    """--minutes: the run stops when its time is up (checkpoint and export as usual); the first grid comes
    after the first step, then at least every sample_seconds, however slow a step is."""
    events = list(train(TrainConfig("mnist-gan", data="mnist-offline", steps=100_000, minutes=0.02, batch_size=8,
                                    out=tmp_path, precision="fp32", sample_every=10_000, sample_seconds=0.3)))
    done = events[-1]
    assert done.done and 0 < done.step < 100_000 and (done.weights / "model.safetensors").exists()
    assert done.finished and "time budget" in done.message  # a run that used its time is not "interrupted"
    grids = [e.step for e in events[:-1] if e.grid is not None]
    assert grids[0] == 1 and len(grids) >= 2  # at step 1, then by time (sample_every alone would give none)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == done.step
