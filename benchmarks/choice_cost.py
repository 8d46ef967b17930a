"""What choosing a serving path costs, in units of the model's own eager forward pass (issue 30).

    python -m benchmarks --only choicecost
    ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 python -m benchmarks --only choicecost   # a row of the CPU matrix

For every noise model (cifar10-gan with seeded untrained weights, the network a user gets after training
it; the others with their bundled weights), a fresh ``gan.serving.Served`` measures at batch 1 on a cold
cache: the cost of the whole choice (its own runs and builds), eager's timed forward pass, their ratio, the
path chosen, and why the others were not. The ISA and thread settings of the run are in the table.
"""
from __future__ import annotations

import os
import time

import torch

from benchmarks.common import NOISE_MODELS, Row, has_weights

TARGET = 40.0  # issue 30: cifar10-gan's choice costs at most this many of its eager forward passes


def measure(name: str) -> tuple[object, float]:
    import gan
    from gan import serving

    spec = gan.registry.get_spec(name)
    pretrained = has_weights(name)
    if not pretrained:
        torch.manual_seed(0)
    model = gan.load_generator(name, pretrained=pretrained, device="cpu")
    served = serving.Served(model, torch.device("cpu"), f"bench-{name}", serving.probe_for(spec),
                            accuracy_batch=16 if spec.task == "noise" else 1)
    start = time.perf_counter()
    choice = served.measure(serving.probe_like(spec))
    return choice, time.perf_counter() - start


def run(quick: bool = False) -> list[Row]:
    rows = []
    setting = f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '-')}, " \
              f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '-')}, threads {torch.get_num_threads()}"
    for name in (("cifar10-gan",) if quick else NOISE_MODELS):
        choice, wall = measure(name)
        ratio = choice.cost_ms / choice.eager_ms
        target = [(f"{name}: the choice <= {TARGET:g}x its eager forward pass", ratio <= TARGET)] \
            if name == "cifar10-gan" else []
        rows.append(Row("choicecost", {
            "model": name, "weights": "bundled" if has_weights(name) else "untrained", "setting": setting,
            "eager forward ms": choice.eager_ms, "choice ms": choice.cost_ms, "wall ms": wall * 1e3,
            "choice / forward": ratio, "chosen": choice.path,
            "not used": "; ".join(f"{p}: {why}" for p, why in choice.rejected.items()) or "-"}, target))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row.cells)
