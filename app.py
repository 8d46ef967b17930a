"""Forger, the Gradio app: sample, interpolate, translate and train classic GANs in the browser, and
question their experts (the discriminators).

Layout and event wiring only: every event calls a handler of ``forger_app.handlers``, which turns UI
values into a call of the package (``gan``) and errors into a clear message; models are loaded lazily
and cached by name inside ``gan``. Each browser session keeps its own state in a ``gr.State`` (its run
folders, trained models and the stop switch of its training), so two users never see each other's
runs. Every event has an ``api_name``: everything the UI does can be done with ``gradio_client``.

Run it with ``python app.py`` (http://127.0.0.1:7860); on Hugging Face Spaces it runs unchanged.
"""
from __future__ import annotations

import argparse
import logging
import os
import threading
from typing import Any

# Gradio's queue rebuilds a pandas table of its last 10,000 events after every event (for its monitoring
# page, which the app does not use): a cost that grows with the traffic and, under the GIL, delays every
# other user's request. Recompute it every 1,000 events, over the last 1,000.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

import gradio as gr  # noqa: E402

import gan
from forger_app import handwriting, judging, messages, pickers, sampling, sessions, training, uploads
from forger_app import latents, links, tools
from forger_app.boundary import guard
from forger_app.handlers import (  # noqa: F401 - the handlers are also app.X for tests and scripts
    EXAMPLES,
    MAX_SEED,
    MAX_MINUTES,
    MAX_STEPS,
    ask_expert,
    ask_expert_translation,
    end_session,
    expert_judge,
    expert_judge_sketch,
    expert_model_changed,
    finetune_tab,
    game_fake,
    game_real,
    game_start,
    hand_add,
    hand_clear,
    hand_upload,
    interpolate_model_changed,
    interpolate_tab,
    page_load,
    project_image,
    push_weights,
    random_sample,
    refresh_expert_models,
    reset_sliders,
    sample_grid,
    sample_image,
    sample_live,
    sample_model_changed,
    stop_training,
    train_data_changed,
    train_model_changed,
    train_tab,
    translate_model_changed,
    translate_sketch,
    translate_tab,
    translate_video_tab,
)
from forger_app.handlers import MODES, RESOLUTIONS, class_choices, default_model, prepare_models, warm_models
from forger_app.sampling import MAX_SLIDERS

INFER = "infer"  # concurrency group of the model calls (sampling, interpolation, translation)
INFER_LIMIT = 4
INFER_KW: dict[str, Any] = dict(concurrency_id=INFER, concurrency_limit=INFER_LIMIT)
# Translation has its own group: its models may have to be downloaded first (the official ones), and a request
# that waits for a download (at most forger_app.loading.LOAD_WAIT_S) then never holds a slot of the sliders.
TRANSLATE_KW: dict[str, Any] = dict(concurrency_id="translate", concurrency_limit=INFER_LIMIT)
TRAIN = "train"  # concurrency group of training runs: at most TRAIN_LIMIT at once, the rest wait in the queue
TRAIN_LIMIT = 1
# a model picked while the last pick is still answered is answered too (Gradio's default for an input event
# drops it, and the page would go on showing the previous model's status and output)
LATEST = "always_last"

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="pink")
CSS = """
#sample-image img, #interp-gif img, #expert-in img, #expert-heatmap img, #game-image img {
  image-rendering: pixelated; }
/* the expert's heatmap comes at the image's own size (a digit: 28x28): shown as large as its box allows */
#expert-heatmap img { width: auto; height: 80%; object-fit: contain; }
/* while a slider is dragged the sample comes at the model's own size (28x28...): shown the same size as after */
#sample-image img { width: auto; height: 100%; object-fit: contain; }
.slider-grid { gap: 6px 12px; }
/* a sketchpad in its group: the group draws the frame (Gradio's group rule and the editor's inline border-style
   would give it a 3px dark one) */
.sketch-box .block { border-width: 0; }
/* Interpolate's two image boxes share half a column: their "Drop Image Here or Click to Upload" wraps instead
   of ending in an ellipsis */
#interp-image-a [data-testid=upload-text], #interp-image-b [data-testid=upload-text],
#interp-image-a .prompt, #interp-image-b .prompt, #interp-image-a .prompt span, #interp-image-b .prompt span {
  white-space: normal; overflow: visible; text-overflow: clip; flex-wrap: wrap; justify-content: center;
  text-align: center; max-width: 100%; }
/* the result column (the image the controls beside it change) stays in view while they scroll; Gradio's
   overflow: hidden on its container would stop that, clip cuts the same without making a scroll box (rules outside
   @media: Gradio scopes those inside one to its .contain) */
.gradio-container { overflow: clip !important; }
.result-col { position: sticky; top: 0; z-index: 100; }
/* a phone: the result comes first, above the controls that change it, and smaller */
@media (max-width: 640px) {
  .result-col { order: -1; background: var(--body-background-fill); box-shadow: 0 6px 6px -6px rgba(0, 0, 0, .3); }
  #sample-image, #translate-out, #interp-gif { height: 200px !important; }
  #translate-out img { max-height: 180px !important; }  /* the image slider's two images, within its box */
  #sample-png { display: none; }  /* the image's own download button does the same */
  .sketch-box .top-panel { top: 2.4em !important; }  /* a sketchpad's toolbar below its label, not over it */
}
/* messages wrap: a long file name or error never runs off the page */
.prose, .prose code, .prose pre { white-space: pre-wrap; overflow-wrap: anywhere; }
"""
LAUNCH_KWARGS: dict[str, Any] = dict(theme=THEME, css=CSS, max_file_size="200mb")


def _optional_number(**kwargs: Any) -> gr.Number:
    """A number box that shows empty, not "0", while it holds no value: Gradio's number box shows null as 0 but
    "" as empty, and an untouched empty box arrives as None ("the recipe's") all the same (forger_app.boundary).
    (Not a gr.Number subclass: Gradio writes a .pyi file beside the module of every component class.)"""
    box = gr.Number(None, **kwargs)
    box.value = ""
    return box


CLEAR = "() => null"  # an input cleared in the browser: its output, now stale, is cleared there too


def _sample_tab(session: gr.State) -> dict[str, Any]:
    noise_default = default_model("noise")
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(pickers.model_choices("noise"), value=noise_default, label="Model",
                                elem_id="sample-model",
                                info="Noise → image models; “no weights” ones can be trained in the Train tab")
            with gr.Row(equal_height=True):
                seed = gr.Number(0, label="Seed", precision=0, scale=3)  # the handler explains an out-of-range seed
                rand = gr.Button("🎲 Random", scale=1, elem_id="random-seed")
            truncation = gr.Slider(0.0, 2.0, 1.0, step=0.05, label="Truncation",
                                   info="< 1: less variety, cleaner images")
            digit = gr.Dropdown(class_choices(), value=0, label="Digit", elem_id="sample-digit",
                                visible=gan.registry.get_spec(noise_default).conditional)
            reset = gr.Button("Reset sliders", elem_id="reset-sliders")
            status = gr.Markdown(elem_id="sample-status")
            link_btn, link = _link_row("sample-link", "seed, digit, truncation and sliders (a latent of your own "
                                       "is not in a link: keep it as a .npy, below)")
            labels = sampling.slider_labels(noise_default)
            # beside the image they change (CSS: the image column stays in view while they scroll)
            with gr.Accordion("Latent sliders: the image follows while you drag", open=True):
                with gr.Row(elem_classes="slider-grid"):
                    sliders = [gr.Slider(-3.0, 3.0, 0.0, step=0.05, label=labels[i] if i < len(labels) else f"z[{i}]",
                                         visible=i < len(labels), min_width=180, elem_id=f"latent-{i}")
                               for i in range(MAX_SLIDERS)]
        with gr.Column(scale=3, min_width=300, elem_classes="result-col"):
            image = gr.Image(label="Sample", type="pil", format="png", height=320, interactive=False,
                             buttons=["download", "fullscreen"], elem_id="sample-image")
            with gr.Row(equal_height=True):
                png = gr.File(label="PNG download", elem_id="sample-png", height=60, scale=3)
                ask = gr.Button("🕵️ Ask the expert", elem_id="ask-expert", scale=1)
    start = gr.State(None)  # a latent projected from the user's image: the sliders then edit it
    with gr.Accordion("Start from my image: find its latent, then edit it with the sliders", open=True):
        with gr.Row(equal_height=False):
            with gr.Column(min_width=260):
                own = gr.Image(label="Your image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                               height=240, elem_id="project-in")
                project = gr.Button("Start from my image", variant="primary", elem_id="project-btn")
            # a digit model only: a face model is not invited to start from a drawn digit
            with gr.Group(visible=pickers.draws_digits(noise_default) or "hidden",
                          elem_classes="sketch-box") as own_sketch_box:
                own_sketch = _sketchpad("…or draw a digit", "project-sketch")
            pair = gr.ImageSlider(label="Your image ↔ its reconstruction (drag to compare)", type="pil", format="png",
                                  interactive=False, height=240, max_height=220, elem_id="project-pair")
    with gr.Accordion("Keep this latent: download it as a .npy, or upload one", open=False):
        with gr.Row(equal_height=True):
            latent_btn = gr.Button("⬇ Latent of this image", elem_id="latent-download", scale=1)
            latent_files = gr.File(label="Its latent (.npy) and model and digit (.json), as python -m gan project "
                                   "writes them", file_count="multiple", interactive=False, height=100, scale=2,
                                   elem_id="latent-files")
            latent_in = gr.File(label="Upload a latent (.npy, with its .json for the digit)", file_count="multiple",
                                file_types=[".npy", ".json"], height=100, scale=2, elem_id="latent-upload")
    with gr.Accordion("Variations", open=True):
        with gr.Row(equal_height=True):
            n = gr.Slider(4, 64, 16, step=1, label="How many", scale=3)
            grid_btn = gr.Button("Make a grid of variations", scale=1, elem_id="make-grid")
        grid = gr.Image(label="Variations", type="pil", format="png", interactive=False, elem_id="sample-grid")
        grid_png = gr.File(label="Grid PNG download", height=60)

    model.input(sample_model_changed, [model, seed, truncation, session],
                [status, digit, *sliders, image, png, own_sketch_box],
                api_name="select_sample_model", trigger_mode=LATEST, **INFER_KW)
    gr.on([seed.input, seed.submit, digit.input], sample_image,
          [model, seed, truncation, digit, *sliders, session, start], [image, png, status], api_name="sample",
          trigger_mode="always_last", **INFER_KW)
    # while dragging: the image alone, the fastest round trip; on release: the image, its PNG and the status
    gr.on([s.input for s in [truncation, *sliders]], sample_live,
          [model, seed, truncation, digit, *sliders, session, start], [image], api_name="sample_live",
          trigger_mode="always_last", show_progress="hidden", **INFER_KW)
    gr.on([s.release for s in [truncation, *sliders]], sample_image,
          [model, seed, truncation, digit, *sliders, session, start], [image, png, status], api_name="sample_settled",
          trigger_mode="always_last", show_progress="hidden", **INFER_KW)
    rand.click(random_sample, [model, truncation, digit, *sliders, session], [seed, image, png, status],
               api_name="random_seed", **INFER_KW)
    reset.click(reset_sliders, [model, seed, truncation, digit, session, start], [*sliders, image, png, status],
                api_name="reset_sliders", **INFER_KW)
    own.clear(None, None, [pair], js=CLEAR)
    link_btn.click(None, [model, seed, truncation, digit, *sliders], [link], js=links.SAMPLE_LINK_JS)
    latent_btn.click(latents.latent_download, [model, seed, truncation, digit, *sliders, session, start],
                     [latent_files, status], api_name="latent_download", **INFER_KW)
    latent_in.upload(latents.latent_upload, [latent_in, model, seed, digit, session],
                     [start, truncation, digit, *sliders, image, png, status], api_name="latent_upload", **INFER_KW)
    project.click(project_image, [model, own, own_sketch, seed, truncation, session],
                  [start, pair, digit, *sliders, image, png, status], api_name="project", **INFER_KW)
    grid_btn.click(sample_grid, [model, seed, truncation, digit, n, *sliders, session], [grid, grid_png, status],
                   api_name="variations", **INFER_KW)
    return dict(model=model, image=image, png=png, status=status, ask=ask, seed=seed, truncation=truncation,
                digit=digit, sliders=sliders, sketch_box=own_sketch_box)


def _link_row(elem_id: str, what: str) -> tuple[gr.Button, gr.Textbox]:
    """"Copy link" and the box that shows the link (built in the browser from the page's address:
    forger_app/links.py)."""
    with gr.Row(equal_height=True):
        button = gr.Button("🔗 Copy link", scale=1, min_width=120, elem_id=f"{elem_id}-btn")
        box = gr.Textbox(label="Link to what is shown", info=what, buttons=["copy"], interactive=False, scale=3,
                         elem_id=elem_id)
    return button, box


def _interpolate_tab(session: gr.State) -> dict[str, Any]:
    conditional = gan.registry.get_spec(default_model("noise")).conditional  # the default model's digit pickers
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(pickers.model_choices("noise"), value=default_model("noise"), label="Model")
            with gr.Row():
                seed_a = gr.Number(1, label="Seed A", precision=0)
                seed_b = gr.Number(2, label="Seed B", precision=0)
            with gr.Row():
                digit_a = gr.Dropdown(class_choices(), value=0, label="Digit A", visible=conditional)
                digit_b = gr.Dropdown(class_choices(), value=1, label="Digit B", visible=conditional)
            with gr.Row():  # an image instead of a seed: projected first (its digit found), then morphed
                image_a = gr.Image(label="…or image A", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                   height=150, elem_id="interp-image-a")
                image_b = gr.Image(label="…or image B", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                   height=150, elem_id="interp-image-b")
            frames = gr.Slider(2, 32, 10, step=1, label="Frames")
            mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path",
                            info="slerp follows the sphere where Gaussian latents live; lerp is a straight line")
            go = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
            status = gr.Markdown(elem_id="interp-status")
            link_btn, link = _link_row("interp-link", "model, seeds, digits, frames and path (not an image A or B)")
        with gr.Column(scale=3, min_width=300, elem_classes="result-col"):
            gif = gr.Image(label="Animation", type="filepath", interactive=False, height=256, elem_id="interp-gif")
            gif_file = gr.File(label="GIF download", height=60, elem_id="interp-gif-file")
    strip = gr.Image(label="Strip", type="pil", format="png", interactive=False, elem_id="interp-strip")

    model.input(interpolate_model_changed, [model, session], [status, digit_a, digit_b],
                api_name="select_interpolate_model", trigger_mode=LATEST, concurrency_limit=None)
    go.click(interpolate_tab, [model, seed_a, seed_b, digit_a, digit_b, frames, mode, session, image_a, image_b],
             [strip, gif, gif_file, status], api_name="interpolate", **INFER_KW)
    link_btn.click(None, [model, seed_a, seed_b, digit_a, digit_b, frames, mode], [link], js=links.INTERPOLATE_LINK_JS)
    return dict(model=model, seed_a=seed_a, seed_b=seed_b, digit_a=digit_a, digit_b=digit_b, frames=frames, mode=mode,
                strip=strip, gif=gif, gif_file=gif_file, status=status)


def _sketchpad(label: str, elem_id: str) -> gr.Sketchpad:
    """A white canvas with a black brush, for a digit drawn by hand. It opens with the brush picked, and so
    does Clear canvas; listen to its ``input`` (Gradio drops its first ``change``), and show or hide the group
    around it (``visible="hidden"`` keeps it on the page) rather than output to it (docs/notes/sketchpad.md)."""
    side = uploads.SKETCH_SIDE
    pad = gr.Sketchpad(uploads.blank_sketch(), label=label, type="pil", height=320, canvas_size=(side, side),
                       fixed_canvas=True, layers=False, transforms=(), elem_id=elem_id,
                       brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"))
    pad.clear(uploads.blank_sketch, None, [pad], queue=False, show_progress="hidden", api_visibility="private")
    return pad


def _translate_tab(session: gr.State) -> gr.Dropdown:
    default = default_model("translate")
    # the info says once which models need a download; whether this machine can download them is asked on
    # page load (a network probe of at most 1 s per host), never when the app is imported
    model = gr.Dropdown(pickers.model_choices("translate"), value=default, label="Model", elem_id="translate-model",
                        info=messages.picker_info("translate", probe=False))
    status = gr.Markdown(messages.model_status(default), elem_id="translate-status")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            image = gr.Image(label="Input image", type="filepath", image_mode=None,
                             sources=["upload", "webcam", "clipboard"], height=320, elem_id="translate-in")
            go = gr.Button("Translate", variant="primary", elem_id="translate-btn")
            with gr.Group(visible=pickers.has_sketchpad(default) or "hidden", elem_classes="sketch-box") as sketch_box:
                sketch = _sketchpad("…or draw a digit", "translate-sketch")
            examples = sorted(EXAMPLES.glob("*.png"))
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[image], label="Examples (click, then Translate)")
        with gr.Column(min_width=300, elem_classes="result-col"):
            # max_height: the slider fits its images to the width of its box, and a wide box is not tall enough
            out = gr.ImageSlider(label="Input ↔ output (drag to compare)", type="pil", format="png",
                                 interactive=False, height=320, max_height=300, buttons=["download", "fullscreen"],
                                 elem_id="translate-out")
            ask = gr.Button("🕵️ Ask the expert about this translation", elem_id="translate-ask")
    with gr.Row():
        # shown only for the models they change (handlers.translate_options_view)
        resolution = gr.Radio(RESOLUTIONS, value="model", label="Resolution", elem_id="translate-resolution",
                              info="full: the image's own size (a CycleGAN whole, a Pix2Pix in blended tiles)",
                              visible=pickers.takes_resolution(default))
        mode = gr.Radio(MODES, value="deterministic", label="Pix2Pix mode", elem_id="translate-mode",
                        info="as the official code: test.py (paper) or test.py --eval",
                        visible=pickers.has_modes(default))
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Dropout seed (paper mode)",
                         elem_id="translate-seed", visible=pickers.has_modes(default))
    missing_video = uploads.missing_video_packages()
    with gr.Accordion("Translate a video (mp4, webm, mov, gif), frame by frame", open=False):
        if missing_video:  # said before anyone uploads; the handler says the same if it is called anyway
            gr.Markdown("⚠️ Not available on this server: " + messages.video_help(missing_video) + ".",
                        elem_id="translate-video-missing")
        with gr.Row(equal_height=False):
            # a file box, not gr.Video: Gradio's video box accepts only video/* types, and refuses GIFs
            video = gr.File(label="Input video", file_types=list(uploads.VIDEO_SUFFIXES), height=120,
                            elem_id="translate-video-in")
            video_out = gr.Video(label="Translated video", interactive=False, height=240,
                                 elem_id="translate-video-out")
        video_go = gr.Button("Translate the video", elem_id="translate-video-btn")

    options = [session, resolution, mode, seed]
    model.input(translate_model_changed, [model, session], [status, sketch_box, out, resolution, mode, seed],
                api_name="select_translate_model", trigger_mode=LATEST, concurrency_limit=None)
    image.clear(None, None, [out], js=CLEAR)
    video.clear(None, None, [video_out], js=CLEAR)
    # preprocess=False: the handler opens the file itself (gan.load_image), so a file that is not an
    # image, or one far too large, gets a clear message instead of failing in Gradio's decoder.
    gr.on([go.click, image.upload], translate_tab, [model, image, *options], [out, status], api_name="translate",
          preprocess=False, **TRANSLATE_KW)
    # the sketchpad's drawing comes from the browser canvas (Gradio gathers its layers), so it is preprocessed;
    # an empty canvas (the sketchpad shown or cleared) changes nothing
    gr.on([sketch.input], translate_sketch, [model, sketch, *options], [out, status],
          api_name="translate_sketch", trigger_mode="always_last", show_progress="hidden", **TRANSLATE_KW)
    # the video, too, is read by the handler (uploads only, limits checked from the header)
    video_go.click(translate_video_tab, [model, video, *options], [video_out, status], api_name="translate_video",
                   preprocess=False, **TRANSLATE_KW)
    return dict(model=model, image=image, sketch=sketch, out=out, ask=ask, status=status)


def _train_tab(session: gr.State) -> dict[str, Any]:
    start_model = training.train_start_model()
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(gan.list_models(), value=start_model, label="Model to train", elem_id="train-model")
            data = gr.Dropdown(training.train_data_choices(), value=training.default_train_data(start_model),
                               label="Data")
            folder = gr.Textbox(label="Folder of images", placeholder="/path/to/images", visible=False)
            zip_file = gr.File(label="Zip of images", file_types=[".zip"], visible=False, elem_id="train-zip")
            with gr.Row():
                minutes = gr.Number(1, label="Minutes", info="the run ends after this long…",
                                    minimum=0, maximum=MAX_MINUTES, elem_id="train-minutes")
                steps = _optional_number(label="Steps", info="…or after this many steps (empty: the recipe's)",
                                         precision=0, minimum=0, maximum=MAX_STEPS, elem_id="train-steps")
                # no minimum: 0, too, means "the recipe's"
                batch = _optional_number(label="Batch size", info="empty or 0: the recipe's", precision=0,
                                         elem_id="train-batch")
                lr = _optional_number(label="Learning rate", info="empty or 0: the recipe's", elem_id="train-lr")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="train-start")
                stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
            status = gr.Markdown(train_model_changed(start_model)[1], elem_id="train-status")
            # Stop answers here, not in the run's status: its reply can come after the run's last message
            stop_status = gr.Markdown(elem_id="train-stop-status")
        with gr.Column(scale=3, min_width=300):
            progress = gr.Markdown("Not started.", elem_id="train-progress")
            grid = gr.Image(label="Samples (fixed latents)", type="pil", format="png", interactive=False,
                            height=320, elem_id="train-grid")
            with gr.Row(equal_height=True):
                plot = gr.LinePlot(None, x="step", y="value",
                                   color="loss", title="Losses", height=260, elem_id="train-plot")
                # the collapse alarm (gan.train.diversity): how varied the samples are, every few seconds
                diversity_plot = gr.LinePlot(None, x="step", y="value", color="figure", height=260,
                                             title="Diversity of the samples", elem_id="train-diversity-plot")
            diversity = gr.Markdown(elem_id="train-diversity")
            # GAN Lab's two curves: how real the expert (D) finds the real and the fake images of each step
            expert_plot = gr.LinePlot(None, x="step", y="value", color="loss", y_lim=[0, 1], height=220,
                                      title="The expert: D(real) and D(fake)", elem_id="train-expert-plot")
    with gr.Accordion("✍️ Your handwriting: teach the digit model your hand", open=False,
                      visible=handwriting.hand_model() is not None):
        with gr.Row(equal_height=False):
            with gr.Column(min_width=260):
                with gr.Group(elem_classes="sketch-box"):
                    hand_sketch = _sketchpad("Draw one digit", "hand-sketch")
                hand_digit = gr.Radio(handwriting.digit_choices(), value=None, label="…which digit it is",
                                      elem_id="hand-digit")
                hand_add_btn = gr.Button("Add this digit", elem_id="hand-add")
                hand_files = gr.File(label="…or upload images of the picked digit", file_count="multiple",
                                     file_types=["image"], elem_id="hand-files")
            with gr.Column(min_width=260):
                hand_gallery = gr.Gallery(label="Your digits, as the model sees them", columns=8, height=260,
                                          elem_id="hand-gallery")
                hand_status = gr.Markdown("Draw a digit, pick which digit it is and press **Add**, or upload "
                                          "images of the picked digit. A few of every digit teach the most.",
                                          elem_id="hand-status")
                with gr.Row():
                    hand_clear_btn = gr.Button("Clear my digits", elem_id="hand-clear")
                    hand_go = gr.Button("Fine-tune on my handwriting", variant="primary", elem_id="hand-finetune")
    with gr.Accordion("Your trained models (this session only)", open=True):
        with gr.Row():
            runs = gr.Dropdown([], value=None, label="Trained model", elem_id="train-runs")
            weights_zip = gr.File(label="Weights download (zip)", elem_id="train-weights-zip")
        with gr.Row(equal_height=True):
            repo = gr.Textbox(label="Hub repo id", placeholder="your-name/forger-weights")
            token = gr.Textbox(label="Hugging Face write token", type="password")
            private = gr.Checkbox(False, label="Private")
            push = gr.Button("Push to the Hub")
        push_status = gr.Markdown(elem_id="train-push-status")

    model.input(train_model_changed, [model], [data, status], api_name="select_train_model",
                trigger_mode=LATEST, concurrency_limit=None)
    data.change(train_data_changed, [data], [folder, zip_file], api_name="select_train_data",
                concurrency_limit=None)
    stop.click(stop_training, [session], [stop_status], api_name="stop_training", concurrency_limit=None,
               show_progress="hidden")
    push.click(push_weights, [runs, repo, token, private, session], [push_status], api_name="push_to_hub",
               concurrency_limit=2)
    # a new trained model (or another one picked) makes the last push message stale: clear it in the browser
    runs.change(None, None, [push_status], js="() => ''")
    hand_add_btn.click(hand_add, [hand_sketch, hand_digit, session], [session, hand_gallery, hand_status],
                       api_name="hand_add", concurrency_limit=4)
    hand_files.upload(hand_upload, [hand_files, hand_digit, session], [session, hand_gallery, hand_status],
                      api_name="hand_upload", concurrency_limit=4)
    hand_clear_btn.click(hand_clear, [session], [session, hand_gallery, hand_status], api_name="hand_clear",
                         concurrency_limit=None)
    return dict(model=model, data=data, folder=folder, zip=zip_file, steps=steps, minutes=minutes, batch=batch, lr=lr, start=start,
                status=status, progress=progress, grid=grid, plot=plot, weights_zip=weights_zip, runs=runs,
                expert_plot=expert_plot, diversity_plot=diversity_plot, diversity=diversity, hand_go=hand_go)


def _expert_tab(session: gr.State) -> dict[str, Any]:
    default = judging.default_expert()
    spec = gan.registry.get_spec(default) if default else None
    gr.Markdown("The **expert** is the discriminator: the network that was trained to tell the model's real "
                "training images from the forger's fakes. Show it an image and see how real it finds it.")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            model = gr.Dropdown(judging.expert_choices(), value=default, label="Whose expert", elem_id="expert-model",
                                info="Models with a trained discriminator; train one in the Train tab to add it")
            status = gr.Markdown(expert_model_changed(default)[0] if default else "", elem_id="expert-status")
            image = gr.Image(label="Image to judge", type="filepath", image_mode=None, format="png",
                             sources=["upload", "webcam", "clipboard"], height=280, elem_id="expert-in")
            judge = gr.Button("Judge", variant="primary", elem_id="expert-judge")
            with gr.Group(visible=judging.expert_has_sketchpad(spec) or "hidden",
                          elem_classes="sketch-box") as sketch_box:
                sketch = _sketchpad("…or draw a digit (judged as you draw)", "expert-sketch")
            examples = sorted(EXAMPLES.glob("*.png"))
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[image], label="Examples (click, then Judge)")
        with gr.Column(min_width=300):
            verdict = gr.Markdown("Upload or draw an image, then ask the expert.", elem_id="expert-verdict")
            heatmap = gr.Image(label="Heatmap: the verdict of each patch (green real, red fake)", type="pil",
                               format="png", interactive=False, height=280, elem_id="expert-heatmap",
                               visible=bool(spec and judging.expert_has_heatmap(spec)))
            bars = gr.BarPlot(None, x="class", y="p_real", x_title="judged as", y_title="P(real)", y_lim=[0, 1],
                              title="P(real) under each class", height=240, elem_id="expert-classes",
                              visible=bool(spec and judging.expert_classes(spec)))
    with gr.Accordion("Fool the expert: real digit or fake? You against the expert", open=True):
        game_default = judging.default_expert(game=True)
        game = gr.State(None)
        with gr.Row(equal_height=True):
            game_model = gr.Dropdown(judging.expert_choices(game=True), value=game_default, label="Forger",
                                     elem_id="game-model")
            rounds = gr.Slider(1, judging.MAX_GAME_ROUNDS, judging.GAME_ROUNDS, step=1, label="Rounds")
            seed = gr.Number(0, label="Game number", info="0: a random game; a game's number replays it",
                             precision=0, minimum=0)
            start = gr.Button("Start a game", variant="primary", elem_id="game-start")
        with gr.Row(equal_height=False):
            game_image = gr.Image(label="Real or fake?", type="pil", format="png", interactive=False, height=260,
                                  elem_id="game-image")
            with gr.Column():
                with gr.Row():
                    real = gr.Button("✅ Real", elem_id="game-real")
                    fake = gr.Button("🎭 Fake", elem_id="game-fake")
                score = gr.Markdown("Start a game: real MNIST digits and the forger's fakes, shuffled. Say which "
                                    "is which, then see who did better, you or the expert.", elem_id="game-score")

    model.input(expert_model_changed, [model, session], [status, sketch_box, heatmap, bars, verdict],
                api_name="select_expert_model", trigger_mode=LATEST, concurrency_limit=None)
    # preprocess=False: the handler opens the upload itself (only files in Gradio's upload folder)
    image.clear(None, None, [verdict, heatmap, bars], js="() => ['', null, null]")
    gr.on([judge.click, image.upload], expert_judge, [model, image, session], [verdict, heatmap, bars],
          api_name="expert_judge", preprocess=False, **INFER_KW)
    gr.on([sketch.input], expert_judge_sketch, [model, sketch, session], [verdict, heatmap, bars],
          api_name="expert_judge_sketch", trigger_mode="always_last", show_progress="hidden", **INFER_KW)
    start.click(game_start, [game_model, rounds, seed, session], [game, game_image, score], api_name="game_start",
                **INFER_KW)
    real.click(game_real, [game], [game, game_image, score], api_name="game_real", concurrency_limit=None)
    fake.click(game_fake, [game], [game, game_image, score], api_name="game_fake", concurrency_limit=None)
    return dict(model=model, game_model=game_model, status=status, sketch_box=sketch_box, image=image, verdict=verdict,
                heatmap=heatmap, bars=bars)


def _agent_tools() -> None:
    """The agents' tools (forger_app/tools.py): events with no trigger on the page, on components of their own
    that the page never shows. Undocumented here (callable, not listed); ``python app.py --mcp`` makes them the
    documented API, and so the MCP tools (``tools.tools_only``)."""
    tool = dict(api_visibility="undocumented")
    digits = len(class_choices())
    with gr.Column(visible=False):
        noise = gr.Dropdown(pickers.model_choices("noise"), value=default_model("noise"), label="Model")
        translator = gr.Dropdown(pickers.model_choices("translate"), value=default_model("translate"), label="Model")
        expert = gr.Dropdown(judging.expert_choices(), value=judging.default_expert(), label="Model")
        seed, seed_a, seed_b = (gr.Number(value, label=label, precision=0, minimum=0, maximum=MAX_SEED)
                                for value, label in ((0, "Seed"), (1, "Seed A"), (2, "Seed B")))
        digit, digit_a, digit_b = (gr.Number(value, label=label, precision=0, minimum=0, maximum=digits - 1)
                                   for value, label in ((0, "Digit"), (0, "Digit A"), (1, "Digit B")))
        truncation = gr.Slider(0.0, 2.0, 1.0, step=0.05, label="Truncation")
        frames = gr.Number(8, label="Frames", precision=0, minimum=tools.FRAMES[0], maximum=tools.FRAMES[1])
        mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path")
        resolution = gr.Radio(RESOLUTIONS, value="model", label="Resolution")
        image = gr.Image(label="Image", type="filepath", image_mode=None)
        picture = gr.Image(label="Image", type="pil", format="png")
        text = gr.Textbox(label="Text")
    gr.on([], tools.sample, [noise, seed, truncation, digit], [picture], api_name="tool_sample", **tool, **INFER_KW)
    gr.on([], tools.interpolate, [noise, seed_a, seed_b, frames, mode, digit_a, digit_b], [picture],
          api_name="tool_interpolate", **tool, **INFER_KW)
    # preprocess=False, as in the tabs: the tool opens the upload itself (uploads only; pixels checked first)
    gr.on([], tools.translate, [translator, image, resolution], [picture], api_name="tool_translate",
          preprocess=False, **tool, **TRANSLATE_KW)
    gr.on([], tools.project, [noise, image], [picture], api_name="tool_project", preprocess=False, **tool, **INFER_KW)
    gr.on([], tools.judge, [expert, image], [text], api_name="tool_judge", preprocess=False, **tool, **INFER_KW)
    gr.on([], tools.list_models, [], [text], api_name="tool_list_models", concurrency_limit=None, **tool)


with gr.Blocks(title="Forger: classic GANs", delete_cache=(1800, 3600)) as demo:
    gr.Markdown("# 🎨 Forger\n*A forger network and an expert network, each trained to beat the other.* "
                "Sample and steer classic GANs, interpolate between seeds, translate images, train your own, and "
                "ask the expert what it thinks.")
    session_state = gr.State(None, delete_callback=sessions.close_session)
    with gr.Tabs(overflow_behavior="wrap") as tabs:  # on a phone too, every tab in sight (no "More tabs ⋯")
        with gr.Tab("Sample", id="sample"):
            sample = _sample_tab(session_state)
        with gr.Tab("Interpolate", id="interpolate"):
            interp = _interpolate_tab(session_state)
            interp_model = interp["model"]
        with gr.Tab("Translate", id="translate"):
            tl = _translate_tab(session_state)
            translate_model = tl["model"]
        with gr.Tab("Train", id="train"):
            tr = _train_tab(session_state)
        with gr.Tab("Expert", id="expert") as expert_tab:
            ex = _expert_tab(session_state)

    train_outputs = [session_state, tr["grid"], tr["plot"], tr["progress"], tr["status"], tr["weights_zip"],
                     sample["model"], interp_model, translate_model, tr["runs"], tr["expert_plot"],
                     tr["diversity_plot"], tr["diversity"]]
    tr["start"].click(train_tab, [tr["model"], tr["data"], tr["folder"], tr["zip"], tr["steps"], tr["minutes"],
                                  tr["batch"], tr["lr"], session_state], train_outputs,
                      api_name="train", concurrency_id=TRAIN, concurrency_limit=TRAIN_LIMIT)
    tr["hand_go"].click(finetune_tab, [session_state], train_outputs, api_name="finetune", concurrency_id=TRAIN,
                        concurrency_limit=TRAIN_LIMIT)
    # the Expert tab lists the discriminators this session trained since the page opened
    expert_tab.select(refresh_expert_models, [session_state], [ex["model"], ex["game_model"]],
                      api_name="refresh_expert_models", concurrency_limit=None)
    sample["ask"].click(ask_expert, [sample["model"], sample["image"], session_state],
                        [tabs, ex["model"], ex["status"], ex["sketch_box"], ex["image"], ex["verdict"], ex["heatmap"],
                         ex["bars"], sample["status"]], api_name="ask_expert", **INFER_KW)
    tl["ask"].click(ask_expert_translation, [tl["model"], tl["image"], tl["sketch"], tl["out"], session_state],
                    [tabs, ex["model"], ex["status"], ex["sketch_box"], ex["image"], ex["verdict"], ex["heatmap"],
                     ex["bars"], tl["status"]], api_name="ask_expert_translation", **INFER_KW)
    loaded = demo.load(page_load, [session_state], [sample["model"], interp_model, translate_model, sample["image"],
                                                    sample["png"], sample["status"]],
                       api_name="refresh_models", **INFER_KW)
    # a share link (query parameters) sets Sample's or Interpolate's values, after the page's own first sample
    loaded.then(links.open_sample_link, [sample["model"], sample["seed"], sample["truncation"], sample["digit"],
                                         *sample["sliders"], session_state],
                [sample["model"], sample["seed"], sample["truncation"], sample["digit"], *sample["sliders"],
                 sample["image"], sample["png"], sample["status"], sample["sketch_box"]], api_visibility="private",
                **INFER_KW)
    loaded.then(links.open_interpolate_link, [interp_model, *(interp[k] for k in links.INTERPOLATE_KEYS[1:]),
                                              session_state],
                [tabs, interp_model, *(interp[k] for k in links.INTERPOLATE_KEYS[1:]), interp["strip"], interp["gif"],
                 interp["gif_file"], interp["status"]], api_visibility="private", **INFER_KW)
    demo.unload(end_session)
    _agent_tools()
    demo.queue(default_concurrency_limit=2, max_size=64)
# every event's values are checked before Gradio preprocesses them: a wrong one gets a message saying what is
# wanted, and one line in the log (forger_app/boundary.py)
guard(demo)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Forger, the Gradio app (http://127.0.0.1:7860)")
    parser.add_argument("--mcp", action="store_true", help="serve the agents' tools over MCP too, at "
                        "/gradio_api/mcp/ (or set FORGER_MCP=1)")
    mcp = parser.parse_args().mcp or any(os.environ.get(v, "").lower() in ("1", "true")
                                         for v in ("FORGER_MCP", "GRADIO_MCP_SERVER"))
    logging.basicConfig(level=logging.INFO)
    if mcp:
        tools.check_mcp()  # says what to install, rather than a server without MCP
        tools.tools_only(demo)  # the six tools, not every event of the page
    # torch and the offline models are loaded, and an image of each computed, before the page is served: the
    # page comes ~2 s later, its first image no later, and no click waits for an import or a load (issue 30)
    warm_models()
    demo.launch(**LAUNCH_KWARGS, mcp_server=mcp, prevent_thread_lock=True)
    # the page is served: the serving paths are chosen in the background, when no request has come for a second
    threading.Thread(target=prepare_models, name="forger-prepare", daemon=True).start()
    demo.block_thread()
