"""Weight sources end to end through the real huggingface_hub client, against a fake Hub on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from huggingface_hub import constants

import gan
from gan import weights
from gan.registry import REGISTRY, Source, get_spec
from test_checkpoints import cyclegan_reference, official_cyclegan_state

SPACE = "davidpiscasio/unpaired-img2img"
H2Z = "checkpoints/horse2zebra_pretrained/latest_net_G.pth"


def _pth_bytes(sd) -> bytes:
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def _with_sources(monkeypatch, name: str, *sources: Source) -> None:
    monkeypatch.setitem(REGISTRY, name, dataclasses.replace(get_spec(name), sources=sources))


def test_official_cyclegan_comes_from_the_hub_space_then_from_the_cache_offline(fake_hub, monkeypatch):
    sd = official_cyclegan_state(old_instancenorm_keys=True)
    fake_hub.add_file(SPACE, H2Z, _pth_bytes(sd), repo_type="space")
    assert not gan.model_info("cyclegan-horse2zebra")["offline"]

    g = gan.load_generator("cyclegan-horse2zebra")
    assert ("GET", f"/spaces/{SPACE}/resolve/main/{H2Z}") in fake_hub.requests
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g(x), cyclegan_reference(sd, x), atol=1e-5, rtol=1e-4)

    assert gan.model_info("cyclegan-horse2zebra")["offline"]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    seen = len(fake_hub.requests)
    gan.load_generator("cyclegan-horse2zebra")
    assert len(fake_hub.requests) == seen  # served from the HF_HOME cache, nothing sent


def test_official_url_is_the_last_resort_and_is_cached(fake_hub, monkeypatch):
    sd = official_cyclegan_state(old_instancenorm_keys=False)
    fake_hub.add_url("/cyclegan/pretrained_models/horse2zebra.pth", _pth_bytes(sd))
    # The Space lacks the file (404), so the official URL is tried next.
    fake_hub.add_repo(SPACE, repo_type="space")
    spec = get_spec("cyclegan-horse2zebra")
    bundled, space, _ = spec.sources
    url = Source("url", fake_hub.url_for("/cyclegan/pretrained_models/horse2zebra.pth"), format="pth")
    _with_sources(monkeypatch, "cyclegan-horse2zebra", bundled, space, url)

    gan.load_generator("cyclegan-horse2zebra")
    assert sum(1 for m, p in fake_hub.requests if p == "/cyclegan/pretrained_models/horse2zebra.pth") == 1
    cached = list((weights.cache_dir() / "urls").rglob("horse2zebra.pth"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("*.tmp"))
    gan.load_generator("cyclegan-horse2zebra")  # second time: from Forger's cache
    assert sum(1 for m, p in fake_hub.requests if p == "/cyclegan/pretrained_models/horse2zebra.pth") == 1


def test_our_format_from_a_pinned_private_hub_revision(fake_hub, monkeypatch, tmp_path):
    torch.manual_seed(0)
    g = gan.load_generator("mnist-gan", pretrained=False)
    spec = get_spec("mnist-gan")
    folder = weights.save_pretrained(g, tmp_path / "w", name="mnist-gan", family=spec.family, generator=spec.generator)
    for f in ("model.safetensors", "config.json"):
        fake_hub.add_file("someone/mnist-gan", f, (folder / f).read_bytes(), revision="v1", private_token="hf_secret")
    _with_sources(monkeypatch, "mnist-gan", Source("hub", "someone/mnist-gan", revision="v1"))

    with pytest.raises(gan.WeightsUnavailableError, match="RepositoryNotFoundError"):
        gan.load_generator("mnist-gan")  # private, and no token
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    loaded = gan.load_generator("mnist-gan")
    z = torch.randn(2, 100)
    with torch.no_grad():
        assert torch.equal(loaded(z), g(z))
    assert any(p.startswith("/someone/mnist-gan/resolve/v1/") for _, p in fake_hub.requests)


def test_offline_error_names_the_model_every_source_and_what_to_do(fake_hub, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(gan.WeightsUnavailableError) as e:
        gan.load_generator("cyclegan-horse2zebra")
    msg = str(e.value)
    assert "'cyclegan-horse2zebra'" in msg
    assert "bundled folder weights/cyclegan-horse2zebra: FileNotFoundError: not present" in msg
    assert f"Hub Space {SPACE}/{H2Z} @ main" in msg
    assert "URL http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth" in msg
    assert "HF_HUB_OFFLINE=1" in msg and "hf auth login" in msg
    assert "python -m gan train cyclegan-horse2zebra --data datasets/horse2zebra" in msg
    assert fake_hub.requests == []  # offline means nothing is sent


def test_model_without_any_reachable_source_says_how_to_train_it(fake_hub):
    with pytest.raises(gan.WeightsUnavailableError) as e:
        gan.sample("cifar10-gan", seed=0)
    assert "python -m gan train cifar10-gan --data cifar10 --classes frog" in str(e.value)


def test_pushed_weights_load_from_the_hub_and_a_second_push_replaces_them(fake_hub, monkeypatch, tmp_path):
    """weights.push_to_hub (what the app's Push button calls, with the user's token) through the real client;
    a public repo then loads without a token, and a new push is what loads next."""
    spec = get_spec("mnist-gan")
    _with_sources(monkeypatch, "mnist-gan", Source("hub", "me/mnist-gan"))
    for seed in (0, 1):
        torch.manual_seed(seed)
        g = gan.load_generator("mnist-gan", pretrained=False)
        folder = weights.save_pretrained(g, tmp_path / f"w{seed}", name="mnist-gan", family=spec.family,
                                         generator=spec.generator, card="# mnist-gan\n")
        url = weights.push_to_hub(folder, "me/mnist-gan", token="hf_writer")
        assert url == f"{fake_hub.url}/me/mnist-gan"
        assert fake_hub.request_headers[-1]["authorization"] == "Bearer hf_writer"
        loaded = gan.load_generator("mnist-gan")  # public: no token needed to read
        for k, v in g.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v), (seed, k)
    assert [c["summary"] for c in fake_hub.commits] == ["Upload Forger weights"] * 2
    assert "model.safetensors" in fake_hub.commits[1]["files"]
