"""Run the benchmarks and write benchmarks/RESULTS.md.

    python -m benchmarks                  # everything (about 15-25 minutes on 2 CPU cores)
    python -m benchmarks --quick          # a fast subset (a few minutes)
    python -m benchmarks --only throughput,slider --out /tmp/results.md
    python -m benchmarks --only throughput --without-onnxruntime   # as after the README's install
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

SECTIONS = ("throughput", "ablation", "threads", "slider", "translate", "projection", "training", "busyminute",
            "foldercache",
            "handwriting", "coldstart", "firstimage", "choicecost", "load", "gpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast subset: fewer repeats, the main models only")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None, help="where to write the Markdown (default: "
                        "benchmarks/RESULTS.md; with --quick or --only: printed only unless given)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--without-onnxruntime", action="store_true", help="serve as after the README's install, "
                        "which has no ONNX Runtime (the dev requirements have it): it is not a candidate in this "
                        "process, nor in the app the firstimage section starts")
    args = parser.parse_args(argv)
    if args.without_onnxruntime:
        sys.modules["onnxruntime"] = None  # importlib.util.find_spec then finds nothing
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.quick and not args.only:
        chosen = [s for s in chosen if s not in ("ablation", "threads")]

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from benchmarks import common, report

    info = common.machine()
    print(f"# {info['cpu']}, {info['cores']} cores, torch {info['torch']}, serving device: {info['device']}",
          flush=True)
    started = time.perf_counter()
    peak = common.matmul_peak()
    print(f"matmul peak: bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s, fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s", flush=True)
    rows: list[common.Row] = []
    for section in chosen:
        t0 = time.perf_counter()
        if section == "throughput":
            from benchmarks import throughput
            new = throughput.run(peak, args.quick)
        elif section == "ablation":
            from benchmarks import throughput
            new = throughput.ablation(repeats=3 if args.quick else 5,
                                      translators=("cyclegan-horse2zebra", "pix2pix-edges2shoes"))
        elif section == "threads":
            from benchmarks import throughput
            new = throughput.threads(repeats=3 if args.quick else 5)
        elif section == "slider":
            from benchmarks import slider
            new = slider.run(args.quick)
        elif section == "translate":
            from benchmarks import translate
            new = translate.run(peak, args.quick)
        elif section == "fullres":
            from benchmarks import fullres
            new = fullres.run(args.quick)
        elif section == "projection":
            from benchmarks import projection
            new = projection.run(args.quick)
        elif section == "training":
            from benchmarks import training
            new = training.run(args.quick)
        elif section == "busyminute":
            from benchmarks import busy_minute
            new = busy_minute.run(args.quick)
        elif section == "foldercache":
            from benchmarks import folder_cache
            new = folder_cache.run(args.quick)
        elif section == "handwriting":
            from benchmarks import handwriting
            new = handwriting.run(args.quick)
        elif section == "coldstart":
            from benchmarks import coldstart
            new = coldstart.run(args.quick)
        elif section == "firstimage":
            from benchmarks import first_image
            new = first_image.run(args.quick)
        elif section == "choicecost":
            from benchmarks import choice_cost
            new = choice_cost.run(args.quick)
        elif section == "load":
            from benchmarks import load
            new = load.run(args.quick)
        else:
            from benchmarks import gpu
            new = gpu.run(common.matmul_peak("cuda") if torch.cuda.is_available() else peak, args.quick)
        rows += new
        print(report.section_markdown(section, new), flush=True)
        print(f"({section}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    info["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3]) \
        if Path("/proc/loadavg").exists() else "?"
    text = report.markdown(info, peak, rows, chosen, time.perf_counter() - started, quick=args.quick)
    out = args.out if args.out is not None else (None if (args.quick or args.only) else common.RESULTS)
    if out is not None:
        out.write_text(text)
        print(f"wrote {out}")
    print(report.targets_markdown(rows))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    raise SystemExit(main())
