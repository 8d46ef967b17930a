"""Model cards and results tables: the README.md of a weights folder, and the metrics as Markdown.

Shared by training (which writes the card on export), evaluation (which adds its metrics) and push,
so that none of them imports another.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gan.registry import ModelSpec, get_spec
from gan.weights import atomic_write

log = logging.getLogger(__name__)


_NAMES = {
    "requested_digit_accuracy": "samples classified as the requested digit",
    "label_kept": "translations that keep the source digit's label",
    "input_label_accuracy": "untranslated inputs classified correctly (baseline)",
    "label_kept_round_trip": "label kept after translating back (round trip)",
    "classifier_fd": "classifier Fréchet distance to real digits",
    "class_coverage": "digits covered (of 10)",
    "mean_confidence": "mean classifier confidence",
    "confident_share": "samples read with classifier confidence >= 0.9",
    "rarest_digit_share": "share of the rarest digit",
    "fid": "FID", "kid": "KID",
}
_PERCENT = {"requested_digit_accuracy", "label_kept", "input_label_accuracy", "label_kept_round_trip",
            "confident_share", "rarest_digit_share"}


def format_metric(value: float | None, key: str) -> str:
    if value is None:
        return "—"
    if key in _PERCENT:
        return f"{100 * value:.1f}%"
    if key == "class_coverage":
        return f"{int(value)}"
    if key == "kid":
        return f"{value:.2e}"
    if key == "mean_confidence":
        return f"{value:.3f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def results_table(result: dict[str, Any]) -> str:
    """A README-ready markdown table: metric | value | real-vs-real reference | target, then notes."""
    lines = [f"**{result['model']}** ({result.get('weights', 'no weights loaded')}; n = {result.get('n')})", ""]
    if result["metrics"]:
        lines += ["| metric | value | real-vs-real reference | target |", "|---|---|---|---|"]
    for key, m in result["metrics"].items():
        value = format_metric(m["value"], key)
        if key == "classifier_fd" and m.get("ratio") is not None:
            value += f" ({m['ratio']:.2f}x ref)" if m["ratio"] < 10 else f" ({m['ratio']:.0f}x ref)"
        target = "—" if m["target"] is None else f"{m['target']} {'✅' if m['passed'] else '❌'}"
        lines.append(f"| {_NAMES.get(key, key)} | {value} | {format_metric(m['reference'], key)} | {target} |")
    for key, label in (("requested_digit_accuracy_per_digit", "requested digit accuracy per digit (0-9), %"),
                       ("label_kept_per_digit", "label kept per digit (0-9), %")):
        if key in result:
            per = " ".join("—" if a is None else f"{100 * a:.0f}" for a in result[key])
            lines.append(f"| {label} | {per} | — | — |")
    if "histogram" in result:
        lines.append(f"| class histogram (0-9) | {' '.join(map(str, result['histogram']))} | "
                     f"{' '.join(map(str, result['reference_histogram']))} | — |")
    if result["metrics"]:
        lines.append("")
    if result.get("inputs"):
        lines.append(f"Inputs: {result['inputs']}.")
    if result.get("classifier"):  # which judge: the bundled classifier, or another (--classifier)
        judge = result["classifier"]
        accuracy = judge.get("accuracy_train_split")
        lines.append(f"Classifier: {Path(judge['path']).name}" + (
            f" ({100 * accuracy:.2f}% on the unseen MNIST train split)." if accuracy is not None else "."))
    for why in result["skipped"].values():
        lines.append(why)
    lines.extend(result["notes"])
    if result.get("passed") is not None:
        lines.append(f"Targets: {'all met' if result['passed'] else 'NOT all met'}.")
    return "\n".join(lines).rstrip() + "\n"


def _licence_tag(licence: str) -> str:
    for prefix, tag in (("MIT", "mit"), ("BSD-2-Clause", "bsd-2-clause"), ("Apache", "apache-2.0")):
        if licence.startswith(prefix):
            return tag
    return "other"


def _metrics_markdown(metrics: dict[str, Any]) -> str:
    try:  # the evaluation's own table when it can read the file
        return results_table(metrics)
    except Exception:  # another shape of metrics.json: a plain table of its numbers
        flat = {k: v.get("value") if isinstance(v, dict) else v for k, v in metrics.get("metrics", metrics).items()}
        rows = [f"| {k} | {v} |" for k, v in flat.items() if isinstance(v, (int, float, str))]
        return "\n".join(["| metric | value |", "|---|---|", *rows]) + "\n"


def model_card(spec: ModelSpec, name: str, training: dict[str, Any], metrics: dict[str, Any] | None = None) -> str:
    """The README.md of an exported weights folder: what it is, how it was trained, samples, use, metrics."""
    own = get_spec(name) if name != spec.name else spec
    losses = ", ".join(f"{k} {v:.3f}" for k, v in training.get("final_losses", {}).items()) or "—"
    classes = f" (classes: {', '.join(training['classes'])})" if training.get("classes") else ""
    rows = [
        ("data", f"`{training['data']}`{classes}, {training['dataset_size']:,} items"),
        ("steps", f"{training['steps']:,} of batch {training['batch_size']} "
                  f"({training['epochs']:.3g} epochs)"),
        ("recipe", training["recipe"]),
        ("precision", training["precision"]),
        ("time", f"{training['train_seconds']:.0f} s"),
        ("hardware", training["hardware"]),
        ("final losses", losses),
        ("seed", str(training["seed"])),
    ]
    table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    if spec.task == "noise":
        grid_text = ("Rows are the classes " + ", ".join(spec.classes) + "; each column keeps one latent."
                     if spec.conditional else "Samples from fixed latents.")
        use = (f'import gan\ng = gan.load_generator("{name}", weights="PATH/TO/THIS/FOLDER")\n'
               f'images = gan.sample("{name}", seed=0, n=8, weights="PATH/TO/THIS/FOLDER")')
    else:
        grid_text = ("Rows: input A, output, target B." if spec.family == "pix2pix" else
                     "Rows: A, A translated to B, B, B translated to A.")
        use = f'import gan\nout = gan.translate("{name}", "input.png", weights="PATH/TO/THIS/FOLDER")'
    parts = [
        f"---\nlicense: {_licence_tag(own.licence)}\nlibrary_name: pytorch\ntags: [gan, forger, {own.family}]\n---",
        f"# {name}\n\n{own.description}",
        f"Trained with Forger: `{training['command']}`.",
        f"## Training\n\n{table}",
        f"## Samples\n\n![samples](samples.png)\n\n{grid_text} (The grid was made during training"
        + (f" from `{spec.name}`'s run, which trains both directions" if name != spec.name else "") + ".)",
        f"## Use\n\n```python\n{use}\n```",
    ]
    if metrics:
        parts.append(f"## Metrics\n\n{_metrics_markdown(metrics).rstrip()}")
    parts.append(f"## Licence\n\n{own.licence}")
    return "\n\n".join(parts) + "\n"


def refresh_card(folder: Path) -> bool:
    """Rewrite a trained weights folder's model card from its config.json, with the metrics of its
    metrics.json when it has one. False (card left alone) when config.json has no training facts."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else None
    training = config.get("training")
    if not training:
        if metrics:
            log.warning("%s has no training facts in config.json; the model card is left as it is", folder)
        return False
    card = model_card(get_spec(training.get("model", config["model"])), config["model"], training, metrics)
    atomic_write(folder / "README.md", lambda p: p.write_text(card))
    return True
