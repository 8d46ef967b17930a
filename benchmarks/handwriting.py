"""Your handwriting, in a minute (``gan.train.finetune``): how long fine-tuning takes here, and what it gives.

The hand is synthetic (``gan.evaluate.style.synthetic_hand``): 20 real MNIST digits of the split no generator
trains on, two of each, rewritten with thick strokes and a strong slant. The run is the recipe as it ships
(the app's and ``python -m gan finetune``'s defaults), timed wall clock from the call to the exported weights,
with the CPU seconds per thread beside it (the machine is shared: wall time includes waiting for other jobs).
Then ``hand_report``: 500 samples each before and after (every digit asked for 50 times), read by the bundled
digit classifier, and their stroke thickness and slant against the hand's and MNIST's.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Row
from gan.evaluate.style import hand_report, synthetic_hand
from gan.train.finetune import STEPS, Hand, finetune, hand_models

TARGET_S = 60.0  # fine-tuning on 2 CPU cores
TARGET_DIGIT = 0.90  # samples read as the digit asked for, after


def run(quick: bool = False) -> list[Row]:
    model = hand_models()[0]
    images, labels = synthetic_hand(2)
    with tempfile.TemporaryDirectory() as out:
        wall, cpu = time.perf_counter(), time.process_time()
        events = list(finetune(Hand(images, labels), model=model, out=Path(out)))
        wall, cpu = time.perf_counter() - wall, (time.process_time() - cpu) / torch.get_num_threads()
        report = hand_report(model, images, str(events[-1].weights))
    b, a, h, m, shift = report["before"], report["after"], report["hand"], report["mnist"], report["shift"]
    cells = {
        "model": model, "hand": f"{len(labels)} synthetic digits (thick, slanted)", "steps": events[-1].step,
        "threads": torch.get_num_threads(), "fine-tuning s (wall)": round(wall, 1), "CPU s / thread": round(cpu, 1),
        "digit asked for, before → after": f"{b['requested_digit']:.1%} → {a['requested_digit']:.1%}",
        "thickness px: MNIST, hand, before → after":
            f"{m['thickness']:.2f}, {h['thickness']:.2f}, {b['thickness']:.2f} → {a['thickness']:.2f}",
        "slant °: MNIST, hand, before → after":
            f"{m['slant']:.1f}, {h['slant']:.1f}, {b['slant']:.1f} → {a['slant']:.1f}",
        "share of the way to the hand (thickness, slant)": ", ".join(f"{shift.get(k, float('nan')):.0%}"
                                                                     for k in ("thickness", "slant")),
    }
    targets = [(f"fine-tuning ≤ {TARGET_S:.0f} s ({wall:.0f} s wall, {STEPS} steps)", wall <= TARGET_S),
               (f"digit asked for ≥ {TARGET_DIGIT:.0%} after ({a['requested_digit']:.1%})",
                a["requested_digit"] >= TARGET_DIGIT),
               ("samples move towards the hand in thickness and slant",
                shift.get("thickness", 0) > 0 and shift.get("slant", 0) > 0)]
    return [Row("handwriting", cells, targets)]
