"""The expert (gan.judge): the bundled discriminators tell real digits from clearly wrong images,
place a score among real and generated images, judge under every class, and map patches at the
input's own size."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

import gan
from gan import data
judge = gan.judge

DIGIT_MODELS = ("mnist-dcgan", "mnist-gan")


def _real(k: int = 40, offset: int = 1000) -> list[Image.Image]:
    images, _ = data.mnist_offline("heldout")
    return [Image.fromarray(a.numpy(), "L") for a in images[offset:offset + k]]


def _wrong(k: int = 40) -> list[Image.Image]:
    """Clearly wrong: uniform noise, blank canvases, real digits with their pixels shuffled, heavily blurred."""
    rng = np.random.default_rng(0)
    reals = _real(k, offset=1500)
    out = []
    for i in range(k):
        kind = i % 4
        if kind == 0:
            out.append(Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L"))
        elif kind == 1:
            out.append(Image.new("L", (28, 28), 0 if i % 8 == 1 else 255))
        elif kind == 2:
            a = np.asarray(reals[i]).ravel().copy()
            rng.shuffle(a)
            out.append(Image.fromarray(a.reshape(28, 28), "L"))
        else:
            out.append(reals[i].filter(ImageFilter.GaussianBlur(4)))
    return out


def auc(positive: list[float], negative: list[float]) -> float:
    """ROC AUC: the chance that a positive scores above a negative (ties count half)."""
    p, n = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_the_expert_tells_real_digits_from_clearly_wrong_images(name):
    real = [v.logit for v in judge(name, _real())]
    wrong = [v.logit for v in judge(name, _wrong())]
    assert auc(real, wrong) >= 0.95, auc(real, wrong)


def test_corruptions_keep_the_shape_and_break_the_digit():
    from gan.train import expert

    x = torch.from_numpy(np.stack([np.asarray(i) for i in _real(8)])).float()[:, None] / 127.5 - 1
    g = torch.Generator().manual_seed(0)
    tiles = expert.jigsaw(x, g)
    assert tiles.shape == x.shape and not torch.equal(tiles, x)
    assert torch.equal(tiles.flatten(1).sort(1).values, x.flatten(1).sort(1).values)  # the same pixels, moved
    gone = expert.erased(x, g)
    assert ((gone == -1).float().mean((1, 2, 3)) >= 0.25).all()  # at least a quarter of each image is background
    assert torch.equal(expert.stitched(x, x.flip(0))[..., :14], x[..., :14])
    out = expert.corrupted(x, 8, g)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1


def test_refining_an_expert_writes_a_complete_weights_folder(tmp_path):
    from gan.train.expert import refine_expert

    path = refine_expert("mnist-gan", tmp_path / "expert", steps=3, batch_size=8, progress=False)
    assert path.name == "discriminator.safetensors"
    assert {"model.safetensors", "config.json"} <= {p.name for p in path.parent.iterdir()}
    config = json.loads((path.parent / "config.json").read_text())
    assert config["expert"]["steps"] == 3 and config["model"] == "mnist-gan"
    bundled = gan.load_discriminator("mnist-gan", pretrained=True).state_dict()
    refined = gan.load_discriminator("mnist-gan", weights=path.parent, pretrained=True).state_dict()
    assert bundled.keys() == refined.keys() and any(not torch.equal(bundled[k], refined[k]) for k in bundled)
    assert judge("mnist-gan", _real(2), weights=str(path.parent))[0].real_percentile is not None


def test_an_expert_that_judges_groups_is_not_refined_on_single_images(tmp_path):
    from gan.train.expert import refine_expert

    with pytest.raises(ValueError, match="minibatch std"):
        refine_expert("mnist-dcgan", tmp_path, steps=1, progress=False)


def test_auc_is_the_chance_a_positive_outscores_a_negative():
    assert auc([2, 3], [0, 1]) == 1.0 and auc([0], [1]) == 0.0 and auc([1], [1]) == 0.5


def test_a_verdict_places_the_score_among_real_and_generated_images():
    v = judge("mnist-dcgan", _real(1))[0]
    assert 0 <= v.real_percentile <= 100 and 0 <= v.fake_percentile <= 100
    assert 0 < v.probability < 1 and v.probability == pytest.approx(1 / (1 + np.exp(-v.logit)), rel=1e-5)
    assert "more real than" in v.sentence
    blank = judge("mnist-dcgan", Image.new("L", (28, 28), 0))[0]
    assert blank.real_percentile < v.real_percentile  # a blank canvas looks less real than a real digit


def test_conditional_models_are_judged_under_every_class():
    images, labels = data.mnist_offline("heldout")
    seven = Image.fromarray(images[labels == 7][3].numpy(), "L")
    v = judge("mnist-dcgan", seven)[0]
    assert len(v.per_class) == 10 and v.label == 7  # by default, judged as the digit it shows
    assert v.probability == pytest.approx(v.per_class[7], rel=1e-4)
    under_one = judge("mnist-dcgan", seven, label=1)[0]
    assert under_one.label == 1 and under_one.probability == pytest.approx(v.per_class[1], rel=1e-4)


@pytest.mark.parametrize("name,size", [("cyclegan-digits2mnist", (90, 60)), ("pix2pix-sketch2digit", (50, 120))])
def test_patchgan_heatmaps_have_the_inputs_size_and_aspect(name, size):
    img = Image.new("L", size, 255)
    img.paste(0, (size[0] // 3, size[1] // 4, size[0] // 2, 3 * size[1] // 4))
    v = judge(name, img)[0]
    assert v.heatmap is not None and v.heatmap.size == size
    assert v.patches.ndim == 2 and ((v.patches >= 0) & (v.patches <= 1)).all()
    assert v.probability == pytest.approx(float(torch.sigmoid(torch.tensor(v.logit))), rel=1e-5)


def test_a_model_without_a_discriminator_says_so():
    with pytest.raises(gan.WeightsUnavailableError, match="discriminator"):
        judge("dcgan-faces", Image.new("RGB", (64, 64)))


def test_the_cli_judges_images(tmp_path, capsys):
    from gan.__main__ import main

    _real(1)[0].save(tmp_path / "digit.png")
    assert main(["judge", "mnist-dcgan", str(tmp_path / "digit.png")]) == 0
    out = capsys.readouterr().out
    assert "digit.png" in out and "P(real)" in out and "more real than" in out


def test_the_cli_refines_an_expert(tmp_path, capsys):
    from gan.__main__ import main

    assert main(["refine-expert", "mnist-gan", "--out", str(tmp_path / "e"), "--steps", "2"]) == 0
    assert (tmp_path / "e" / "discriminator.safetensors").exists() and "judge mnist-gan" in capsys.readouterr().out


@pytest.mark.parametrize("model,data_name", [("mnist-gan", "mnist-offline"), ("pix2pix-sketch2digit", "sketch2digit"),
                                             ("cyclegan-digits2mnist", "digits2mnist")])
def test_training_reports_the_experts_belief_in_real_and_fake_images(tmp_path, model, data_name):
    """GAN Lab's two curves: D(real) and D(fake), in [0, 1], logged at every step by every family."""
    from gan.train import TrainConfig, train

    events = list(train(TrainConfig(model, data=data_name, steps=12, batch_size=8, out=tmp_path, precision="fp32",
                                    sample_every=100)))
    steps = [e for e in events if not e.done]
    assert len(steps) == 12
    for e in steps:
        assert 0 <= e.losses["D(real)"] <= 1 and 0 <= e.losses["D(fake)"] <= 1
    if model == "mnist-gan":  # the expert learns to tell them apart within a few steps
        late = steps[-6:]
        assert np.mean([e.losses["D(real)"] for e in late]) > np.mean([e.losses["D(fake)"] for e in late])


def test_belief_is_the_probability_for_logits_and_the_clamped_prediction_for_lsgan():
    from gan.train.common import belief

    assert float(belief("bce", torch.tensor([0.0, 0.0]))) == pytest.approx(0.5)
    assert float(belief("hinge", torch.tensor([20.0]))) == pytest.approx(1.0)
    assert float(belief("lsgan", torch.tensor([1.4, 0.2]))) == pytest.approx(0.6)
