"""Numbers as clients send them (the page, gradio_client, raw HTTP), read in one place.

The API's number fields are ``gr.Number(precision=None)`` without bounds, whose preprocessing
passes the value through untouched, so "abc", NaN, Infinity or 2**64 reach this check instead of
failing inside Gradio with "Could not preprocess input component …". The page's own sliders and
number fields are ``Slider``/``Number`` below: their preprocessing reads the value here first (a
client can post to the page's events as well as to the API). Every refusal is a ``gr.Error``
sentence naming the field and what to send; Gradio passes a ``gr.Error`` raised while
preprocessing through as it is.
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


class InputError(gr.Error):
    """A ``gr.Error`` that prints as its sentence. Gradio shows an event validator's failure as
    ``str(error)``, which for a plain ``gr.Error`` is the sentence in quotes."""

    def __str__(self) -> str:
        return self.message


def _checked(component, payload):
    """``payload`` read by ``number`` and kept within the component's ends, or ``InputError``."""
    name = component.label or "This field"
    try:
        value = number(payload, name, whole=getattr(component, "precision", None) == 0)
    except gr.Error as error:
        raise InputError(error.message) from None
    if value is None:
        return None
    low, high = component.minimum, component.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{name} must be between {low:g} and {high:g}, not {value:g}.")
    return value


class Slider(gr.Slider):
    """``gr.Slider`` (drawn by the stock front end) whose server side refuses what is not a number
    within its ends with a sentence."""

    is_template = True  # the front end draws it as the slider it extends

    def preprocess(self, payload):
        value = _checked(self, payload)
        if value is None:
            raise InputError(f"{self.label or 'This slider'} needs a number.")
        return super().preprocess(value)


class Number(gr.Number):
    """``gr.Number`` whose server side refuses what is not a number within its ends with a sentence."""

    is_template = True

    def preprocess(self, payload):
        value = _checked(self, payload)
        return None if value is None else super().preprocess(value)
