"""Markdown for the results: one table per section, the machine, and the targets met or missed."""
from __future__ import annotations

from typing import Any

from benchmarks.common import Row, fmt

TITLES = {
    "throughput": "1. Generator throughput: `gan.sample` (latents -> PIL) vs the fp32 eager reference",
    "ablation": "1b. Every serving path the runtime measures (forward only, vs eager fp32)",
    "threads": "1c. Threads: `gan.sample` with torch's default thread count vs one thread (shared machine)",
    "slider": "2. Slider latency through the running app (127.0.0.1)",
    "translate": "3. Translation latency per image: `gan.translate` vs the same path with the fp32 eager generator",
    "fullres": "3b. Full resolution: a 3000x2000 photo through `gan.translate(resolution=\"full\")`, time and peak RSS, vs a plain reference",
    "projection": "3b. Projection (`gan.project`): faithfulness on real held-out digits and own faces, seconds per "
                  "projection vs the textbook loop (one start per class, one class after the other)",
    "training": "4. Training step time: `gan.train` vs a plain fp32 loop (pytorch/examples style), the same recipe, "
                "and what each extra of the trainer costs",
    "busyminute": "4d. The default training minute (mnist-dcgan) with another process keeping one core at 100%",
    "foldercache": "4b. Folder training data: an epoch decoded per file (DataLoader workers) vs from the "
                   "decoded-folder cache (`gan.folder_cache`), same batches",
    "handwriting": "4c. Your handwriting: `gan.train.finetune` on a synthetic hand of 20 digits, time and what it "
                   "gives (the digit asked for, stroke thickness and slant)",
    "coldstart": "5. Cold start: `python app.py` to the first page served",
    "firstimage": "5b. The first image against the second: a fresh `python app.py`, cold serving cache, each call "
                  "twice as soon as the page answers",
    "choicecost": "5c. The cost of choosing a serving path, in eager forward passes (batch 1, cold cache)",
    "load": "6. Load: 20 clients at once, and one client beside 4 failing model downloads",
    "gpu": "GPU: `gan.generate` on CUDA (the measured path) vs eager fp32 and a captured CUDA graph",
}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt(value)
    return str(value)


def table(rows: list[Row]) -> str:
    if not rows:
        return "_(not run)_\n"
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row.cells if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.cells.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def section_markdown(section: str, rows: list[Row]) -> str:
    return f"### {TITLES[section]}\n\n{table(rows)}"


def targets_markdown(rows: list[Row]) -> str:
    targets = [(what, met) for row in rows for what, met in row.targets]
    if not targets:
        return ""
    lines = ["| target | met |", "|---|---|"]
    lines += [f"| {what} | {'✅ yes' if met else '❌ no'} |" for what, met in targets]
    return "\n".join(lines) + "\n"


NOTES = """\
How to read this:

- Every ratio compares two paths timed alternately in the same run (reference, ours, reference, ...);
  times are medians. The machine was shared while this ran (see the load average), so absolute
  numbers wander; the ratios are what to compare.
- "Reference" is plain PyTorch as the tutorials write it: the same architecture in fp32 eager mode
  under `torch.no_grad`, NCHW, with the same latents and the same tensor -> PIL conversion.
- "max / mean px diff" compare our images with the reference's for the same seeds (0..255 levels).
- Peaks are large square `torch.mm` loops in this run; "% of peak" uses the FLOPs counted by
  `torch.utils.flop_counter` for the reference graph (Winograd convolutions do fewer multiplications,
  so they can exceed what direct convolution could reach).
- Models without bundled weights run with seeded random weights (fine for speed; the app shows them).
- Slider: "added" is taken pair by pair: each slider call minus the no-op call of the same round (timed
  next to it), then the median and p95 of those differences (not p95(slider) - p95(no-op), which is not a
  percentile of anything and can be negative). Only the browser-like SSE client, which speaks the same
  queue protocol as the web page and shows what a user waits, counts for the targets. `gradio_client`
  rows are information ("targets: information"): it polls for messages every 50 ms, which sets its ~80 ms
  floor and hides any handler shorter than that. "image-only" returns a fixed 256x256 image through the
  Sample tab's outputs: Gradio's own cost of sending an image back.
- Training: the trainer's `precision="bf16"` autocasts only where bf16 is fast (AMX or a GPU); the last
  column is the same fp32 loop with channels_last networks and batches.
"""


def markdown(info: dict[str, Any], peak: dict[str, float], rows: list[Row], sections: list[str],
             seconds: float, quick: bool = False) -> str:
    parts = [
        "# Forger benchmarks\n",
        f"Generated by `python -m benchmarks{' --quick' if quick else ''}` on {info['date']} in {seconds / 60:.0f} min.\n",
        "| machine | |", "|---|---|",
        f"| CPU | {info['cpu']} ({info['cores']} cores, {info['threads']} torch threads) |",
        f"| ISA | {info['isa']} (AMX: {'yes' if 'amx_bf16' in info['isa'] else 'no'}) |",
        f"| torch | {info['torch']} (Python {info['python']}) |",
        f"| serving device | `{info['device']}` (paths measured per model and batch: the `serving path` column) |",
        f"| matmul peak (2048², this run) | bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s, fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s |",
        f"| load average (start / end) | {info['load']} / {info.get('load_after', '?')} |",
    ]
    if "gpu" in info:
        parts.append(f"| GPU | {info['gpu']} |")
    parts.append("")
    parts.append("## Targets\n")
    parts.append(targets_markdown(rows) or "_(no targets in the sections run)_\n")
    parts.append("## Results\n")
    for section in sections:
        section_rows = [r for r in rows if r.section == section]
        if section == "gpu" and not section_rows:
            continue
        parts.append(section_markdown(section, section_rows))
    parts.append(NOTES)
    return "\n".join(parts)
