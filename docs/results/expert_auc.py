"""The README's expert table: ROC AUC of each bundled digit expert (gan.judge's logit) for 200 real held-out
digits against 200 clearly wrong images (uniform noise, blank canvases, pixel-shuffled digits, heavily
blurred digits: the images of tests/test_judge.py), per kind, and against 200 of the model's own samples.

    python docs/results/expert_auc.py [--weights NAME=FOLDER ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(root), str(root / "tests")]
import gan  # noqa: E402
from test_judge import DIGIT_MODELS, _real, _wrong, auc  # noqa: E402

KINDS = ("uniform noise", "blank", "shuffled pixels", "blurred")
N = 200

p = argparse.ArgumentParser()
p.add_argument("--weights", nargs="*", default=[], help="NAME=FOLDER: judge with this weights folder's expert")
weights = dict(w.split("=", 1) for w in p.parse_args().weights)
print(f"| model | real vs clearly wrong | {' | '.join(KINDS)} | real vs its own samples |")
print("|---|---|" + "---|" * len(KINDS) + "---|")
for name in DIGIT_MODELS:
    w = weights.get(name)
    real = [v.logit for v in gan.judge(name, _real(N), weights=w)]
    wrong = [v.logit for v in gan.judge(name, _wrong(N), weights=w)]
    own = [v.logit for v in gan.judge(name, gan.sample(name, seed=1, n=N, weights=w), weights=w)]
    kinds = " | ".join(f"{auc(real, wrong[k::len(KINDS)]):.3f}" for k in range(len(KINDS)))
    print(f"| {name} | {auc(real, wrong):.3f} | {kinds} | {auc(real, own):.3f} |")
