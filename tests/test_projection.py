"""Projection (gan.project): a person's own image into a generator's latent space, then edited and morphed.

The quality bars here are lower than the benchmark's (benchmarks/projection.py: 200 held-out digits, 50 faces)
and the steps fewer, so that the file runs in seconds; they still fail when projection breaks.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from gan import data, evaluate, projection
from gan.evaluate import interleaved

# the app's handlers toast their messages with gr.Warning, which outside a request is a UserWarning
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:gradio.helpers")


def _held_out_digits(k: int) -> tuple[list[np.ndarray], list[int]]:
    """k real held-out MNIST digits (the generators never saw them), one per class in turn."""
    images, labels = data.mnist_offline("heldout")
    order = interleaved(labels)[:k]
    return [images[i].numpy() for i in order], [int(labels[i]) for i in order]


def _as_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(arr[None, None] if arr.ndim == 2 else arr.transpose(2, 0, 1)[None].copy())


def test_held_out_digits_project_to_the_same_digit_and_a_similar_image():
    digits, labels = _held_out_digits(4)
    spec = gan.registry.get_spec("mnist-dcgan")
    classifier = evaluate.load_classifier()
    same, ssims = 0, []
    for digit, label in zip(digits, labels):
        p = gan.project("mnist-dcgan", digit, steps=40, starts=2)
        recon = _as_tensor(p.reconstruction)
        same += int(evaluate.classify(classifier, recon)[0].argmax()) == label
        ssims.append(float(projection.ssim(recon, projection.target(spec, digit)[None])))
        assert p.label is not None and 0 <= p.label <= 9
        assert p.reconstruction.size == (28, 28) and p.target.size == (28, 28)
    assert same >= 3, f"only {same} of 4 reconstructions read as the input's digit"
    assert np.mean(ssims) >= 0.5, f"mean SSIM {np.mean(ssims):.3f}"


def test_a_faces_models_own_sample_projects_back_closely_from_latents_it_is_not_given():
    face = gan.sample("dcgan-faces", seed=777, precision="fp32")[0]
    p = gan.project("dcgan-faces", face)  # the default steps and starts
    assert p.label is None and p.z.shape == (100,)
    assert p.psnr >= 20, f"PSNR {p.psnr:.1f} dB"
    redrawn = gan.sample("dcgan-faces", z=p.z[None], precision="fp32")[0]  # the latent redraws the reconstruction
    assert np.abs(np.asarray(redrawn, np.int16) - np.asarray(p.reconstruction, np.int16)).mean() < 2


def test_the_same_image_and_seed_give_the_same_latent_and_another_seed_starts_elsewhere():
    digit = _held_out_digits(1)[0][0]
    steps: list[float] = []
    a = gan.project("mnist-gan", digit, steps=8, seed=3, progress=lambda f, _m: steps.append(f))
    b = gan.project("mnist-gan", digit, steps=8, seed=3)
    c = gan.project("mnist-gan", digit, steps=8, seed=4)
    assert torch.equal(a.z, b.z)
    assert not torch.equal(a.z, c.z)
    assert steps == sorted(steps) and steps[-1] == 1.0 and len(steps) == 8  # progress after every step


def test_a_given_label_is_kept_and_the_label_search_finds_the_digit():
    digit, label = (x[0] for x in _held_out_digits(1))
    assert gan.project("mnist-dcgan", digit, steps=5, starts=1, label=(label + 1) % 10).label == (label + 1) % 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps"), (dict(steps=10**6), "steps"), (dict(starts=0), "starts"), (dict(starts=99), "starts"),
    (dict(seed=-1), "seed"), (dict(label=10), "label"), (dict(steps=1.5), "steps"),
])
def test_projection_refuses_out_of_range_requests_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gan.project("mnist-dcgan", np.zeros((28, 28), np.uint8), **kwargs)


def test_projection_refuses_translators_unconditional_labels_and_non_images(tmp_path):
    with pytest.raises(ValueError, match="translator"):
        gan.project("pix2pix-sketch2digit", np.zeros((28, 28), np.uint8))
    with pytest.raises(ValueError, match="not conditional"):
        gan.project("mnist-gan", np.zeros((28, 28), np.uint8), label=3)
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a readable image") as err:
        gan.project("mnist-gan", bad)
    assert str(tmp_path) not in str(err.value)


def test_interpolation_runs_between_two_projected_latents():
    (three, eight), _ = _held_out_digits(2)
    a = gan.project("mnist-gan", three, steps=5)
    b = gan.project("mnist-gan", eight, steps=5)
    frames = gan.interpolate("mnist-gan", z_a=a.z, z_b=b.z, steps=4, precision="fp32")
    assert len(frames) == 4
    ends = gan.sample("mnist-gan", z=torch.stack([a.z, b.z]), precision="fp32")
    assert np.array_equal(np.asarray(frames[0]), np.asarray(ends[0]))
    assert np.array_equal(np.asarray(frames[-1]), np.asarray(ends[1]))
    mixed = gan.interpolate("mnist-gan", 5, z_b=b.z, steps=3, precision="fp32")  # a seed at one end, a latent at the other
    assert np.array_equal(np.asarray(mixed[0]), np.asarray(gan.sample("mnist-gan", seed=5, precision="fp32")[0]))
    with pytest.raises(ValueError, match="latent of B"):
        gan.interpolate("mnist-gan", 1, z_b=torch.zeros(7))
    with pytest.raises(ValueError, match="seed B"):
        gan.interpolate("mnist-gan", 1)


def test_ssim_and_psnr_agree_with_their_definitions():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    assert torch.allclose(projection.ssim(x, x), torch.ones(2))
    assert float(projection.ssim(x, -x).max()) < 0.2
    noisy = (x + 0.1).clamp(-1, 1)
    mse = (((noisy - x) / 2) ** 2).flatten(1).mean(1)
    assert torch.allclose(projection.psnr(noisy, x), 10 * torch.log10(1 / mse))


def test_cli_projects_then_samples_and_interpolates_from_the_latent(tmp_path, capsys):
    from gan.__main__ import main

    three, eight = _held_out_digits(2)[0]
    for name, arr in (("three", three), ("eight", eight)):
        Image.fromarray(arr).save(tmp_path / f"{name}.png")
        assert main(["project", "mnist-dcgan", str(tmp_path / f"{name}.png"), "-o", str(tmp_path / f"{name}.npy"),
                     "--steps", "5", "--starts", "1", "-q"]) == 0
    z = np.load(tmp_path / "three.npy")
    meta = json.loads((tmp_path / "three.json").read_text())
    assert z.shape == (100,) and meta["label"] in range(10) and meta["psnr"] > 0
    assert Image.open(tmp_path / "three_reconstruction.png").size == (56, 28)  # input | reconstruction
    assert main(["sample", "mnist-dcgan", "--latent", str(tmp_path / "three.npy"), "-o", str(tmp_path / "s.png"),
                 "--precision", "fp32"]) == 0
    expected = gan.sample("mnist-dcgan", z=torch.from_numpy(z)[None], label=meta["label"], precision="fp32")[0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s.png")), np.asarray(expected))
    assert main(["interpolate", "mnist-dcgan", "--latent", str(tmp_path / "three.npy"), "--latent-b",
                 str(tmp_path / "eight.npy"), "--steps", "3", "-o", str(tmp_path / "morph.png")]) == 0
    assert Image.open(tmp_path / "morph.png").size == (84, 28)
    capsys.readouterr()
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    assert main(["sample", "mnist-dcgan", "--latent", str(tmp_path / "bad.npy")]) == 1
    assert main(["interpolate", "mnist-dcgan", "1"]) == 1
    err = capsys.readouterr().err
    assert "not a readable .npy latent" in err and "give each end a seed or a latent" in err


def test_the_app_projects_a_drawing_and_its_sliders_then_edit_the_projected_latent():
    import app
    from forger_app import sampling

    digit, label = (x[0] for x in _held_out_digits(1))
    drawing = Image.fromarray(255 - digit).resize((280, 280))  # dark ink on white paper, as on the sketchpad
    out = app.project_image("mnist-dcgan", None, {"composite": drawing}, 0, 1.0, None)
    start, pair, digit_update, *sliders, image, png, status = out
    assert isinstance(start, sampling.Start), status
    assert digit_update["value"] == start.label and "your image" in status and "dB" in status
    assert pair[0].size == pair[1].size  # input and reconstruction, for the image slider
    no_edits = [0.0] * sampling.MAX_SLIDERS
    own, _, own_status = app.sample_image("mnist-dcgan", 0, 1.0, start.label, *no_edits, None, start)
    seeded, _, _ = app.sample_image("mnist-dcgan", 0, 1.0, start.label, *no_edits, None, None)
    edited, _, _ = app.sample_image("mnist-dcgan", 0, 1.0, start.label, 1.0, *no_edits[1:], None, start)
    assert np.asarray(own).tobytes() != np.asarray(seeded).tobytes()  # the projected latent, not the seed's
    assert np.asarray(edited).tobytes() != np.asarray(own).tobytes()  # the slider moves it
    assert "your image" in own_status
    other_seed, _, _ = app.sample_image("mnist-dcgan", 1, 1.0, start.label, *no_edits, None, start)
    assert np.asarray(other_seed).tobytes() == np.asarray(
        app.sample_image("mnist-dcgan", 1, 1.0, start.label, *no_edits, None, None)[0]).tobytes()
    nothing = app.project_image("mnist-dcgan", None, None, 0, 1.0, None)
    assert "no image" in nothing[-1]
