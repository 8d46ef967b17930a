"""Share links: what the Sample or the Interpolate tab shows, as plain query parameters read when the page loads,
``/?tab=sample&model=M&seed=3&digit=7&truncation=0.8&sliders=0,0.5`` or
``/?tab=interpolate&model=M&seed_a=1&seed_b=2&digit_a=3&digit_b=8&frames=10&mode=slerp``.

A link holds no state of the server's (unlike a session), so it still works after a restart, on another
machine, and in a year. Every value of one is hostile: each is checked as the API checks its argument (a
registered model, a whole seed in range, a finite number within the slider's range) and a value that fails is
ignored, with a plain note in the tab's status; never a traceback. The page's "Copy link" builds the link in the
browser, from the page's own address and the values on screen (``link_js``)."""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr

import gan
from forger_app import handlers, pickers
from forger_app.sampling import MAX_SLIDERS

TABS = ("sample", "interpolate")
SAMPLE_KEYS = ("model", "seed", "truncation", "digit", "sliders")
INTERPOLATE_KEYS = ("model", "seed_a", "seed_b", "digit_a", "digit_b", "frames", "mode")
# the ranges of the tabs' own controls (tests/test_links.py checks them against the page): a link's value
# outside them is ignored, as the page's boundary would refuse it on the next event
TRUNCATION = (0.0, 2.0)
EDIT = (-3.0, 3.0)
FRAMES = (2, 32)
MODES = ("slerp", "lerp")
MAX_VALUE = 600  # characters of one value read (32 slider values fit); a longer one is ignored unread
NUMBER = re.compile(r"[+-]?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][+-]?\d{1,3})?", re.ASCII)
WHOLE = re.compile(r"\d{1,20}", re.ASCII)


@dataclass
class Link:
    """The settings a link asks for, each checked (None: not given, or ignored), and a note for each ignored."""

    tab: str
    model: str
    seed: int | None = None
    truncation: float | None = None
    digit: int | None = None
    sliders: list[float] | None = None
    seed_a: int | None = None
    seed_b: int | None = None
    digit_a: int | None = None
    digit_b: int | None = None
    frames: int | None = None
    mode: str | None = None
    notes: list[str] = field(default_factory=list)

    def note(self) -> str:
        """The notes as one Markdown paragraph for the tab's status ('' when every value was used)."""
        return ("🔗 From the link: " + " ".join(self.notes)) if self.notes else ""


def _number(text: str, low: float, high: float) -> float | None:
    """A finite number written plainly (no 'nan', 'inf' or '1_0'), within [low, high], or None."""
    if not NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) and low <= value <= high else None


def _whole(text: str, low: int, high: int) -> int | None:
    """A whole number written as digits, within [low, high], or None."""
    return int(text) if WHOLE.fullmatch(text) and low <= int(text) <= high else None


def parse(params: Mapping[str, Any], default_model: str | None = None) -> Link | None:
    """The settings of a link's query parameters, each checked; None when none of the parameters is a link's.

    ``default_model``: the model the tab opens with, used (and whose digits the link's are checked against)
    when the link names none, or one that is not a registered noise->image model."""
    known = {"tab", *SAMPLE_KEYS, *INTERPOLATE_KEYS}
    values: dict[str, str] = {}
    notes: list[str] = []
    for key in sorted(known & set(params)):
        value = params[key]
        if isinstance(value, str) and len(value) <= MAX_VALUE:
            values[key] = value.strip()
        else:
            notes.append(f"`{key}` is too long; ignored.")
    if not values and not notes:
        return None
    tab = values.get("tab")
    if tab not in TABS:
        if tab is not None:
            notes.append(f"`tab` must be {' or '.join(TABS)}; ignored.")
        tab = "interpolate" if (set(INTERPOLATE_KEYS) - set(SAMPLE_KEYS)) & set(values) else "sample"
    model = values.get("model")
    if model is not None and model not in pickers.noise_models():
        notes.append("`model` is not a noise→image model of this app; ignored.")
        model = None
    if default_model not in pickers.noise_models():  # (a model trained in the session: no link names it)
        default_model = handlers.default_model("noise")
    link = Link(tab=tab, model=model or default_model, notes=notes)
    spec = gan.registry.get_spec(link.model)
    digits = len(spec.classes) if spec.conditional else 0

    def read(key: str, parse_one: Any, wanted: str) -> Any:
        if key not in values:
            return None
        value = parse_one(values[key])
        if value is None:
            link.notes.append(f"`{key}` must be {wanted}; ignored.")
        return value

    seeds = f"a whole number from 0 to {handlers.MAX_SEED}"
    digit_words = f"a whole number from 0 to {digits - 1}"
    digit = (lambda t: _whole(t, 0, digits - 1)) if digits else (lambda t: None)
    if tab == "sample":
        link.seed = read("seed", lambda t: _whole(t, 0, handlers.MAX_SEED), seeds)
        link.truncation = read("truncation", lambda t: _number(t, *TRUNCATION),
                               f"a number from {TRUNCATION[0]:g} to {TRUNCATION[1]:g}")
        if digits:
            link.digit = read("digit", digit, digit_words)
        link.sliders = read("sliders", lambda t: _sliders(t, spec), f"at most {_slider_count(spec)} numbers from "
                            f"{EDIT[0]:g} to {EDIT[1]:g}, separated by commas")
    else:
        link.seed_a = read("seed_a", lambda t: _whole(t, 0, handlers.MAX_SEED), seeds)
        link.seed_b = read("seed_b", lambda t: _whole(t, 0, handlers.MAX_SEED), seeds)
        if digits:
            link.digit_a = read("digit_a", digit, digit_words)
            link.digit_b = read("digit_b", digit, digit_words)
        link.frames = read("frames", lambda t: _whole(t, *FRAMES), f"a whole number from {FRAMES[0]} to {FRAMES[1]}")
        link.mode = read("mode", lambda t: t if t in MODES else None, " or ".join(MODES))
    return link


def _slider_count(spec: gan.registry.ModelSpec) -> int:
    from forger_app.sampling import slider_labels

    return len(slider_labels(spec))


def _sliders(text: str, spec: gan.registry.ModelSpec) -> list[float] | None:
    """The slider values of a link, padded with zeros to MAX_SLIDERS; None unless every one reads (the model's
    slider count at most: a value for a slider the model does not show is refused, unless it is 0)."""
    parts = text.split(",")
    if len(parts) > MAX_SLIDERS:
        return None
    values = [_number(p.strip(), *EDIT) for p in parts]
    if any(v is None for v in values) or any(values[_slider_count(spec):]):
        return None
    return [*values, *[0.0] * (MAX_SLIDERS - len(values))]


def query(tab: str, **values: Any) -> str:
    """The query string of a link (the page's "Copy link" builds the same in the browser): ``sliders`` a list,
    written without its trailing zeros."""
    if "sliders" in values:
        sliders = [float(v) for v in values.pop("sliders")]
        while sliders and sliders[-1] == 0:
            sliders.pop()
        if sliders:
            values["sliders"] = ",".join(f"{v:g}" if float(f"{v:g}") == v else repr(v) for v in sliders)
    return "?" + urlencode({"tab": tab, **values}, safe=",")


def link_js(tab: str, keys: Sequence[str], rest: str | None = None) -> str:
    """The browser side of "Copy link": a function of the tab's values (``keys`` in order, then the ``rest`` of
    them as one comma-separated list, trailing zeros dropped) that returns the page's own address with those values
    as its query, and copies it to the clipboard where the browser lets it."""
    names = ", ".join([*keys, f"...{rest}"] if rest else keys)
    pairs = ", ".join(f'["{k}", {k}]' for k in keys)
    tail = (f"const r = {rest}.map((v) => Number(v) || 0); while (r.length && r[r.length - 1] === 0) r.pop(); "
            f'if (r.length) q.push(["{rest}", r.join(",")]); ') if rest else ""
    return (f"({names}) => {{ const q = [[\"tab\", \"{tab}\"], {pairs}].filter(([, v]) => v !== null && v !== "
            f"undefined && v !== \"\"); {tail}"
            "const s = q.map(([k, v]) => k + \"=\" + encodeURIComponent(String(v)).replace(/%2C/gi, \",\"))"
            ".join(\"&\"); "
            "const url = window.location.origin + window.location.pathname + \"?\" + s; "
            "try { navigator.clipboard.writeText(url).catch(() => {}); } catch (e) {} "
            "return url; }")


SAMPLE_LINK_JS = link_js("sample", ["model", "seed", "truncation", "digit"], rest="sliders")
INTERPOLATE_LINK_JS = link_js("interpolate", list(INTERPOLATE_KEYS))


def _params(request: gr.Request | None) -> dict[str, Any]:
    try:
        return dict(request.query_params) if request is not None else {}
    except Exception:  # noqa: BLE001 - a request without query parameters (an API call)
        return {}


def _digits(name: str, *values: Any) -> list[dict]:
    """The digit pickers of a model, shown for a conditional one, with their values."""
    spec = gan.registry.get_spec(name)
    choices = handlers.class_choices(name) if spec.conditional else handlers.class_choices()
    return [gr.update(visible=spec.conditional, choices=choices, value=v) for v in values]


def open_sample_link(request: gr.Request, model_key: str, seed: Any, truncation: Any, digit: Any,
                     *sliders_and_state: Any) -> tuple:
    """On page load, after the page's own first sample: a Sample link's settings and their image, or nothing
    changed. (model, seed, truncation, digit, *sliders, image, PNG path, status, the sketchpad of "Start from my
    image": shown for a digit model only)."""
    state = sliders_and_state[MAX_SLIDERS] if len(sliders_and_state) > MAX_SLIDERS else None
    link = parse(_params(request), default_model=model_key)
    if link is None or link.tab != "sample":
        return (gr.skip(),) * (4 + MAX_SLIDERS + 4)
    seed = link.seed if link.seed is not None else seed
    truncation = link.truncation if link.truncation is not None else truncation
    digit = link.digit if link.digit is not None else (digit if link.model == model_key else 0)
    edits = link.sliders or [0.0] * MAX_SLIDERS
    image, png, status = handlers.sample_image(link.model, seed, truncation, digit, *edits, state, None)
    sliders = handlers.slider_updates(link.model)
    for update, value in zip(sliders, edits):
        update["value"] = value
    return (gr.update(value=link.model), seed, truncation, *_digits(link.model, digit), *sliders, image, png,
            "\n\n".join(t for t in (status, link.note()) if t),
            gr.update(visible=pickers.draws_digits(link.model) or "hidden"))  # hidden, never removed


def open_interpolate_link(request: gr.Request, model_key: str, seed_a: Any, seed_b: Any, digit_a: Any,
                          digit_b: Any, frames: Any, mode: Any, state: Any = None) -> tuple:
    """On page load: an Interpolate link's settings, the tab opened and the interpolation made, or nothing
    changed. (tabs, model, seed A, seed B, digit A, digit B, frames, mode, strip, GIF, GIF download, status)."""
    link = parse(_params(request), default_model=model_key)
    if link is None or link.tab != "interpolate":
        return (gr.skip(),) * 12
    same = link.model == model_key
    seed_a = link.seed_a if link.seed_a is not None else seed_a
    seed_b = link.seed_b if link.seed_b is not None else seed_b
    digit_a = link.digit_a if link.digit_a is not None else (digit_a if same else 0)
    digit_b = link.digit_b if link.digit_b is not None else (digit_b if same else 1)
    frames = link.frames if link.frames is not None else frames
    mode = link.mode or mode
    strip, gif, gif_file, status = handlers.interpolate_tab(link.model, seed_a, seed_b, digit_a, digit_b, frames,
                                                            mode, state)
    return (gr.Tabs(selected="interpolate"), gr.update(value=link.model), seed_a, seed_b,
            *_digits(link.model, digit_a, digit_b), frames, mode, strip, gif, gif_file,
            "\n\n".join(t for t in (status, link.note()) if t))
