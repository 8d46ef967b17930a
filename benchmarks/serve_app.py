"""Serve the real app (app.py's ``demo``) for the slider benchmark, with two extra endpoints as floors:

- ``/bench_noop``: an empty handler (Gradio's own round trip);
- ``/bench_image``: returns a fixed 256x256 image through a gr.Image like the Sample tab's (the
  round trip plus image encoding and the output file), so slider - image isolates the model.

    python -m benchmarks.serve_app PORT [--format png|webp|jpeg]

Weights come from FORGER_WEIGHTS_DIR (the benchmark points it at a folder with weights for every
model). Without app.py, a minimal Blocks with the same slider handler shape stands in.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _fixed_image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).resize((256, 256), Image.NEAREST)


def add_floors(demo: gr.Blocks, image_format: str = "png") -> None:
    """The floor endpoints, and ``/bench_slider_direct``: the app's slider handler with queue=False."""
    picture = _fixed_image()
    slider = next((fn for fn in demo.fns.values() if fn.api_name == "sample_live"), None)
    with demo:
        with gr.Row(visible=False):
            trigger = gr.Number(0, visible=False)
            shown = gr.Image(type="pil", format=image_format, visible=False)
            path = gr.File(visible=False)
            status = gr.Markdown(visible=False)
        trigger.change(lambda x: None, [trigger], None, api_name="bench_noop", show_progress="hidden",
                       concurrency_limit=None)
        trigger.blur(lambda x: None, [trigger], None, api_name="bench_noop_direct", queue=False)

        def image(x: float):
            return picture, None, "ok"

        trigger.submit(image, [trigger], [shown, path, status], api_name="bench_image", show_progress="hidden",
                       concurrency_limit=None)
        if slider is not None:
            trigger.focus(slider.fn, slider.inputs, slider.outputs, api_name="bench_slider_direct", queue=False,
                          show_progress="hidden")


def minimal_app(image_format: str = "png") -> gr.Blocks:
    """A stand-in for app.py: model, seed, truncation, digit, 32 sliders -> (image, png, status)."""
    import gan

    def render(model: str, seed: float, truncation: float, digit: float, *edits: float):
        spec = gan.registry.get_spec(model)
        label = int(digit or 0) if spec.conditional else None
        img = gan.sample(model, seed=int(seed), label=label, truncation=float(truncation),
                         edits=[float(e) for e in edits][: len(gan.slider_directions(model))])[0]
        factor = max(1, 256 // max(img.size))
        return img.resize((img.width * factor, img.height * factor), Image.NEAREST), None, model

    with gr.Blocks() as demo:
        model = gr.Dropdown(gan.list_models(task="noise"), value="dcgan-faces")
        seed, truncation, digit = gr.Number(0), gr.Slider(0, 2, 1), gr.Number(0)
        sliders = [gr.Slider(-3, 3, 0) for _ in range(32)]
        image = gr.Image(type="pil", format=image_format)
        png, status = gr.File(), gr.Markdown()
        gr.on([s.input for s in sliders], render, [model, seed, truncation, digit, *sliders], [image, png, status],
              api_name="sample_live", trigger_mode="always_last", show_progress="hidden")
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--format", default="png", choices=["png", "webp", "jpeg"])
    parser.add_argument("--minimal", action="store_true", help="serve the stand-in, not app.py")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the server")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    kwargs = {}
    if not args.minimal and (ROOT / "app.py").exists():
        import threading

        import app
        import gan
        from forger_app import handlers

        demo = app.demo
        kwargs = dict(getattr(app, "LAUNCH_KWARGS", {}))
        # every model's serving path chosen before the launch, off the clock: the app chooses in the background
        # only after a quiet second, which a benchmark's back-to-back calls never leave (gan.serving.QUIET_S); on a
        # thread that ends with it, as the app loads models, so the server holds one OpenMP team
        chooser = threading.Thread(target=lambda: [gan.serving_choice(n) for n in handlers.offline_noise_models()])
        chooser.start()
        chooser.join()
    else:
        demo = minimal_app(args.format)
    add_floors(demo, args.format)
    demo.launch(server_name="127.0.0.1", server_port=args.port, quiet=True, **kwargs)


if __name__ == "__main__":
    main()
