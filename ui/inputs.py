"""Numbers as clients send them (the page, gradio_client, raw HTTP), read in one place.

The API's number fields are ``gr.Number(precision=None)`` without bounds, whose preprocessing
passes the value through untouched, so "abc", NaN, Infinity or 2**64 reach this check instead of
failing inside Gradio with "Could not preprocess input component …". Every refusal is a
``gr.Error`` sentence naming the field and what to send.
"""

from __future__ import annotations

import math

import gradio as gr


def number(value, name: str, *, whole: bool = False) -> int | float | None:
    """``value`` as a finite number (an ``int`` when ``whole``), ``None`` for nothing given, or
    ``gr.Error``. Numeric text ("12", " 3.5 ") is read as the number it spells."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise gr.Error(f"{name} must be a number, not {_kind(value)}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise gr.Error(f"{name} must be a number, not the text {value[:40]!r}.") from None
    if isinstance(value, int):
        if whole:  # exact, however large: the range checks name the limit
            return value
        try:
            return float(value)
        except OverflowError:
            raise gr.Error(f"{name} must be a finite number, not one with {len(str(value))} digits.") from None
    if not math.isfinite(value):
        raise gr.Error(f"{name} must be a finite number, not {value}.")
    if whole:
        if not value.is_integer():
            raise gr.Error(f"{name} must be a whole number, not {value}.")
        return int(value)
    return value


def _kind(value) -> str:
    return {bool: "true/false", dict: "a JSON object", list: "a list"}.get(type(value), type(value).__name__)
