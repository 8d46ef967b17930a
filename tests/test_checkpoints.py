"""Foreign checkpoints: official CycleGAN and pix2pix .pth files and DCGAN-tutorial checkpoints.

Each checkpoint here is built from the official key layout written out by hand (not from
our modules), and the loaded model's output is checked against a forward pass written
independently with torch.nn.functional on the raw state dict.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gan
from gan import weights


def _rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape) * 0.05


# ------------------------------------------------------------------ CycleGAN (resnet_9blocks)

def official_cyclegan_state(old_instancenorm_keys: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    sd = {"model.1.weight": _rand(64, 3, 7, 7), "model.1.bias": _rand(64),
          "model.4.weight": _rand(128, 64, 3, 3), "model.4.bias": _rand(128),
          "model.7.weight": _rand(256, 128, 3, 3), "model.7.bias": _rand(256)}
    for i in range(10, 19):
        for j in (1, 5):
            sd[f"model.{i}.conv_block.{j}.weight"] = _rand(256, 256, 3, 3)
            sd[f"model.{i}.conv_block.{j}.bias"] = _rand(256)
    sd |= {"model.19.weight": _rand(256, 128, 3, 3), "model.19.bias": _rand(128),
           "model.22.weight": _rand(128, 64, 3, 3), "model.22.bias": _rand(64),
           "model.26.weight": _rand(3, 64, 7, 7), "model.26.bias": _rand(3)}
    if old_instancenorm_keys:  # what PyTorch < 0.4 saved for InstanceNorm layers
        norms = {"model.2": 64, "model.5": 128, "model.8": 256, "model.20": 128, "model.23": 64}
        norms |= {f"model.{i}.conv_block.{j}": 256 for i in range(10, 19) for j in (2, 6)}
        for k, c in norms.items():
            sd[f"{k}.running_mean"] = torch.zeros(c)
            sd[f"{k}.running_var"] = torch.ones(c)
    return sd


def cyclegan_reference(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    def conv(h, key, stride=1, padding=0, reflect=0):
        if reflect:
            h = F.pad(h, (reflect,) * 4, mode="reflect")
        return F.conv2d(h, sd[f"{key}.weight"], sd[f"{key}.bias"], stride=stride, padding=padding)

    def up(h, key):
        return F.conv_transpose2d(h, sd[f"{key}.weight"], sd[f"{key}.bias"], stride=2, padding=1, output_padding=1)

    h = F.relu(F.instance_norm(conv(x, "model.1", reflect=3)))
    h = F.relu(F.instance_norm(conv(h, "model.4", stride=2, padding=1)))
    h = F.relu(F.instance_norm(conv(h, "model.7", stride=2, padding=1)))
    for i in range(10, 19):
        r = F.relu(F.instance_norm(conv(h, f"model.{i}.conv_block.1", reflect=1)))
        h = h + F.instance_norm(conv(r, f"model.{i}.conv_block.5", reflect=1))
    h = F.relu(F.instance_norm(up(h, "model.19")))
    h = F.relu(F.instance_norm(up(h, "model.22")))
    return torch.tanh(conv(h, "model.26", reflect=3))


@pytest.mark.parametrize("old_keys", [False, True], ids=["current", "old_instancenorm_keys"])
def test_cyclegan_loads_official_checkpoint_with_and_without_old_instancenorm_keys(tmp_path, old_keys):
    sd = official_cyclegan_state(old_keys)
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    g = gan.load_generator("cyclegan-horse2zebra", weights=path)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g(x), cyclegan_reference(sd, x), atol=1e-5, rtol=1e-4)


def test_cyclegan_checkpoint_saved_by_dataparallel_loads(tmp_path):
    sd = {f"module.{k}": v for k, v in official_cyclegan_state(False).items()}
    torch.save(sd, tmp_path / "g.pth")
    gan.load_generator("cyclegan-style_monet", weights=tmp_path / "g.pth")


# ------------------------------------------------------------------ pix2pix (unet_256)

def official_unet_state(num_downs: int = 8, ngf: int = 64, nc: int = 3) -> dict[str, torch.Tensor]:
    """Keys of UnetGenerator: outermost model.model.{0,3}; block d lives at model.model.1.(model.3.)^(d-1)."""
    torch.manual_seed(1)
    sd = {"model.model.0.weight": _rand(ngf, nc, 4, 4), "model.model.3.weight": _rand(ngf * 2, nc, 4, 4),
          "model.model.3.bias": _rand(nc)}
    outer = [ngf, ngf * 2, ngf * 4] + [ngf * 8] * (num_downs - 4)  # outer_nc of blocks 1 .. num_downs-1
    inner = [ngf * 2, ngf * 4] + [ngf * 8] * (num_downs - 3)

    def bn(key, c):
        sd.update({f"{key}.weight": 1 + _rand(c), f"{key}.bias": _rand(c), f"{key}.running_mean": _rand(c),
                   f"{key}.running_var": 1 + _rand(c).abs(), f"{key}.num_batches_tracked": torch.tensor(100)})

    for d in range(1, num_downs):
        p = "model.model.1." + "model.3." * (d - 1)
        o, i = outer[d - 1], inner[d - 1]
        sd[p + "model.1.weight"] = _rand(i, o, 4, 4)
        if d == num_downs - 1:  # innermost: no down norm, no skip inside
            sd[p + "model.3.weight"] = _rand(i, o, 4, 4)
            bn(p + "model.4", o)
        else:
            bn(p + "model.2", i)
            sd[p + "model.5.weight"] = _rand(i * 2, o, 4, 4)
            bn(p + "model.6", o)
    return sd


def unet_reference(sd: dict[str, torch.Tensor], x: torch.Tensor, num_downs: int = 8) -> torch.Tensor:
    """The official test-time behaviour: BatchNorm with the image's own statistics, dropout off."""
    def bn(h, key):
        return F.batch_norm(h, None, None, sd[f"{key}.weight"], sd[f"{key}.bias"], training=True)

    def block(h, p, d):
        down = F.conv2d(F.leaky_relu(h, 0.2), sd[p + "model.1.weight"], stride=2, padding=1)
        if d == num_downs - 1:
            u = bn(F.conv_transpose2d(F.relu(down), sd[p + "model.3.weight"], stride=2, padding=1), p + "model.4")
        else:
            s = block(bn(down, p + "model.2"), p + "model.3.", d + 1)
            u = bn(F.conv_transpose2d(F.relu(s), sd[p + "model.5.weight"], stride=2, padding=1), p + "model.6")
        return torch.cat([h, u], 1)

    h = block(F.conv2d(x, sd["model.model.0.weight"], stride=2, padding=1), "model.model.1.", 1)
    return torch.tanh(F.conv_transpose2d(F.relu(h), sd["model.model.3.weight"], sd["model.model.3.bias"],
                                         stride=2, padding=1))


def test_pix2pix_loads_official_checkpoint_and_normalises_with_the_images_own_statistics(tmp_path):
    sd = official_unet_state()
    torch.save(sd, tmp_path / "edges2shoes.pth")
    g = gan.load_generator("pix2pix-edges2shoes", weights=tmp_path / "edges2shoes.pth")
    assert not g.training  # eval mode, and still image statistics (the official test.py default)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        y1, y2 = g(x), g(x)
        torch.testing.assert_close(y1, unet_reference(sd, x), atol=1e-4, rtol=1e-3)
    assert torch.equal(y1, y2)  # dropout is off: the same input always gives the same output
    for k, v in g.state_dict().items():  # inference never touches the running statistics
        if k.endswith("running_mean"):
            torch.testing.assert_close(v, sd[k])


# ------------------------------------------------------------------ DCGAN tutorial / gan-face-generate

def tutorial_dcgan_state(nz: int = 100, ngf: int = 64, nc: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(2)
    chans = [nz, ngf * 8, ngf * 4, ngf * 2, ngf, nc]
    sd = {}
    for layer, (cin, cout) in enumerate(zip(chans[:-1], chans[1:])):
        sd[f"main.{3 * layer}.weight"] = _rand(cin, cout, 4, 4) * 4
        if cout != nc:
            k = f"main.{3 * layer + 1}"
            sd |= {f"{k}.weight": 1 + _rand(cout), f"{k}.bias": _rand(cout), f"{k}.running_mean": _rand(cout),
                   f"{k}.running_var": 1 + _rand(cout).abs(), f"{k}.num_batches_tracked": torch.tensor(7)}
    return sd


def dcgan_reference(sd: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    h = z.view(z.shape[0], -1, 1, 1)
    for layer in range(5):
        stride, pad = (1, 0) if layer == 0 else (2, 1)
        h = F.conv_transpose2d(h, sd[f"main.{3 * layer}.weight"], stride=stride, padding=pad)
        if layer < 4:
            k = f"main.{3 * layer + 1}"
            h = F.relu(F.batch_norm(h, sd[f"{k}.running_mean"], sd[f"{k}.running_var"], sd[f"{k}.weight"],
                                    sd[f"{k}.bias"], training=False))
    return torch.tanh(h)


@pytest.mark.parametrize("wrapped", [False, True], ids=["pytorch_examples", "gan_face_generate"])
def test_dcgan_tutorial_checkpoint_loads_key_for_key(tmp_path, wrapped):
    sd = tutorial_dcgan_state()
    path = tmp_path / ("weights.tar" if wrapped else "netG_epoch_24.pth")
    torch.save({"netG_state_dict": sd} if wrapped else sd, path)
    g = gan.load_generator("dcgan-faces", weights=path)
    assert set(g.state_dict()) == set(sd)
    z = torch.randn(2, 100)
    with torch.no_grad():
        torch.testing.assert_close(g(z), dcgan_reference(sd, z), atol=1e-5, rtol=1e-4)


def test_bundled_faces_match_the_gan_face_generate_layout():
    g = gan.load_generator("dcgan-faces")
    assert [k for k in g.state_dict() if k.endswith("weight")][0] == "main.0.weight"
    assert "main.12.weight" in g.state_dict()
    face = gan.sample("dcgan-faces", seed=3)[0]
    assert face.size == (64, 64) and face.mode == "RGB"


# ------------------------------------------------------------------ bad checkpoints

def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    sd = official_cyclegan_state(False)
    sd.pop("model.26.bias")
    sd["model.99.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(gan.CheckpointMismatchError) as e:
        gan.load_generator("cyclegan-horse2zebra", weights=tmp_path / "bad.pth")
    assert "missing keys: model.26.bias" in str(e.value)
    assert "unexpected keys: model.99.weight" in str(e.value)


def test_checkpoint_of_another_architecture_reports_wrong_shapes(tmp_path):
    torch.save(official_cyclegan_state(False), tmp_path / "cyc.pth")
    with pytest.raises(gan.CheckpointMismatchError, match="missing keys: main.0.weight"):
        gan.load_generator("dcgan-faces", weights=tmp_path / "cyc.pth")


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(gan.CheckpointMismatchError, match="cannot read checkpoint"):
        gan.load_generator("cyclegan-horse2zebra", weights=tmp_path / "broken.pth")


def test_pickled_code_in_a_checkpoint_is_never_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))

    torch.save({"model.1.weight": Evil()}, tmp_path / "evil.pth", _use_new_zipfile_serialization=True)
    with pytest.raises(gan.CheckpointMismatchError):
        gan.load_generator("cyclegan-horse2zebra", weights=tmp_path / "evil.pth")
    assert not (tmp_path / "PWNED").exists()


def test_import_writes_a_whole_folder_or_nothing(tmp_path):
    torch.save(official_cyclegan_state(True), tmp_path / "h2z.pth")
    out = weights.import_checkpoint(gan.registry.get_spec("cyclegan-horse2zebra"), tmp_path / "h2z.pth",
                                    tmp_path / "converted", dtype=torch.float16)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a = gan.load_generator("cyclegan-horse2zebra", weights=out)(x)
        b = gan.load_generator("cyclegan-horse2zebra", weights=tmp_path / "h2z.pth")(x)
    assert (a - b).abs().max() < 0.02  # fp16 storage

    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(gan.CheckpointMismatchError):
        weights.import_checkpoint(gan.registry.get_spec("cyclegan-horse2zebra"), tmp_path / "bad.pth",
                                  tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_atomic_write_leaves_nothing_when_writing_fails(tmp_path):
    def fail(path):
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        weights.atomic_write(tmp_path / "model.safetensors", fail)
    assert list(tmp_path.iterdir()) == []
