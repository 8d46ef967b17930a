"""``python -m gan evaluate``: train the digit classifier, or evaluate models and print their tables."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gan.cards import refresh_card, results_table
from gan.evaluate.classifier import CLASSIFIER_DIR, ClassifierTraining, train_classifier
from gan.evaluate.lenet import LENET_DIR, LeNetTraining, train_lenet
from gan.evaluate.run import evaluate
from gan.weights import WEIGHTS_DIR, atomic_write


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.train_classifier:
        if args.train_classifier == "lenet5":  # the second classifier, which cross-checks the first
            output = args.output or str(LENET_DIR)
            info = train_lenet(output, LeNetTraining(epochs=args.epochs or LeNetTraining.epochs,
                                                     seed=LeNetTraining.seed if args.seed is None else args.seed))
        else:
            output = args.output or str(CLASSIFIER_DIR)
            info = train_classifier(output, ClassifierTraining(epochs=args.epochs or ClassifierTraining.epochs,
                                                               seed=0 if args.seed is None else args.seed))
        print(f"wrote {output}: {info['parameters']:,} parameters, "
              f"{100 * info['accuracy_train_split']:.2f}% on the MNIST train split, {info['train_seconds']:.0f} s")
        return 0
    if not args.models:
        raise ValueError("name a model to evaluate (e.g. python -m gan evaluate mnist-dcgan), "
                         "or pass --train-classifier")
    if args.weights and len(args.models) > 1:
        raise ValueError("--weights applies to one model; evaluate one model at a time")
    results = []
    for name in args.models:
        result = evaluate(name, n=args.n, seed=args.seed or 0, weights=args.weights, pretrained=not args.random_init,
                          real=args.real, inception=args.inception_weights, classifier=args.classifier)
        results.append(result)
        print(results_table(result))
    if args.json:
        out = Path(args.json)
        payload = results[0] if len(results) == 1 else results
        atomic_write(out, lambda p: p.write_text(json.dumps(payload, indent=2) + "\n"))
        print(f"wrote {out}")
    if args.card:

        for name, result in zip(args.models, results):
            folder = Path(args.weights) if args.weights else WEIGHTS_DIR / name
            if not (folder / "config.json").exists():
                raise ValueError(f"--card needs a weights folder with config.json; {folder} has none")
            atomic_write(folder / "metrics.json", lambda p: p.write_text(json.dumps(result, indent=2) + "\n"))
            if refresh_card(folder):
                print(f"wrote {folder / 'metrics.json'} and the metrics into {folder / 'README.md'}")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``python -m gan evaluate`` (called by gan.__main__)."""
    s = sub.add_parser("evaluate", help="metrics of a model (digit classifier, FID/KID) against real data",
                       description="Evaluate models: digit-classifier metrics for the digit models (offline), "
                                   "FID/KID for RGB models (needs --real and Inception weights). "
                                   "Prints a markdown table: metric | value | real-vs-real reference | target.")
    s.add_argument("models", nargs="*", metavar="MODEL", help="one or more registered models")
    s.add_argument("--n", type=int, help="samples / translations (default: 1250 noise, whole test set translators)")
    s.add_argument("--seed", type=int, help="latent seed, default 0 (also the classifier's training seed: default 0 "
                                            "for cnn, 1 for lenet5)")
    s.add_argument("--weights", help="evaluate these weights instead of the registry's")
    s.add_argument("--random-init", action="store_true", help="evaluate a freshly initialised generator (sanity check)")
    s.add_argument("--real", help="RGB models: a folder of real images for FID/KID")
    s.add_argument("--inception-weights", help="RGB models: an Inception weights file (default: the torch.hub cache)")
    s.add_argument("--classifier", help="a digit-classifier folder (default: weights/digit-classifier; the second "
                                        "one, trained differently: weights/digit-classifier-lenet)")
    s.add_argument("--json", help="also write the results as JSON to this file")
    s.add_argument("--card", action="store_true",
                   help="also write metrics.json into the weights folder (--weights, else weights/MODEL) and "
                        "put the results in its model card")
    s.add_argument("--train-classifier", nargs="?", const="cnn", choices=("cnn", "lenet5"),
                   help="train a digit classifier on the MNIST heldout split and write it (see --output): cnn (the "
                        "default, weights/digit-classifier) or lenet5 (the second, weights/digit-classifier-lenet)")
    s.add_argument("--epochs", type=int, help=f"--train-classifier: epochs (default: {ClassifierTraining.epochs} "
                                              f"cnn, {LeNetTraining.epochs} lenet5)")
    s.add_argument("-o", "--output", help="--train-classifier: the output folder (default: the classifier's own)")
    s.set_defaults(func=cmd_evaluate)
