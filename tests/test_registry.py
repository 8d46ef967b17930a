"""Every registered model, tested the moment it is registered: shapes, ranges, discriminators,
determinism by seed, and a save -> load round trip of both networks in our weights format."""
from __future__ import annotations

import functools
import json

import pytest
import torch

import gan
from gan import weights
from gan.models import family_module
from gan.registry import REGISTRY, get_spec

NAMES = sorted(REGISTRY)


@functools.cache
def _fresh(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return gan.load_generator(name, pretrained=False)


def _inputs(name: str, batch: int = 2):
    spec = get_spec(name)
    g = torch.Generator().manual_seed(1)
    if spec.task == "noise":
        z = torch.randn(batch, spec.latent_dim, generator=g)
        labels = torch.arange(batch) % len(spec.classes) if spec.conditional else None
        return (z, labels)
    return (torch.rand(batch, spec.channels, spec.image_size, spec.image_size, generator=g) * 2 - 1,)


@functools.cache
def _output(name: str) -> torch.Tensor:
    with torch.no_grad():
        return _fresh(name)(*_inputs(name))


@pytest.mark.parametrize("name", NAMES)
def test_generator_output_shape_and_range(name):
    spec = get_spec(name)
    y = _output(name)
    assert y.shape == (2, spec.channels, spec.image_size, spec.image_size)
    assert y.min() >= -1 and y.max() <= 1
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_discriminator_scores_real_size_images(name):
    spec = get_spec(name)
    d = gan.load_discriminator(name)
    x = torch.zeros(2, spec.channels, spec.image_size, spec.image_size)
    with torch.no_grad():
        if spec.family == "pix2pix":
            out = d(torch.cat([x, x], 1))
        elif spec.conditional or spec.discriminator.get("num_classes"):  # class-conditional D
            out = d(x, torch.tensor([0, 1]))
        else:
            out = d(x)
    if spec.task == "noise":
        assert out.shape == (2,)
    else:
        assert out.shape[:2] == (2, 1) and out.shape[2] >= 1  # a map of patch logits
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_spec_is_complete(name):
    spec = get_spec(name)
    assert spec.description and spec.licence and spec.sources
    family_module(spec.family)  # the family exists
    if spec.task == "noise":
        assert spec.latent_dim > 0
    if spec.reverse:
        assert get_spec(spec.reverse).reverse == name
    info = gan.model_info(name)
    assert info["name"] == name and isinstance(info["offline"], bool)


@pytest.mark.parametrize("name", [n for n in NAMES if get_spec(n).task == "noise"])
def test_same_seed_same_latents_and_images(name):
    spec = get_spec(name)
    a = gan.latent.seeded_latents(7, 3, spec.latent_dim)
    b = gan.latent.seeded_latents(7, 3, spec.latent_dim)
    assert torch.equal(a, b)
    assert torch.equal(a[:1], gan.latent.seeded_latents(7, 1, spec.latent_dim))  # row i does not depend on n
    g = _fresh(name)
    labels = torch.zeros(3, dtype=torch.long) if spec.conditional else None
    with torch.no_grad():
        assert torch.equal(g(a, labels), g(b, labels))


@pytest.mark.parametrize("name", NAMES)
def test_save_then_load_round_trip(name, tmp_path):
    spec = get_spec(name)
    g = _fresh(name)
    torch.manual_seed(1)
    d = gan.load_discriminator(name)
    folder = weights.save_pretrained(g, tmp_path / name, name=name, family=spec.family, generator=spec.generator,
                                     card=f"# {name}\n", discriminator=d)
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == name and config["family"] == spec.family
    assert config["generator"] == json.loads(json.dumps(spec.generator))
    loaded = gan.load_generator(name, weights=folder)
    for (k, a), (k2, b) in zip(g.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    with torch.no_grad():
        assert torch.equal(loaded(*_inputs(name)), _output(name))
    loaded_d = gan.load_discriminator(name, weights=folder, pretrained=True).state_dict()
    assert loaded_d.keys() == d.state_dict().keys()
    for k, v in d.state_dict().items():  # the discriminator saved, tensor for tensor
        assert torch.equal(loaded_d[k], v), k


def test_cifar10_gan_has_exactly_the_books_parameter_counts():
    g = gan.load_generator("cifar10-gan", pretrained=False)
    d = gan.load_discriminator("cifar10-gan")
    assert sum(p.numel() for p in g.parameters()) == 6_264_579
    assert sum(p.numel() for p in d.parameters()) == 790_913
    slopes = {m.negative_slope for m in [*g.modules(), *d.modules()] if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.3}


def test_official_architectures_have_the_official_parameter_counts():
    # resnet_9blocks: 11.378 M; unet_256: 54.414 M, as printed by the official repo.
    cyc = gan.load_generator("cyclegan-horse2zebra", pretrained=False)
    unet = gan.load_generator("pix2pix-edges2shoes", pretrained=False)
    assert sum(p.numel() for p in cyc.parameters()) == 11_378_179
    assert sum(p.numel() for p in unet.parameters()) == 54_413_955


def test_every_official_translator_is_registered_by_name():
    for official in ("horse2zebra", "zebra2horse", "apple2orange", "orange2apple", "summer2winter_yosemite",
                     "winter2summer_yosemite", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
                     "style_vangogh", "cityscapes_label2photo", "iphone2dslr_flower"):
        assert f"cyclegan-{official}" in REGISTRY
    for official in ("facades_label2photo", "edges2shoes", "map2sat", "sat2map", "day2night"):
        assert f"pix2pix-{official}" in REGISTRY


def test_unknown_model_name_suggests_the_closest_names():
    with pytest.raises(KeyError) as e:
        gan.model_info("cyclegan-horse2zebr")
    assert "did you mean 'cyclegan-horse2zebra'" in str(e.value)
    assert "python -m gan list" in str(e.value)


def test_list_models_filters_by_family_and_task():
    assert gan.list_models("dcgan") == ["dcgan-faces"]
    noise = gan.list_models(task="noise")
    assert set(noise) == {"mnist-gan", "mnist-dcgan", "cifar10-gan", "dcgan-faces"}
    assert set(gan.list_models()) == set(REGISTRY)
