"""gan.evaluate: the digit classifier, the metrics, their real-vs-real references and targets, FID/KID plumbing.

The metrics must pass on real data (a "perfect generator") and fail on freshly initialised
generators; if either stops being true, the metric is broken.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gan
from gan import data, evaluate as ev
from gan.registry import get_spec


@pytest.fixture(scope="module")
def classifier() -> ev.DigitClassifier:
    return ev.load_classifier()


@pytest.fixture(scope="module")
def lenet() -> nn.Module:
    """The second classifier, trained differently (gan/evaluate/lenet.py)."""
    return ev.load_classifier(ev.LENET_DIR)


@pytest.fixture(scope="module")
def real() -> ev.RealDigits:
    return ev.real_halves()


def _heldout_balanced(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n real digits the GANs never trained on, class-balanced."""
    images, labels = data.mnist_offline("heldout")
    order = ev.interleaved(labels)[:n]
    return images[order][:, None].float() / 127.5 - 1, labels[order]


# ---------------------------------------------------------------------------- the classifier


def _trained_on_heldout_and_accurate_on_the_unseen_train_split(model: nn.Module, folder, command: str) -> dict:
    """A classifier folder's promises: trained on the heldout split by ``command``, >= 97% on the train split
    it never saw, and its card tells the truth. Returns its config.json and its features of that split."""
    config = json.loads((folder / "config.json").read_text())
    assert sum(p.numel() for p in model.parameters()) <= 100_000
    assert (folder / "model.safetensors").stat().st_size < 250_000
    assert "heldout" in config["trained_on"] and config["command"] == command
    x, y = data.mnist_offline("train")
    probs, feats = ev.classify(model, x[:, None].float() / 127.5 - 1)
    accuracy = (probs.argmax(1) == y).float().mean().item()
    assert accuracy >= 0.97
    assert accuracy == pytest.approx(config["accuracy_train_split"], abs=0.002)  # the card tells the truth
    card = (folder / "README.md").read_text()
    assert command in card and f"{100 * config['accuracy_train_split']:.2f}%" in card
    return {**config, "features": feats}


def test_bundled_classifier_is_small_trained_on_heldout_and_accurate_on_the_unseen_train_split(classifier):
    config = _trained_on_heldout_and_accurate_on_the_unseen_train_split(classifier, ev.CLASSIFIER_DIR,
                                                                        ev.TRAIN_CLASSIFIER_COMMAND)
    assert config["features"].shape == (2500, 64)
    checks = config["checks"]
    assert checks["train_split_noise_0.2"] >= 0.95  # GAN speckle does not change the digit it reads
    assert checks["uci_reframed"] > max(0.85, checks["uci_as_is"])  # why mnist2digits outputs are reframed


def test_train_classifier_learns_and_writes_a_folder_that_loads(monkeypatch, tmp_path):
    full = ev.classifier._mnist_split

    def small(split):  # 500 of each split keeps the test short; the bundled one uses all 2,500
        x, y = full(split)
        keep = ev.interleaved(y)[:500]
        return x[keep], y[keep]

    monkeypatch.setattr(ev.classifier, "_mnist_split", small)
    info = ev.train_classifier(tmp_path / "clf", ev.ClassifierTraining(epochs=8, width=8), progress=False)
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    model = ev.load_classifier(tmp_path / "clf")
    assert model.accuracy == info["accuracy_train_split"] > 0.5  # it learns from the heldout digits alone
    assert "--train-classifier" in (tmp_path / "clf" / "README.md").read_text()
    with pytest.raises(gan.WeightsUnavailableError, match="--train-classifier"):
        ev.load_classifier(tmp_path / "missing")


def test_second_classifier_is_another_network_trained_on_heldout_and_accurate_on_the_unseen_train_split(lenet):
    config = _trained_on_heldout_and_accurate_on_the_unseen_train_split(lenet, ev.LENET_DIR,
                                                                        ev.lenet.TRAIN_LENET_COMMAND)
    assert isinstance(lenet, ev.LeNet5) and config["architecture"] == "LeNet5"
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in lenet.modules())
    assert config["training"]["elastic_alpha"] > 0 and config["training"]["seed"] != ev.ClassifierTraining.seed
    assert config["features"].shape == (2500, 84)


def test_cli_trains_the_second_classifier_into_a_folder_that_loads(capsys, tmp_path):
    from gan.__main__ import main

    out = tmp_path / "lenet"
    assert main(["evaluate", "--train-classifier", "lenet5", "--epochs", "3", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    model = ev.load_classifier(out)
    assert isinstance(model, ev.LeNet5) and model.accuracy > 0.8  # three passes over the heldout digits
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["epochs"] == 3 and config["training"]["seed"] == ev.LeNetTraining.seed
    (out / "config.json").write_text(json.dumps({**config, "architecture": "ResNet"}))
    with pytest.raises(ValueError, match="unknown architecture 'ResNet'"):
        ev.load_classifier(out)


# ---------------------------------------------------------------------------- distances and data protocol


def test_frechet_distance_is_zero_for_the_same_set_and_matches_the_closed_form():
    from scipy import linalg

    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    scale = torch.diag(torch.arange(1.0, 7.0, dtype=torch.float64))
    b = torch.randn(300, 6, generator=g, dtype=torch.float64) @ scale + 0.5
    assert ev.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert ev.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_real_halves_are_disjoint_balanced_and_any_prefix_of_b_is_balanced(real):
    assert len(real.a) == len(real.b) == 1250
    assert real.a_labels.bincount().tolist() == [125] * 10
    assert real.b_labels[:20].tolist() == list(range(10)) * 2
    a_set = {bytes(x.numpy()) for x in real.a[:, 0].to(torch.uint8)}
    assert not any(bytes(x.numpy()) in a_set for x in real.b[:, 0].to(torch.uint8))


# ---------------------------------------------------------------------------- noise models


class RealDigitGenerator(nn.Module):
    """A 'perfect' conditional generator: returns real held-out digits of the requested class."""

    latent_dim = 100

    def __init__(self) -> None:
        super().__init__()
        self.images, self.labels = _heldout_balanced(2500)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = torch.arange(len(z)) % 10 if labels is None else labels
        pick = [int((self.labels == d).nonzero()[int(abs(zi[0]) * 1e4) % 250]) for zi, d in zip(z, labels)]
        return self.images[pick]


def test_real_digits_as_a_perfect_generator_pass_every_digit_target(monkeypatch, classifier, lenet):
    monkeypatch.setattr(ev.run, "_generator", lambda name, weights, pretrained: (RealDigitGenerator(), "real digits"))
    for name, judge in (("mnist-dcgan", classifier), ("mnist-gan", classifier), ("mnist-gan", lenet)):
        result = ev.evaluate(name, n=300, classifier=judge)
        assert result["passed"] is True, ev.results_table(result)
        m = result["metrics"]
        assert m["class_coverage"]["value"] == 10
        assert m["classifier_fd"]["ratio"] < 2.0
        if name == "mnist-dcgan":
            assert m["requested_digit_accuracy"]["value"] >= 0.97


@pytest.mark.parametrize("name", ["mnist-dcgan", "mnist-gan"])
def test_freshly_initialised_generators_fail_the_targets(name, classifier, lenet):
    torch.manual_seed(0)
    result = ev.evaluate(name, n=200, pretrained=False, classifier=classifier)
    assert result["passed"] is False
    m = result["metrics"]
    assert m["classifier_fd"]["ratio"] > 3
    assert m["class_coverage"]["value"] < 10
    if name == "mnist-gan":  # the second classifier is not fooled either
        torch.manual_seed(0)
        m = ev.evaluate(name, n=200, pretrained=False, classifier=lenet)["metrics"]
        assert m["confident_share"]["passed"] is False and m["class_coverage"]["passed"] is False
    if name == "mnist-dcgan":
        assert m["requested_digit_accuracy"]["value"] < 0.5
        assert m["requested_digit_accuracy"]["passed"] is False and m["classifier_fd"]["passed"] is False


def test_noise_spread_thinly_over_classes_does_not_count_as_coverage(classifier):
    # Unconfident predictions spread over every digit: no digit "appears".
    probs = torch.full((100, 10), 0.05)
    probs[torch.arange(100), torch.arange(100) % 10] = 0.55
    assert ev.metrics._class_stats(probs)[0] == 0
    assert ev.metrics._class_stats(probs)[1] == [10] * 10


# ---------------------------------------------------------------------------- translators


def test_translator_inputs_match_what_gan_translate_feeds_the_generator(monkeypatch):
    seen = []

    class Recorder(nn.Module):
        @property
        def eager(self):  # the served model's plain network (gan.translate checks which one it runs)
            return self

        def forward(self, x, precision=None):
            seen.append(x.clone())
            return x

    monkeypatch.setattr(gan.serving, "serving_generator", lambda name, weights: Recorder())
    for name in ("pix2pix-sketch2digit", "cyclegan-digits2mnist"):
        images, _, _ = ev.translator_test_set(name)
        for img in (images[0], 255 - images[1]):  # a light-background one is inverted by both
            seen.clear()
            gan.translate(name, Image.fromarray(img.numpy(), "L"))
            torch.testing.assert_close(ev.translator_inputs(get_spec(name), img[None]), seen[0])


def test_pix2pix_is_translated_one_image_at_a_time_even_in_batches():
    torch.manual_seed(0)
    g = gan.load_generator("pix2pix-sketch2digit", pretrained=False)
    x = torch.randn(6, 1, 32, 32)
    with torch.inference_mode():
        one_by_one = torch.cat([g(x[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(ev.run._translate_batch(g, x), one_by_one, atol=1e-4, rtol=0)  # eager fp32, vmap
    with torch.inference_mode():
        assert (g(x) - one_by_one).abs().max() > 0.2  # a plain batch would mix the images' statistics


def test_real_target_digits_as_perfect_translations_keep_their_labels(classifier, real):
    images, labels = _heldout_balanced(300)
    result = ev.label_metrics(images, labels, classifier=classifier, real=real)
    assert ev.attach_targets("pix2pix-sketch2digit", result["metrics"]) is True
    assert result["metrics"]["label_kept"]["value"] >= 0.97
    assert result["metrics"]["classifier_fd"]["ratio"] < 2.0


@pytest.mark.parametrize("name", ["pix2pix-sketch2digit", "cyclegan-digits2mnist", "cyclegan-mnist2digits"])
def test_freshly_initialised_translators_do_not_keep_the_label(name, classifier):
    torch.manual_seed(0)
    result = ev.evaluate(name, n=100, pretrained=False, classifier=classifier)
    assert result["metrics"]["label_kept"]["value"] < 0.5
    if name in ev.TO_MNIST:
        assert result["passed"] is False and result["metrics"]["classifier_fd"]["ratio"] > 3
    else:
        assert result["passed"] is None and "outside the MNIST classifier's domain" in " ".join(result["notes"])
        assert result["metrics"]["label_kept"]["reference"] > 0.85  # real UCI digits, reframed, are readable


def test_translator_test_sets_are_the_documented_unseen_inputs_and_class_balanced():
    sketches, labels, what = ev.translator_test_set("pix2pix-sketch2digit")
    assert len(sketches) == 2500 and "heldout" in what
    assert labels[:10].tolist() == list(range(10))
    expected = data.Sketch2DigitDataset("heldout")
    first = int((expected.labels == labels[0]).nonzero()[0])
    assert torch.equal(sketches[0], ((expected.sketches.images[first, 0] + 1) * 127.5).round().to(torch.uint8))
    uci, uci_labels, _ = ev.translator_test_set("cyclegan-digits2mnist")
    assert uci.shape == (1797, 28, 28) and uci_labels[:10].tolist() == list(range(10))


# ---------------------------------------------------------------------------- FID / KID


def test_fid_kid_are_skipped_quickly_with_a_clear_message_when_inception_weights_are_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(ev.metrics, "_reachable", lambda url, timeout: False)
    (tmp_path / "real").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "real" / "a.png")
    start = time.perf_counter()
    result = ev.evaluate("dcgan-faces", n=4, real=tmp_path / "real")
    assert time.perf_counter() - start < 60  # no download was tried (that takes minutes); margin for load
    why = result["skipped"]["fid_kid"]
    assert why.startswith("FID/KID: skipped — Inception weights not available offline")
    assert "FeatureExtractorInceptionV3" in why and str(tmp_path / "torch-home") in why
    assert result["metrics"] == {} and result["passed"] is None
    assert why in ev.results_table(result)
    no_real = ev.evaluate("dcgan-faces", n=4)["skipped"]["fid_kid"]
    assert "no real images" in no_real and "--real PATH" in no_real


def test_network_probe_gives_up_within_its_timeout():
    start = time.perf_counter()
    assert ev.metrics._reachable("https://10.255.255.1/weights.pth", timeout=0.5) is False
    assert time.perf_counter() - start < 10  # 0.5 s here; the default socket timeout would be minutes


def test_missing_torch_fidelity_and_cached_inception_weights_are_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(ev.metrics, "_reachable", lambda url, timeout: pytest.fail("no probe when the file is cached"))
    cached = ev.inception_cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    assert ev.inception_weights() == cached
    monkeypatch.setitem(__import__("sys").modules, "torch_fidelity", None)
    with pytest.raises(ev.InceptionUnavailable, match="pip install torch-fidelity"):
        ev.inception_weights()


def test_fid_kid_go_through_torchmetrics_with_a_real_vs_real_reference(monkeypatch, tmp_path):
    pytest.importorskip("torch_fidelity")
    weights_file = tmp_path / "inception.pth"
    weights_file.write_bytes(b"stand-in")
    used = []

    def cheap_features(images, path):  # stands in for Inception (no weights offline); same interface
        used.append(path)
        return nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1).double()  # (B, 48)

    monkeypatch.setattr(ev.metrics, "inception_features", cheap_features)
    rng = np.random.default_rng(0)
    (tmp_path / "real").mkdir()
    for i in range(24):  # real "faces": bright noise; dcgan-faces samples look nothing like them
        Image.fromarray(rng.integers(150, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "real" / f"{i}.png")
    result = ev.evaluate("dcgan-faces", n=12, real=tmp_path / "real", inception=weights_file)
    assert used == [weights_file]
    fid, kid = result["metrics"]["fid"], result["metrics"]["kid"]
    assert fid["value"] > 10 * fid["reference"] and kid["value"] > kid["reference"]
    assert "| FID |" in ev.results_table(result)


def test_inception_features_use_torchmetrics_extractor_with_the_given_weights(monkeypatch, tmp_path):
    pytest.importorskip("torch_fidelity")
    import torchmetrics.image.fid as tm_fid

    made = {}

    class Stub(nn.Module):
        def __init__(self, name, features_list, feature_extractor_weights_path=None):
            super().__init__()
            made.update(name=name, features=features_list, path=feature_extractor_weights_path)

        def forward(self, x):
            assert x.dtype == torch.uint8
            return torch.zeros(len(x), 2048)

    monkeypatch.setattr(tm_fid, "NoTrainInceptionV3", Stub)
    out = ev.inception_features(torch.zeros(3, 3, 32, 32, dtype=torch.uint8), tmp_path / "w.pth")
    assert out.shape == (3, 2048)
    assert made == {"name": "inception-v3-compat", "features": ["2048"], "path": str(tmp_path / "w.pth")}


# ---------------------------------------------------------------------------- CLI


def test_cli_prints_a_markdown_table_and_writes_json(capsys, tmp_path):
    from gan.__main__ import main

    torch.manual_seed(0)
    out = tmp_path / "r.json"
    assert main(["evaluate", "mnist-dcgan", "--random-init", "--n", "100", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| metric | value | real-vs-real reference | target |" in printed
    assert "| samples classified as the requested digit |" in printed and "❌" in printed
    saved = json.loads(out.read_text())
    assert saved["model"] == "mnist-dcgan" and saved["passed"] is False
    assert saved["metrics"]["requested_digit_accuracy"]["threshold"] == 0.95
    assert main(["evaluate"]) == 1
    assert "--train-classifier" in capsys.readouterr().err


def test_cli_card_puts_the_metrics_into_a_trained_folders_model_card(capsys, tmp_path):
    from gan.__main__ import main
    from gan.train import TrainConfig, train

    for event in train(TrainConfig("mnist-gan", data="mnist-offline", steps=2, batch_size=4, out=tmp_path / "run")):
        folder = event.weights
    assert "## Metrics" not in (folder / "README.md").read_text()
    assert main(["evaluate", "mnist-gan", "--weights", str(folder), "--n", "100", "--card"]) == 0
    card = (folder / "README.md").read_text()
    saved = json.loads((folder / "metrics.json").read_text())
    assert "## Metrics" in card and "| digits covered (of 10) |" in card and "| steps | 2 of batch 4" in card
    assert saved["model"] == "mnist-gan" and saved["n"] == 100
    capsys.readouterr()
    weights_file = str(folder / "model.safetensors")  # evaluable, but not a folder with a card
    assert main(["evaluate", "mnist-gan", "--weights", weights_file, "--n", "100", "--card"]) == 1
    assert "--card needs a weights folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mnist-gan", "mnist-dcgan", "pix2pix-sketch2digit", "cyclegan-digits2mnist"])
def test_bundled_weights_meet_their_targets(name, classifier):
    """The numbers of the README's results table: the shipped weights, through the shipped preprocessing."""
    result = ev.evaluate(name, classifier=classifier)
    failed = {k: m["value"] for k, m in result["metrics"].items() if m["passed"] is False}
    assert result["passed"] is True, failed
