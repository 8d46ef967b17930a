"""Remake the README's handwriting figure and example hand: python docs/results/handwriting.py [WEIGHTS_FOLDER]

Writes docs/examples/hand/<digit>/<n>.png: the synthetic hand (``gan.evaluate.style.synthetic_hand``: 20 real
held-out MNIST digits rewritten with thick strokes and a strong slant), the README's example for
``python -m gan finetune``. Then fine-tunes the bundled class-conditional digit model on it with the recipe as it
ships, unless a folder of weights fine-tuned on that hand is given, and writes docs/results/handwriting.png: the
hand, the bundled model's samples, and the fine-tuned model's samples from the same latents, each a row per digit
asked for. One torch thread, eager fp32: the same run gives the same picture on one machine.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import gan  # noqa: E402
from gan import latent  # noqa: E402
from gan.evaluate.style import hand_report, synthetic_hand  # noqa: E402
from gan.train.finetune import Hand, finetune, hand_models  # noqa: E402

CELL, COLUMNS, GAP, TITLE = 28 * 2, 4, 16, 22


def panel(images: torch.Tensor, title: str, columns: int = COLUMNS) -> Image.Image:
    """(10 * columns, 1, 28, 28) in [-1, 1], digit-major -> a titled grid, a row per digit, 2x nearest."""
    out = Image.new("L", (columns * CELL, TITLE + 10 * CELL), 255)
    ImageDraw.Draw(out).text((2, 4), title, fill=0)
    for i, x in enumerate(images):
        tile = Image.fromarray(((x[0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy(), "L")
        where = ((i % columns) * CELL, TITLE + (i // columns) * CELL)
        out.paste(tile.resize((CELL, CELL), Image.Resampling.NEAREST), where)
    return out


def main() -> None:
    torch.set_num_threads(1)
    model = hand_models()[0]
    images, labels = synthetic_hand(2)
    examples = ROOT / "docs" / "examples" / "hand"
    for i, (x, y) in enumerate(zip(images, labels.tolist())):
        (examples / str(y)).mkdir(parents=True, exist_ok=True)
        digit = Image.fromarray(((x[0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy(), "L")
        digit.save(examples / str(y) / f"{i // 10}.png", optimize=True)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(sys.argv[1]) if len(sys.argv) > 1 else list(finetune(
            Hand(images, labels), model=model, out=Path(tmp), precision="fp32"))[-1].weights
        z = latent.seeded_latents(1, COLUMNS, gan.registry.get_spec(model).latent_dim).repeat(10, 1)
        asked = torch.arange(10).repeat_interleave(COLUMNS)  # a row per digit, the same latents in every row
        with torch.inference_mode():
            before = gan.load_generator(model)(z, asked)
            after = gan.load_generator(model, weights=weights)(z, asked)
        report = hand_report(model, images, str(weights))
    hand = images[torch.argsort(labels, stable=True)]  # a row per digit
    panels = [panel(hand, "the hand (20 digits)", 2), panel(before, "bundled"), panel(after, "fine-tuned on it")]
    sheet = Image.new("L", (sum(p.width for p in panels) + GAP * (len(panels) - 1), panels[0].height), 255)
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + GAP
    path = ROOT / "docs" / "results" / "handwriting.png"
    sheet.save(path)
    b, a = report["before"], report["after"]
    print(f"{path}\ndigit asked for: {b['requested_digit']:.1%} -> {a['requested_digit']:.1%}; thickness "
          f"{b['thickness']:.2f} -> {a['thickness']:.2f} px (hand {report['hand']['thickness']:.2f}); slant "
          f"{b['slant']:.1f} -> {a['slant']:.1f} degrees (hand {report['hand']['slant']:.1f})")


if __name__ == "__main__":
    main()
