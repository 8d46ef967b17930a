"""Your handwriting, in a minute (``gan.train.finetune``) and the style measure that judges it
(``gan.evaluate.style``).

The main test fine-tunes the bundled class-conditional digit model on a synthetic hand: 20 real MNIST digits
(two of each, from the split no generator trains on) rewritten consistently with thick strokes and a strong
slant. After the recipe's fine-tuning its samples must move towards that hand in thickness and slant, and the
bundled digit classifier must still read at least 90% of them as the digit asked for. Numbers compared here are
measurements of one seeded run in eager fp32 on one torch thread (the *exact* promise of docs/testing.md: the
same run gives the same floats); the thresholds are well inside what the recipe reaches (the runs that chose it
are in docs/notes/handwriting.md).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import gan
from gan.evaluate.style import StyleStats, hand_report, slant, style_shift, synthetic_hand, thickness
from gan.train.finetune import MIN_DIGITS, Hand, finetune, hand_from_images, hand_models, read_hand

MODEL = hand_models()[0]


def _stroke(width: float, shear: float = 0.0, size: int = 28, scale: int = 8) -> torch.Tensor:
    """An antialiased bar `width` px wide and 16 px tall, sheared so that its top moves right by `shear` of its
    height (drawn at `scale` times the size, then averaged down): (1, 1, size, size) in [-1, 1]."""
    image = Image.new("L", (size * scale, size * scale))
    top, bottom, centre = 6 * scale, 22 * scale, (14 + width % 2 / 2) * scale  # edges on pixel edges
    dx, half = shear * (bottom - top) / 2, width * scale / 2
    ImageDraw.Draw(image).polygon([(centre - half + dx, top), (centre + half + dx, top),
                                   (centre + half - dx, bottom), (centre - half - dx, bottom)], fill=255)
    image = image.resize((size, size), Image.Resampling.BOX)
    return torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1)[None, None]


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
def test_thickness_is_the_width_of_a_drawn_stroke(width):
    assert thickness(_stroke(width))[0] == pytest.approx(width, abs=0.3)
    for shear in (0.25, 0.5) if width > 1 else ():  # on a slant, the width across the stroke, within 20% (the
        assert thickness(_stroke(width, shear))[0] == pytest.approx(width / math.hypot(1, shear), rel=0.2)  # grid)


@pytest.mark.parametrize("shear", [-0.5, 0.0, 0.25, 0.5])
def test_slant_is_the_angle_a_sheared_stroke_leans_right(shear):
    assert slant(_stroke(3, shear))[0] == pytest.approx(math.degrees(math.atan(shear)), abs=2.0)


def test_a_blank_image_has_no_thickness():
    assert thickness(-torch.ones(1, 1, 28, 28))[0] == 0


def test_style_shift_says_how_far_towards_the_hand_the_samples_moved():
    before, hand = StyleStats(100, 2.0, 1, 10.0, 5), StyleStats(20, 4.0, 1, 30.0, 5)
    shift = style_shift(before, StyleStats(100, 3.0, 1, 35.0, 5), hand)
    assert shift == {"thickness": pytest.approx(0.5), "slant": pytest.approx(1.25)}
    assert style_shift(before, hand, StyleStats(20, 2.01, 1, 10.5, 5)) == {}  # the hand is not different


def test_the_synthetic_hand_is_thicker_and_more_slanted_than_mnist_and_still_readable():
    from gan.evaluate.classifier import _shared_classifier, classify

    images, labels = synthetic_hand(20)
    real = gan.data.mnist_offline("heldout")[0][:, None].float() / 127.5 - 1
    assert images.shape == (200, 1, 28, 28) and labels.bincount().tolist() == [20] * 10
    assert thickness(images).mean() > thickness(real).mean() + 0.8
    assert slant(images).mean() > slant(real).mean() + 15
    read = (classify(_shared_classifier(), images)[0].argmax(1) == labels).float().mean()
    assert read >= 0.85


def test_a_folder_of_labelled_digits_becomes_a_framed_hand(tmp_path):
    """One subfolder per digit; a dark digit on light paper, small in a corner, is framed as MNIST frames its
    digits (light on black, centred by mass)."""
    for digit in "07":
        (tmp_path / digit).mkdir()
        paper = Image.new("L", (200, 150), 255)
        ImageDraw.Draw(paper).ellipse((10, 10, 40, 60), outline=0, width=5)
        paper.save(tmp_path / digit / "mine.png")
    (tmp_path / "7" / "notes.txt").write_text("not an image")
    hand = read_hand(tmp_path, MODEL)
    assert hand.labels.tolist() == [0, 7] and hand.images.shape == (2, 1, 28, 28)
    x = hand.images[0, 0]
    assert x.max() > 0.9 and x[0].max() < -0.9  # light strokes on a black border
    mass = (x + 1).sum(1)  # by row
    assert abs(float((mass * torch.arange(28)).sum() / mass.sum()) - 13.5) < 1.5


def test_a_hand_of_too_few_or_unknown_digits_is_refused_with_a_reason(tmp_path):
    images, labels = synthetic_hand(1)
    with pytest.raises(ValueError, match=f"at least {MIN_DIGITS}"):
        finetune(Hand(images[:MIN_DIGITS - 1], labels[:MIN_DIGITS - 1]), out=tmp_path)
    with pytest.raises(ValueError, match="unknown digit 'x'"):
        hand_from_images([Image.new("L", (28, 28))], ["x"], MODEL)
    with pytest.raises(ValueError, match="subfolder named by the digit"):
        read_hand(tmp_path, MODEL)
    with pytest.raises(ValueError, match="cannot learn a hand"):
        read_hand(tmp_path, "mnist-gan")


def test_a_synthetic_hand_moves_the_samples_towards_it_and_keeps_the_digit(tmp_path):
    """The done-when of issue 25 part 1, on the recipe as it ships."""
    images, labels = synthetic_hand(2)
    events = list(finetune(Hand(images, labels), out=tmp_path, precision="fp32", sample_seconds=None))
    last = events[-1]
    assert last.done and last.finished
    assert all(e.diversity is None or not e.diversity.alarm for e in events)  # the hand does not collapse it
    report = hand_report(MODEL, images, str(last.weights))
    assert report["before"]["requested_digit"] >= 0.95
    assert report["after"]["requested_digit"] >= 0.90, report
    assert report["shift"]["thickness"] >= 0.3 and report["shift"]["slant"] >= 0.3, report
    # the weights load like any trained run's, with the card saying what they were fine-tuned on
    assert len(gan.sample(MODEL, seed=0, n=2, label=7, weights=last.weights)) == 2
    card = json.loads((last.weights / "config.json").read_text())["training"]
    assert "a hand of 20 digits" in card["data"] and card["command"].startswith("python -m gan finetune")


def test_the_cli_fine_tunes_on_a_folder_and_reports_style_and_digits(tmp_path, capsys):
    from gan.__main__ import main

    images, labels = synthetic_hand(1)
    for i, (x, y) in enumerate(zip(images, labels)):
        (tmp_path / "hand" / str(int(y))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(((x[0] + 1) * 127.5).round().byte().numpy()).save(tmp_path / "hand" / str(int(y)) / f"{i}.png")
    assert main(["finetune", MODEL, str(tmp_path / "hand"), "--steps", "2", "--out", str(tmp_path / "run"),
                 "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "digit asked for" in out and "thickness: MNIST" in out and "slant: MNIST" in out
    report = json.loads((tmp_path / "run" / "weights" / MODEL / "handwriting.json").read_text())
    assert report["hand"]["n"] == 10 and 0 <= report["after"]["requested_digit"] <= 1
