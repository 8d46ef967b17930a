"""Number inputs that answer a wrong value with a clear message.

Gradio's own ``Number`` and ``Slider`` compare an API client's value with their bounds before any handler
runs, so a string or a NaN there ends in "The upstream Gradio app has raised an exception". These check the
type first and raise ``gr.Error`` ("Seed must be a number, got 'abc'"), which every client is shown.
"""
from __future__ import annotations

import math
from typing import Any

import gradio as gr


def _number(component: gr.components.Component, payload: Any) -> Any:
    """``payload`` as a finite number (a numeric string such as "3" is accepted), or None; else gr.Error."""
    if payload is None or isinstance(payload, bool):
        return payload
    what = getattr(component, "label", None) or "This value"
    if not isinstance(payload, (int, float)):
        try:
            payload = float(str(payload).strip()) if str(payload).strip() else None
        except ValueError:
            raise gr.Error(f"{what} must be a number, got {str(payload)[:40]!r}", print_exception=False) from None
    if payload is not None and not math.isfinite(payload):
        raise gr.Error(f"{what} must be a finite number, got {payload}", print_exception=False)
    return payload


def checked(component: gr.Number | gr.Slider) -> gr.Number | gr.Slider:
    """The component, its value checked for a finite number before Gradio's own preprocessing.

    (A wrapper on the instance, not a subclass: Gradio writes a ``.pyi`` stub beside any module that
    subclasses a component.)"""
    preprocess = component.preprocess

    def check_then_preprocess(payload: Any) -> Any:
        value = _number(component, payload)
        if value is None and isinstance(component, gr.Slider):
            value = component.value
        return preprocess(value)

    component.preprocess = check_then_preprocess
    return component


def Number(*args: Any, **kwargs: Any) -> gr.Number:  # noqa: N802 - reads like the component it makes
    """``gr.Number`` with a clear message for a value that is not a finite number."""
    return checked(gr.Number(*args, **kwargs))


def Slider(*args: Any, **kwargs: Any) -> gr.Slider:  # noqa: N802
    """``gr.Slider`` with a clear message for a value that is not a finite number."""
    return checked(gr.Slider(*args, **kwargs))
