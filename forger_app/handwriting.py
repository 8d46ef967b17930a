"""The Train tab's handwriting section: the user's labelled digits (drawn on the sketchpad with the digit
picker, or uploaded), kept in their session, shown in a gallery, and handed to ``gan.train.finetune``.

Each digit is framed as the model sees its inputs (``gan.train.finetune.hand_from_images``: MNIST's framing,
dark-on-light inverted) when it is added, so the gallery shows what the model will learn from."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from forger_app import display, uploads
from forger_app.sessions import Session
from gan.catalog import hand_models

if TYPE_CHECKING:  # the page is built before torch loads: gan.train is imported when a digit is added
    import torch

    from gan.train.finetune import Hand


def hand_model() -> str | None:
    """The model the section teaches a hand: the first that can learn one (None: the section is hidden)."""
    models = hand_models()
    return models[0] if models else None


def digit_choices() -> list[str]:
    """The digit picker's labels: the hand model's classes."""
    from gan.registry import get_spec

    name = hand_model()
    return list(get_spec(name).classes) if name else []


def hand_view(session: Session | None) -> tuple[list[tuple[Image.Image, str]], str]:
    """(the gallery: each digit enlarged, captioned with its label; a line saying how many and of what)."""
    from gan.train import finetune

    hand = session.hand if session is not None else []
    if not hand:
        return [], (f"No digits yet: draw one, pick which digit it is and press **Add**, or upload images of one "
                    f"digit. At least {finetune.MIN_DIGITS} are needed; a few of every digit teach the most.")
    classes = digit_choices()
    counts = {}
    for _, label in hand:
        counts[classes[label]] = counts.get(classes[label], 0) + 1
    items = [(display.enlarge(_picture(x), 112), classes[label]) for x, label in hand]
    have = ", ".join(f"{d} ×{n}" for d, n in sorted(counts.items()))
    missing = finetune.MIN_DIGITS - len(hand)
    more = f" **{missing} more** to go." if missing > 0 else " Ready: press **Fine-tune on my handwriting**."
    return items, f"{len(hand)} digit{'s' * (len(hand) != 1)} of yours ({have}).{more}"


def _picture(x: torch.Tensor) -> Image.Image:
    """(1, S, S) in [-1, 1] -> a grey PIL image."""
    return Image.fromarray(((x[0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy(), "L")


def _label(digit: Any) -> str:
    classes = digit_choices()
    text = "" if digit is None else str(digit).strip()
    if text not in classes:
        raise ValueError(f"choose which digit it is ({', '.join(classes)})")
    return text


def _add(session: Session, images: list[Any], digit: str) -> None:
    from gan.train import finetune

    room = finetune.MAX_DIGITS - len(session.hand)
    if len(images) > room:
        raise ValueError(f"a hand holds at most {finetune.MAX_DIGITS} digits; you have {len(session.hand)}: "
                         f"give at most {max(room, 0)} more, or press Clear my digits")
    hand = finetune.hand_from_images(images, [digit] * len(images), hand_model())
    session.hand.extend(zip(hand.images, hand.labels.tolist()))


def add_drawn(sketch: Any, digit: Any, session: Session) -> None:
    """The sketchpad's drawing, labelled ``digit``, added to the session's hand."""
    label = _label(digit)
    drawing = uploads.sketch_image(sketch)
    if drawing is None:
        raise ValueError("draw a digit on the sketchpad first")
    _add(session, [drawing], label)


def add_uploaded(files: Any, digit: Any, session: Session) -> int:
    """Uploaded images, each one ``digit``, added to the session's hand; returns how many."""
    from gan.train import finetune

    label = _label(digit)
    files = files if isinstance(files, list) else [files] if files else []
    if not files:
        raise ValueError("upload one or more images of the digit")
    if len(files) > finetune.MAX_DIGITS:
        raise ValueError(f"give at most {finetune.MAX_DIGITS} images at once")
    _add(session, [uploads.open_upload(f) for f in files], label)
    return len(files)


def session_hand(session: Session) -> Hand:
    """The session's digits as a ``gan.train.finetune.Hand``; at least MIN_DIGITS of them, or a message."""
    import torch

    from gan.train import finetune

    if len(session.hand) < finetune.MIN_DIGITS:
        raise ValueError(f"give at least {finetune.MIN_DIGITS} digits of your handwriting first (you have "
                         f"{len(session.hand)}): draw them below, or upload them")
    images, labels = zip(*session.hand)
    return finetune.Hand(torch.stack(images), torch.tensor(labels))
