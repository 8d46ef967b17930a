"""The command line: python -m gan list | info | sample | interpolate | project | translate | export | judge | import | train | refine-expert | push | evaluate."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch


def _grid(images, columns: int):
    from PIL import Image

    columns = max(1, min(columns, len(images)))
    rows = (len(images) + columns - 1) // columns
    w, h = images[0].size
    sheet = Image.new(images[0].mode, (columns * w, rows * h))
    for i, im in enumerate(images):
        sheet.paste(im, ((i % columns) * w, (i // columns) * h))
    return sheet


def cmd_list(args: argparse.Namespace) -> int:
    import gan

    print(f"{'model':34} {'task':10} {'family':9} {'size':>5} {'offline':8} description")
    for name in gan.list_models(args.family):
        info = gan.model_info(name)
        print(f"{name:34} {info['task']:10} {info['family']:9} {info['image_size']:>5} "
              f"{'yes' if info['offline'] else 'no':8} {info['description']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    import gan

    print(json.dumps(gan.model_info(args.model), indent=2))
    if args.no_serving:
        return 0
    try:
        served = gan.serving.serving_generator(args.model, args.weights)
    except gan.WeightsUnavailableError:
        print("\nserving: no weights on this machine, so no path was chosen")
        return 0
    print(f"\nserving on {gan.hardware.device_label(served.device)} (torch {torch.__version__}); "
          f"accuracy bound: mean {gan.serving.BOUND_MEAN}, max {gan.serving.BOUND_MAX} levels of 255 from eager fp32")
    choice = gan.serving_choice(args.model, weights=args.weights)
    print(f"every batch size ({choice.source}): {choice.why}")
    for path, ms in sorted(choice.times_ms.items(), key=lambda kv: kv[1]):
        err = choice.errors.get(path, [0, 0])
        many = choice.many_ms.get(path)
        batched = f"   {gan.serving.MANY} images {many:8.1f} ms" if many is not None else ""
        print(f"    {path:16} {ms:9.3f} ms   {choice.times_ms['eager'] / ms:5.2f}x   "
              f"error mean {err[0]:.3f} max {err[1]:.0f}{batched}")
    for path, why in choice.rejected.items():
        print(f"    {path:16} not used: {why}")
    return 0


def _latent_file(path: str | None, what: str = "--latent") -> tuple[torch.Tensor | None, int | None]:
    """A latent written by ``project`` (.npy of shape (latent_dim,) or (n, latent_dim)) and the label saved
    beside it, or (None, None). The file is read as plain numbers: never unpickled."""
    if path is None:
        return None, None
    import json

    import numpy as np

    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what} {Path(path).name}: not a readable .npy latent ({type(e).__name__})") from None
    if z.dtype.kind not in "fiu" or z.ndim not in (1, 2):
        raise ValueError(f"{what} {Path(path).name}: expected numbers shaped (latent_dim,) or (n, latent_dim), "
                         f"got {z.dtype} {z.shape}")
    meta = Path(path).with_suffix(".json")
    label = json.loads(meta.read_text()).get("label") if meta.is_file() else None
    return torch.from_numpy(np.atleast_2d(z).astype(np.float32)), label


def cmd_project(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    from tqdm import tqdm

    import gan

    with tqdm(total=100, desc="projecting", unit="%", disable=args.quiet, leave=False) as bar:
        def progress(fraction: float, _message: str) -> None:
            bar.update(round(100 * fraction) - bar.n)

        p = gan.project(args.model, args.image, steps=args.steps, label=args.label, seed=args.seed,
                        starts=args.starts, weights=args.weights, progress=progress)
    out = Path(args.output)
    np.save(out, p.z.numpy())
    meta = out.with_suffix(".json")
    meta.write_text(json.dumps({"model": args.model, "label": p.label, "distance": round(p.distance, 5),
                                "psnr": round(p.psnr, 2), "seed": args.seed, "steps": args.steps}, indent=2))
    recon = Path(args.reconstruction) if args.reconstruction else out.with_name(out.stem + "_reconstruction.png")
    _grid([p.target, p.reconstruction], 2).save(recon)
    found = f", label {p.label}" if p.label is not None else ""
    print(f"wrote {out} (latent{found}), {meta} and {recon} (input | reconstruction): PSNR {p.psnr:.1f} dB, "
          f"RMS distance {p.distance:.3f}, {p.seconds:.1f} s")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import gan

    z, saved_label = _latent_file(args.latent)
    label = args.label if args.label is not None else saved_label
    images = gan.sample(args.model, seed=args.seed, n=args.n, z=z, label=label, truncation=args.truncation,
                        weights=args.weights, precision=args.precision)
    _grid(images, args.columns).save(args.output)
    print(f"wrote {args.output} ({len(images)} image{'s' if len(images) > 1 else ''})")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    import gan

    za, saved_a = _latent_file(args.latent, "--latent")
    zb, saved_b = _latent_file(args.latent_b, "--latent-b")
    if za is None and args.seed_a is None or zb is None and args.seed_b is None:
        raise ValueError("give each end a seed or a latent: SEED_A SEED_B, --latent z_a.npy, --latent-b z_b.npy")
    frames = gan.interpolate(args.model, args.seed_a, args.seed_b, args.steps, mode=args.mode,
                             label_a=args.label_a if args.label_a is not None else saved_a,
                             label_b=args.label_b if args.label_b is not None else saved_b,
                             z_a=None if za is None else za[0], z_b=None if zb is None else zb[0],
                             weights=args.weights, precision=args.precision)
    out = Path(args.output)
    if out.suffix.lower() == ".gif":
        frames[0].save(out, save_all=True, append_images=frames[1:] + frames[-2:0:-1], duration=80, loop=0)
    else:
        _grid(frames, len(frames)).save(out)
    print(f"wrote {out} ({len(frames)} frames)")
    return 0


def _bar(desc: str):
    """A tqdm progress bar as a ``progress(done, total)`` callback, and the bar to close."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="", leave=False, disable=None)

    def progress(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()
    return progress, bar


def cmd_translate(args: argparse.Namespace) -> int:
    import gan
    from gan.translation import VIDEO_SUFFIXES

    source = Path(args.image)
    options = dict(weights=args.weights, precision=args.precision, resolution=args.resolution, mode=args.mode,
                   seed=args.seed)
    if source.is_dir():
        if not args.output:
            raise ValueError("translating a folder needs an output folder: -o OUT_FOLDER")
        progress, bar = _bar("images")
        with bar:
            written, failed = gan.translate_folder(args.model, source, args.output, progress=progress, **options)
        for name, error in failed.items():
            print(f"skipped {name}: {error}", file=sys.stderr)
        print(f"wrote {len(written)} image{'s' if len(written) != 1 else ''} to {args.output}")
        return 1 if failed and not written else 0
    output = Path(args.output or "translated.png")
    video_in = source.suffix.lower() in VIDEO_SUFFIXES and (source.suffix.lower() != ".gif"
                                                             or output.suffix.lower() in (".gif", ".mp4"))
    if video_in:
        if output.suffix.lower() not in (".gif", ".mp4"):
            output = output.with_suffix(".mp4")
        progress, bar = _bar("frames")
        with bar:
            frames = gan.translate_video(args.model, source, output, progress=progress, **options)
        print(f"wrote {output} ({frames} frames)")
        return 0
    progress, bar = _bar("tiles")
    with bar:
        image = gan.translate(args.model, source, progress=progress, **options)
    image.save(output)
    print(f"wrote {output} ({image.width}x{image.height})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import gan

    path, diff = gan.export_model(args.model, args.output, format=args.format, weights=args.weights,
                                  pretrained=not args.untrained, mode=args.mode, verify=not args.no_check)
    checked = "not checked" if diff is None else f"max |difference| from PyTorch fp32: {diff:.2e}"
    print(f"wrote {path} ({args.format}; {checked})")
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    import gan

    verdicts = gan.judge(args.model, list(args.images), label=args.label, weights=args.weights)
    for path, v in zip(args.images, verdicts):
        under = f" as {v.label}" if v.label is not None else ""
        print(f"{Path(path).name}: P(real){under} = {v.probability:.3f} (logit {v.logit:+.2f}). {v.sentence}")
        if args.heatmaps and v.heatmap is not None:
            out = Path(args.heatmaps) / f"{Path(path).stem}.heatmap.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            v.heatmap.save(out)
            print(f"    patch map: {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from gan import weights
    from gan.registry import get_spec

    spec = get_spec(args.model)
    card = Path(args.card).read_text() if args.card else ""
    folder = weights.import_checkpoint(spec, args.checkpoint, args.output, card=card,
                                       dtype=torch.float16 if args.fp16 else torch.float32)
    print(f"wrote {folder}")
    return 0


def _precision_option(s: argparse.ArgumentParser) -> None:
    from gan.serving import PRECISIONS

    s.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="serving path (default: FORGER_PRECISION, else auto: the fastest measured within the "
                        "accuracy bound; fp32: exactly plain PyTorch)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan", description="Forger: play with and train classic GANs.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="every model and whether its weights are available offline")
    s.add_argument("--family", help="only this family")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="everything the registry knows about a model, and the serving path chosen here")
    s.add_argument("model")
    s.add_argument("--weights", help="a weights file or folder to use instead of the registry's")
    s.add_argument("--no-serving", action="store_true", help="the registry's facts only: load nothing")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("sample", help="write a grid of samples from a noise->image model")
    s.add_argument("model")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-n", type=int, default=1, help="number of images")
    s.add_argument("--label", type=int, help="the class, for conditional models")
    s.add_argument("--truncation", type=float, default=1.0)
    s.add_argument("--columns", type=int, default=8)
    s.add_argument("--weights", help="a weights file or folder to use instead of the registry's")
    s.add_argument("--latent", help="a latent .npy written by `project` (its label is read from the .json beside it)")
    s.add_argument("-o", "--output", default="sample.png")
    _precision_option(s)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("interpolate", help="a strip (.png) or animation (.gif) from seed A to seed B")
    s.add_argument("model")
    s.add_argument("seed_a", type=int, nargs="?", help="seed of A (or --latent)")
    s.add_argument("seed_b", type=int, nargs="?", help="seed of B (or --latent-b)")
    s.add_argument("--latent", help="A is this latent .npy written by `project` instead of a seed")
    s.add_argument("--latent-b", help="B is this latent .npy written by `project` instead of a seed")
    s.add_argument("--steps", type=int, default=8)
    s.add_argument("--mode", choices=["slerp", "lerp"], default="slerp")
    s.add_argument("--label-a", type=int)
    s.add_argument("--label-b", type=int)
    s.add_argument("--weights")
    s.add_argument("-o", "--output", default="interpolation.png")
    _precision_option(s)
    s.set_defaults(func=cmd_interpolate)

    s = sub.add_parser("project", help="find the latent of your own image: write it (.npy) and the reconstruction")
    s.add_argument("model")
    s.add_argument("image")
    s.add_argument("--steps", type=int, help="optimisation steps (default: 120 for digit models, 300 for RGB)")
    s.add_argument("--starts", type=int, help="starting latents optimised together, per class (default 4)")
    s.add_argument("--label", type=int, help="conditional models: project under this class (default: find it)")
    s.add_argument("--seed", type=int, default=0, help="seed of the starting latents")
    s.add_argument("--weights", help="a weights file or folder to use instead of the registry's")
    s.add_argument("-o", "--output", default="z.npy", help="the latent (.npy); its label and distance go to a "
                   ".json beside it")
    s.add_argument("--reconstruction", help="where to write input | reconstruction (default: beside the latent)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_project)

    s = sub.add_parser("translate", help="translate an image, a folder of images or a video (mp4, gif) "
                                         "with a Pix2Pix or CycleGAN model")
    s.add_argument("model")
    s.add_argument("image", help="an image, a folder of images, or a video (.mp4 .webm .mov .mkv .avi; "
                                 ".gif with -o *.gif or *.mp4)")
    s.add_argument("--weights")
    s.add_argument("-o", "--output", help="the output image, folder or video (default: translated.png / .mp4)")
    s.add_argument("--resolution", default="model",
                   help="model (the model's size, then resized), full (the input's own size) or a long side N")
    s.add_argument("--mode", choices=["deterministic", "paper", "eval"], default="deterministic",
                   help="Pix2Pix: deterministic (image statistics, no dropout), paper (official test.py: "
                        "dropout on, seeded by --seed) or eval (official --eval: running statistics)")
    s.add_argument("--seed", type=int, default=0, help="the dropout seed of --mode paper")
    _precision_option(s)
    s.set_defaults(func=cmd_translate)

    s = sub.add_parser("export", help="write a generator as ONNX or TorchScript, checked against PyTorch")
    s.add_argument("model")
    s.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    s.add_argument("-o", "--output", required=True, help="the file to write (.onnx, .pt)")
    s.add_argument("--weights", help="a weights file or folder to use instead of the registry's")
    s.add_argument("--mode", choices=["deterministic", "eval"], default="deterministic",
                   help="Pix2Pix: image statistics (deterministic) or running statistics (the official --eval)")
    s.add_argument("--untrained", action="store_true", help="export a freshly initialised network (no weights)")
    s.add_argument("--no-check", action="store_true", help="skip running the file against PyTorch")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("judge", help="ask the model's discriminator (the expert) what it thinks of images")
    s.add_argument("model")
    s.add_argument("images", nargs="+")
    s.add_argument("--label", type=int, help="conditional models: judge under this class (default: the likeliest)")
    s.add_argument("--weights", help="a weights folder with a discriminator.safetensors")
    s.add_argument("--heatmaps", help="PatchGAN models: write each image's patch map into this folder")
    s.set_defaults(func=cmd_judge)

    s = sub.add_parser("import", help="convert a foreign checkpoint (.pth) into a Forger weights folder")
    s.add_argument("model")
    s.add_argument("checkpoint")
    s.add_argument("-o", "--output", required=True, help="the output folder")
    s.add_argument("--card", help="a model card (README.md) to write beside the weights")
    s.add_argument("--fp16", action="store_true", help="store floating-point weights in float16 (half the size)")
    s.set_defaults(func=cmd_import)

    for module in ("gan.train.cli", "gan.evaluate.cli"):
        try:
            mod = __import__(module, fromlist=["add_commands"])
        except ModuleNotFoundError as e:
            if e.name is None or not module.startswith(e.name):
                raise
            continue
        mod.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `python -m gan list | head`
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
