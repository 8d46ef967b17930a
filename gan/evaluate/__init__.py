"""How good is a model? FID / KID for RGB models, digit-classifier metrics for the digit models.

The metrics, their real-vs-real references, the test sets and the targets are explained in
``docs/notes/evaluation.md``. ``python -m gan evaluate MODEL`` prints the table; ``evaluate`` returns it.

Layout: ``classifier.py`` (the digit classifier: network, training, loading), ``lenet.py`` (the second
classifier, trained differently, which cross-checks the first), ``metrics.py`` (distances,
the digit metrics and their targets, FID / KID), ``run.py`` (a model's outputs on its test inputs, and
``evaluate``), ``cli.py`` (``python -m gan evaluate``). This file only re-exports.
"""
# This file only re-exports, constants included (callers read them as gan.evaluate.X):
# ruff: noqa: F401
from __future__ import annotations

from gan.cards import results_table
from gan.evaluate.classifier import (
    CLASSIFIER_DIR, TRAIN_CLASSIFIER_COMMAND, ClassifierTraining, DigitClassifier, classify, load_classifier,
    mnist_framed, train_classifier,
)
from gan.evaluate.lenet import LENET_DIR, LeNet5, LeNetTraining, train_lenet
from gan.evaluate.metrics import (
    CONFIDENT, HALF, INCEPTION_SKIPPED, INCEPTION_URL, MIN_SHARE, REAL_HALF_SIZE, TARGETS, InceptionUnavailable,
    RealDigits, attach_targets, digit_metrics, fid_kid, frechet_distance, inception_cache_path, inception_features,
    inception_weights, interleaved, label_metrics, real_halves,
)
from gan.evaluate.run import DIGIT_MODELS, TO_MNIST, evaluate, translator_inputs, translator_test_set

__all__ = [
    "evaluate", "results_table", "attach_targets", "TARGETS",
    "digit_metrics", "label_metrics", "frechet_distance", "real_halves", "interleaved", "mnist_framed",
    "translator_inputs", "translator_test_set",
    "DigitClassifier", "ClassifierTraining", "train_classifier", "load_classifier", "classify",
    "LeNet5", "LeNetTraining", "train_lenet",
    "fid_kid", "inception_features", "inception_weights", "inception_cache_path", "InceptionUnavailable",
]
