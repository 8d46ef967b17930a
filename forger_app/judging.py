"""The Expert tab: which models have an expert (a trained discriminator), its verdicts as text and charts,
and the game "Fool the expert"."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

import gan
from forger_app.sessions import Session, resolve_spec
from gan.registry import ModelSpec, get_spec

GAME_ROUNDS = 5  # images in a game of "Fool the expert"
MAX_GAME_ROUNDS = 20


def has_discriminator(name: str, weights: Path | None = None) -> bool:
    """The model's weights folder (``weights``, else ``weights/<name>``) holds a trained discriminator."""
    return gan.weights.discriminator_file(name, weights).is_file()


def expert_choices(session: Session | None = None, *, game: bool = False) -> list[tuple[str, str]]:
    """(label, value) pairs of the models whose expert can be asked: the registered models with a trained
    discriminator here, then this session's trained ones. ``game``: only those that forge digits (their
    fakes can be mixed with the real held-out MNIST digits that ship with the package)."""
    def fits(spec: ModelSpec) -> bool:
        return not game or (spec.task == "noise" and spec.channels == 1)

    choices = [(n, n) for n in gan.list_models() if has_discriminator(n) and fits(get_spec(n))]
    if session is not None:
        choices += [(t.label, t.key) for t in session.trained.values()
                    if has_discriminator(t.name, t.weights) and fits(get_spec(t.name))]
    return choices


def default_expert(*, game: bool = False) -> str | None:
    """The model the Expert tab opens with: a digit forger first (its verdicts compare with real digits that
    ship with the package), a conditional one before others (it shows its verdict under every class)."""
    names = [v for _, v in expert_choices(game=game)]
    specs = {n: get_spec(n) for n in names}
    ranked = sorted(names, key=lambda n: (specs[n].task != "noise", specs[n].channels != 1, not specs[n].conditional,
                                          not specs[n].featured, names.index(n)))
    return ranked[0] if ranked else None


def expert_classes(spec: ModelSpec) -> int:
    """How many classes the model's discriminator is conditioned on (0: none)."""
    return len(spec.classes) or int(spec.discriminator.get("num_classes", 0) or 0)


def expert_has_heatmap(spec: ModelSpec) -> bool:
    """Translators' discriminators are PatchGANs: their verdict comes with a map of patches."""
    return spec.task == "translate"


def expert_has_sketchpad(spec: ModelSpec | None) -> bool:
    """Digit models (one channel) and those the registry offers a sketchpad for: a drawing can be judged."""
    return spec is not None and (spec.sketchpad or spec.channels == 1)


class NoExpertError(ValueError):
    """A model without a trained discriminator: there is no expert to ask."""


def no_expert_message(spec: ModelSpec) -> str:
    real = "" if spec.evaluation is not None else " and no real images of its kind come with the app"
    return (f"{spec.name} ships without a discriminator (the expert it was trained against){real}; train it in "
            f"the Train tab and its expert will be available here for your session "
            f"(or run: {spec.train_command()})")


def expert_for(key: str, session: Session | None) -> tuple[ModelSpec, Path | None]:
    """A dropdown value -> (spec, weights folder or None), if the model has an expert; NoExpertError if not."""
    spec, weights = resolve_spec(key, session)
    if not has_discriminator(spec.name, weights):
        raise NoExpertError(no_expert_message(spec))
    return spec, weights


def class_names(spec: ModelSpec, n: int) -> list[str]:
    return list(spec.classes) if len(spec.classes) == n else [str(i) for i in range(n)]


def verdict_markdown(spec: ModelSpec, verdict: gan.Verdict) -> str:
    """Markdown for one verdict: P(real), where it ranks among real images and fakes, the class, the sentence."""
    v = verdict
    lines = [f"### 🕵️ P(real) = {100 * v.probability:.0f}%", "", v.sentence, ""]
    if v.real_percentile is not None:
        lines.append(f"- the percentiles: where its score falls among the model's real validation images "
                     f"(**{v.real_percentile:.0f}%** score at or below it)"
                     + (f" and among the forger's own samples (**{v.fake_percentile:.0f}%**)"
                        if v.fake_percentile is not None else ""))
    if v.per_class and v.label is not None:
        names = class_names(spec, len(v.per_class))
        lines.append(f"- judged as a **{names[v.label]}** (the digit it shows); the chart gives P(real) under every "
                     f"class")
    if v.heatmap is not None:
        lines.append("- the heatmap shows each patch's verdict: green looks real, red looks fake")
    if spec.family == "pix2pix":
        lines.append("- Pix2Pix's expert judges a pair: your image as the sketch, and the digit the forger draws "
                     "from it")
    lines.append(f"- the expert's raw score (logit): {v.logit:.2f}")
    return "\n".join(lines)


def class_rows(spec: ModelSpec, verdict: gan.Verdict) -> dict[str, list] | None:
    """Columns of the per-class bar chart (class, P(real)), or None for an expert without classes."""
    if not verdict.per_class:
        return None
    return {"class": class_names(spec, len(verdict.per_class)), "p_real": [float(p) for p in verdict.per_class]}


@dataclass
class ExpertGame:
    """One game of "Fool the expert": a shuffled mix of real held-out digits and the forger's fakes; the
    person and the expert each say real or fake for every image.

    The expert says real when it gives the image at least a 50% chance of being real (P(real) >= 0.5)."""

    key: str  # the model dropdown value
    name: str
    seed: int
    images: list[Image.Image]
    real: list[bool]  # the truth
    expert_p: list[float]  # the expert's P(real) of each image
    answers: list[bool] = field(default_factory=list)  # the person's, True = "real"

    @property
    def rounds(self) -> int:
        return len(self.images)

    @property
    def done(self) -> bool:
        return len(self.answers) >= self.rounds

    @property
    def expert_real(self) -> list[bool]:
        return [p >= 0.5 for p in self.expert_p]

    def answer(self, real: bool) -> None:
        if self.done:
            raise ValueError("this game is over: start a new one")
        self.answers.append(bool(real))

    def score(self) -> tuple[int, int]:
        """(the person's correct answers, the expert's correct answers) on the images answered so far."""
        n = len(self.answers)
        person = sum(a == t for a, t in zip(self.answers, self.real))
        expert = sum(e == t for e, t in zip(self.expert_real[:n], self.real))
        return person, expert


def new_game(key: str, name: str, seed: int, rounds: int = GAME_ROUNDS, *, weights: Path | None = None) -> ExpertGame:
    """A game of ``rounds`` images, the same for the same (model, seed): at least one real held-out MNIST digit
    and one fake of ``name`` (when rounds >= 2), shuffled, judged by the model's expert."""
    spec = get_spec(name)
    rng = random.Random(seed)
    n_real = rng.randint(1, rounds - 1) if rounds >= 2 else rng.randint(0, 1)
    real = [True] * n_real + [False] * (rounds - n_real)
    rng.shuffle(real)
    digits, _ = gan.data.mnist_offline("heldout")
    picks = iter(rng.sample(range(len(digits)), n_real))
    images = []
    for is_real in real:
        if is_real:
            images.append(Image.fromarray(digits[next(picks)].numpy(), "L"))
        else:
            label = rng.randrange(len(spec.classes)) if spec.conditional else None
            images.extend(gan.sample(spec, seed=rng.randrange(gan.checks.MAX_SEED + 1), label=label, weights=weights))
    verdicts = gan.judge(name, list(images), weights=weights)
    return ExpertGame(key=key, name=name, seed=seed, images=images, real=real,
                      expert_p=[v.probability for v in verdicts])


def game_markdown(game: ExpertGame) -> str:
    """The game's state: which round, or the final score table."""
    if not game.done:
        return (f"**Round {len(game.answers) + 1} of {game.rounds}**: is this digit real, or did the forger "
                f"(`{game.name}`) make it?")
    person, expert = game.score()
    rows = ["| # | it was | you said | the expert said (P(real)) |", "|---|---|---|---|"]
    word = {True: "real", False: "fake"}
    for i, (truth, yours, theirs, p) in enumerate(zip(game.real, game.answers, game.expert_real, game.expert_p)):
        rows.append(f"| {i + 1} | {word[truth]} | {word[yours]} {'✅' if yours == truth else '❌'} | "
                    f"{word[theirs]} {'✅' if theirs == truth else '❌'} ({100 * p:.0f}%) |")
    verdict = ("You beat the expert!" if person > expert else "The expert wins." if expert > person
               else "A draw.")
    return (f"### You: {person} / {game.rounds} · Expert: {expert} / {game.rounds}. {verdict}\n\n"
            + "\n".join(rows) + f"\n\nThe expert says real when it gives an image at least a 50% chance of being "
            f"real. The images, in order, are above; game number {game.seed} of `{game.name}` replays this game.")
