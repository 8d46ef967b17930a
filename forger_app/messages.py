"""What the app says: error messages a user can act on (never a traceback, never a server path), a model's
status line, how to get missing weights, the model pickers' info line."""
from __future__ import annotations

import re
from collections.abc import Sequence

import gan
from forger_app.pickers import DOWNLOAD_MARK, availability, can_download, noise_models, translate_models
from gan.registry import ModelSpec, get_spec


def video_help(missing: Sequence[str]) -> str:
    """One sentence: what to install for video translation (no server path, no traceback)."""
    return (f"video translation needs {' and '.join(missing)}, which requirements.txt installs: run "
            f"`pip install -r requirements.txt` (or `pip install {' '.join(missing)}`) and restart the app")


TRANSLATE_INFO = "Pix2Pix and CycleGAN models, one entry per direction"


def picker_info(task: str, probe: bool = True) -> str:
    """The model picker's info line: says once, plainly, which models need a download and whether this
    machine can download them now (``probe``: ask the network, at most 1 s per host; else say nothing of it)."""
    base = TRANSLATE_INFO if task == "translate" else "Noise → image models"
    names = noise_models() if task == "noise" else translate_models()
    need = [n for n in names if availability(n) == "download"]
    if not need:
        return base
    n = len(need)
    which = f"{n} model{'s' if n != 1 else ''} marked {DOWNLOAD_MARK}"
    if probe and not any(can_download(name) for name in need):
        return (f"{base}. This machine is offline: the {which} (listed last) need a download and cannot run "
                f"until it is online.")
    return f"{base}. {DOWNLOAD_MARK}: not on this machine yet, downloaded on first use ({which})."


def weights_help(name: str) -> str:
    """Markdown: how to get weights for a model that has none here, the likeliest way first."""
    spec = get_spec(name)
    lines = [f"**Weights not available for `{name}`.** How to get them:"]
    train = (f"- train it in the **Train** tab (they are then selectable here for your session), or run "
             f"`{spec.train_command()}`;")
    downloads = [s.describe() for s in spec.sources if s.kind != "bundled"]
    if downloads:  # a download is the way for the official models: training them needs their dataset
        lines.append("- connect this machine to the internet: the weights are downloaded from "
                     + ", ".join(downloads) + ";")
    lines.append(f"- convert a checkpoint you have: `python -m gan import {name} PATH -o weights/{name}`;")
    lines.append(train.replace("- train it", "- or train it"))
    return "\n".join(lines)


def model_status(model: str | ModelSpec) -> str:
    """Markdown: one line about the model, and where its weights come from."""
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    name = spec.name
    state = availability(spec)
    if state == "offline":
        return f"**{name}**: {spec.description}"
    if state == "download":
        if not can_download(spec):  # said before the click: it cannot run here now
            return (f"**{name}**: {spec.description}  \n{DOWNLOAD_MARK} **Needs a download, and this machine is "
                    f"offline**: it cannot run here until the machine is online. The models listed before the "
                    f"{DOWNLOAD_MARK} ones work offline.\n\n{weights_help(name)}")
        return (f"**{name}**: {spec.description}  \n{DOWNLOAD_MARK} Its weights are not on this machine yet; they "
                f"are downloaded on first use (this can take a while), or see below if that fails.")
    return f"**{name}**: {spec.description}\n\n{weights_help(name)}"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s'\"`:,;()/]+/)+([^\s'\"`:,;()/]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute server path cut to its last part: messages never show server paths."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "(folder)", text)


def sources_tried(error: BaseException) -> list[str]:
    """The sources a ``WeightsUnavailableError`` lists, each as 'where: why' (paths scrubbed)."""
    text = str(error)
    if "Sources tried" not in text:
        return []
    listed = text.split("Sources tried", 1)[1].split("What you can do", 1)[0]
    return [scrub_paths(re.sub(r": \w+Error: ", ": ", line.strip()[2:]))
            for line in listed.splitlines() if line.strip().startswith("- ")]


def short_message(error: BaseException) -> str:
    """One line for a toast: the error's first line of text, paths scrubbed; for missing weights, the
    sources tried, in order, each with why it failed."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip().strip("`")]
    first = scrub_paths(lines[0] if lines else type(error).__name__)
    tried = sources_tried(error)
    if tried:
        head = first.split("Sources tried", 1)[0].strip()
        return (f"{head} Sources tried, in order: " + "; ".join(tried) + ".")[:900]
    return first[:300]


def user_message(error: BaseException, name: str | None = None) -> str:
    """Markdown for an error a user can act on; never a traceback, never a server path."""
    if isinstance(error, gan.WeightsUnavailableError) and name is not None:
        try:
            return weights_help(name) + "\n\n<details><summary>Sources tried</summary>\n\n```\n" + \
                scrub_paths(str(error)) + "\n```\n</details>"
        except gan.UnknownModelError:
            pass
    text = scrub_paths(str(error).strip()) or type(error).__name__
    if isinstance(error, gan.WeightsUnavailableError):
        return "**Weights not available.**\n\n```\n" + text + "\n```"
    return f"**{text}**" if "\n" not in text else "```\n" + text + "\n```"
