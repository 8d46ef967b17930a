"""The app's boundary: every value an event receives is checked against what its component wants before
Gradio or a handler touches it.

A wrong value (a list where a model name belongs, 1.5 where a whole number belongs, ``''`` where an image
belongs, a seed out of range, a choice not on the list) is refused with ``gr.Error`` and a message that
says what is wanted ("Seed must be a whole number, got 1.5"), which every client is shown; the server
log gets one line per refusal, never a traceback. Numeric text ("3") is read as the number.

``guard(demo)`` installs the check in front of Gradio's own preprocessing (``Blocks.preprocess_data``),
so it covers every event, those with ``preprocess=False`` too, and the components Gradio recreates
for a session after an update (new choices, labels). Whatever Gradio's preprocessing still refuses
after the check (an upload that is not an image, say) is answered the same way.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Any

import gradio as gr
from gradio.exceptions import ComponentProcessingError, InvalidPathError

from forger_app import messages, uploads

log = logging.getLogger("forger.app")

MAX_TEXT = 10_000  # characters of a text box (a folder, a repo id, a token)
SHOWN_CHOICES = 8  # a refusal lists at most this many of a dropdown's choices
MAX_FILES = 100  # files in one value of a multiple-file box


class Refused(gr.Error):
    """A value refused at the boundary: shown to the client, logged in one line, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message, print_exception=False)


def shown(value: Any) -> str:
    """A value as a refusal message shows it: its kind in words, then at most 40 characters of it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}infinity"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    kind = {str: "the text", list: "a list", tuple: "a list", dict: "an object"}.get(type(value), "a value")
    text = repr(value) if isinstance(value, str) else str(value)
    return f"{kind} {messages.scrub_paths(text[:40])}{'…' if len(text) > 40 else ''}"


def _label(block: Any) -> str:
    """The component as a message names it: its label ("Seed", "Image A"), the sketchpad as "The drawing"."""
    if isinstance(block, gr.ImageEditor):
        return "The drawing"
    label = str(getattr(block, "label", None) or "").strip()
    if label.startswith("…"):  # "…or image A": "Image A"
        label = re.sub(r"^…(or )?", "", label).strip()
        label = label[:1].upper() + label[1:]
    return label or "This value"


# ---------------------------------------------------------------------------- what each kind of component wants


def _whole(block: Any) -> bool:
    """The component holds whole numbers: a Number of precision 0, or a Slider on a whole-number grid."""
    if isinstance(block, gr.Slider):
        step, low = getattr(block, "step", None), getattr(block, "minimum", None)
        return step is not None and float(step).is_integer() and (low is None or float(low).is_integer())
    return getattr(block, "precision", None) == 0


def _number_wanted(block: Any) -> str:
    low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
    whole = _whole(block)
    what = "a whole number" if whole else "a number"

    def fmt(x: float) -> str:
        return str(int(x)) if whole or float(x).is_integer() else f"{x:g}"

    if low is not None and high is not None:
        return f"{what} from {fmt(low)} to {fmt(high)}"
    if low is not None:
        return f"{what} of at least {fmt(low)}"
    if high is not None:
        return f"{what} of at most {fmt(high)}"
    return what


def _choices(block: Any) -> list[Any]:
    return [value for _, value in getattr(block, "choices", None) or []]


def _choices_wanted(block: Any) -> str:
    values = _choices(block)
    if not values:
        return "empty (nothing to choose from yet)"
    listed = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:SHOWN_CHOICES])
    more = f", … ({len(values)} in all)" if len(values) > SHOWN_CHOICES else ""
    return f"one of the listed choices: {listed}{more}"


def wanted(block: Any) -> str:
    """What a component wants, in words: the end of "<label> must be …"."""
    if isinstance(block, (gr.Number, gr.Slider)):
        return _number_wanted(block)
    if isinstance(block, (gr.Dropdown, gr.Radio)):
        return _choices_wanted(block)
    if isinstance(block, gr.Checkbox):
        return "true or false"
    if isinstance(block, gr.Textbox):
        return f"text (at most {MAX_TEXT:,} characters)"
    if isinstance(block, gr.ImageEditor):
        return "a drawing: the sketchpad's value, its composite an image uploaded to this app"
    if isinstance(block, gr.Image):
        return "an image uploaded to this app (a file payload, as gradio_client's handle_file sends)"
    if isinstance(block, gr.Video):
        return "a video uploaded to this app (a file payload, as gradio_client's handle_file sends)"
    if isinstance(block, gr.File) and block.file_types and set(block.file_types) <= set(uploads.VIDEO_SUFFIXES):
        return "a video uploaded to this app (a file payload, as gradio_client's handle_file sends)"
    if isinstance(block, gr.ImageSlider):
        return "two images uploaded to this app, either of them null (a list of two file payloads)"
    if isinstance(block, gr.File) and block.file_count != "single":
        return (f"a list of at most {MAX_FILES} files uploaded to this app (file payloads, as gradio_client's "
                f"handle_file sends)")
    if isinstance(block, gr.File):
        return "a file uploaded to this app (a file payload, as gradio_client's handle_file sends)"
    return "a value of the kind the page sends"


# ---------------------------------------------------------------------------- the checks


def _number(block: Any, value: Any) -> Any:
    """A finite number within the component's bounds (a whole one where it holds whole numbers), or None."""
    if value is None:
        return block.value if isinstance(block, gr.Slider) else None
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip()) if value.strip() else None
        except ValueError:
            number = value
        if number is None:
            return block.value if isinstance(block, gr.Slider) else None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
        raise Refused(f"{_label(block)} must be {wanted(block)}, got {shown(value)}")
    low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
    if (_whole(block) and not float(number).is_integer()) or (low is not None and number < low) or (
            high is not None and number > high):
        raise Refused(f"{_label(block)} must be {wanted(block)}, got {shown(value)}")
    return number


def _choice(block: Any, value: Any) -> Any:
    if value is None:
        return None
    values = _choices(block)
    bools = any(isinstance(v, bool) for v in values)
    if isinstance(value, (str, int, float)) and (bools or not isinstance(value, bool)) and not (
            isinstance(value, float) and math.isnan(value)) and value in values:
        return value
    raise Refused(f"{_label(block)} must be {wanted(block)}; got {shown(value)}")


def _file(block: Any, payload: Any) -> None:
    """A file payload naming a regular file in Gradio's upload folder (a client may name any path)."""
    if not (isinstance(payload, dict) and isinstance(payload.get("path"), str) and payload["path"]):
        raise Refused(f"{_label(block)} must be {wanted(block)}; got {shown(payload)}")
    try:
        uploads.uploaded_file(payload)
    except ValueError as e:
        raise Refused(f"{_label(block)}: {e}") from None


def _files(block: Any, value: Any) -> Any:
    """Image, File and Video values: None or one uploaded file; the sketchpad's: its layers, each uploaded; a
    multiple-file box's and an image slider's: a list of uploaded files (at most ``MAX_FILES``; the slider's two,
    either of them None)."""
    if value is None:
        return None
    slider = isinstance(block, gr.ImageSlider)
    if slider or getattr(block, "file_count", "single") != "single":
        most = 2 if slider else MAX_FILES
        if not isinstance(value, (list, tuple)) or len(value) > most or (slider and len(value) != 2):
            raise Refused(f"{_label(block)} must be {wanted(block)}; got {shown(value)}")
        for part in value:
            if part is not None or not slider:
                _file(block, part)
        return value
    if isinstance(block, gr.ImageEditor):
        if not isinstance(value, dict) or not set(value) <= {"background", "layers", "composite", "id"}:
            raise Refused(f"{_label(block)} must be {wanted(block)}; got {shown(value)}")
        layers = value.get("layers") or []
        if not isinstance(layers, list):
            raise Refused(f"{_label(block)} must be {wanted(block)}; its layers are {shown(layers)}")
        for part in (value.get("background"), value.get("composite"), *layers):
            if part is not None:
                _file(block, part)
    else:
        _file(block, value)
    return value


def check(block: Any, value: Any) -> Any:
    """``value`` as ``block``'s event may receive it (numeric text read as a number), or ``Refused``."""
    if isinstance(block, (gr.Number, gr.Slider)):
        return _number(block, value)
    if isinstance(block, (gr.Dropdown, gr.Radio)) and not getattr(block, "multiselect", False):
        return _choice(block, value)
    if isinstance(block, gr.Checkbox):
        if value is not None and not isinstance(value, bool):
            raise Refused(f"{_label(block)} must be {wanted(block)}, got {shown(value)}")
        return value
    if isinstance(block, gr.Textbox):
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            raise Refused(f"{_label(block)} must be {wanted(block)}, got {shown(value)}")
        return value
    if isinstance(block, (gr.Image, gr.ImageEditor, gr.Video, gr.File, gr.ImageSlider)):
        value = _files(block, value)
        model = getattr(block, "data_model", None)
        if value is not None and model is not None:
            try:
                model.model_validate(value)
            except Exception:  # noqa: BLE001 - pydantic's ValidationError: a field of the wrong type
                raise Refused(f"{_label(block)} must be {wanted(block)}; got {shown(value)}") from None
        return value
    return value


# ---------------------------------------------------------------------------- in front of Gradio's preprocessing


def _name(block_fn: Any) -> str:
    return "/" + str(getattr(block_fn, "api_name", None) or getattr(block_fn, "name", "?"))


def refuse(block_fn: Any, message: str) -> Refused:
    """The refusal of one request, logged in one line."""
    message = messages.scrub_paths(" ".join(message.split()))
    log.info("refused %s: %s", _name(block_fn), message)
    return Refused(message)


def _after_gradio(block_fn: Any, error: Exception) -> Refused:
    """What Gradio's own preprocessing refused, after the check, as a plain message."""
    if isinstance(error, InvalidPathError):
        return refuse(block_fn, "a file in the request was not uploaded to this app: upload it instead")
    if isinstance(error, gr.Error):
        return refuse(block_fn, str(error.message))
    index = re.search(r"at index (\d+)", str(error)) if isinstance(error, ComponentProcessingError) else None
    inputs = list(getattr(block_fn, "inputs", []))
    if index and int(index.group(1)) < len(inputs):
        block = inputs[int(index.group(1))]
        return refuse(block_fn, f"{_label(block)} could not be read: it must be {wanted(block)}")
    log.info("refused %s: %s", _name(block_fn), " ".join(repr(error).split())[:300])
    return Refused("the values sent could not be read: send what /gradio_api/info lists for this endpoint")


def guard(blocks: gr.Blocks) -> gr.Blocks:
    """Check every event's values (``check``) before ``blocks`` preprocesses them; returns ``blocks``.

    (An attribute of the instance, as Gradio calls ``self.preprocess_data`` for every event: no subclass
    of ``gr.Blocks``, whose metaclass Gradio's stubs and reloader expect unchanged.)"""
    preprocess_data = blocks.preprocess_data

    async def checked_preprocess_data(block_fn: Any, inputs: list[Any], state: Any, *args: Any,
                                      **kwargs: Any) -> Any:
        components = list(block_fn.inputs)
        if len(inputs) < len(components):  # (Gradio fills in the session's state only for a full list)
            values = sum(not getattr(b, "stateful", False) for b in components)
            raise refuse(block_fn, f"this endpoint takes {values} values (see /gradio_api/info), got {len(inputs)}")
        props = getattr(block_fn, "component_prop_inputs", ()) or ()
        for i, block in enumerate(components):
            if getattr(block, "stateful", False) or i in props:
                continue
            if state is not None and block._id in state:
                block = state[block._id]  # the session's own copy (its choices, bounds and label as updated)
            try:
                inputs[i] = check(block, inputs[i])
            except Refused as e:
                raise refuse(block_fn, e.message) from None
        try:
            return await preprocess_data(block_fn, inputs, state, *args, **kwargs)
        except Refused:
            raise
        except Exception as e:  # noqa: BLE001 - anything Gradio refuses becomes a plain message
            raise _after_gradio(block_fn, e) from None

    blocks.preprocess_data = checked_preprocess_data
    return blocks
