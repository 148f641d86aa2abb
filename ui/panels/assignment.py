"""The Assign panel: one dropdown per skeleton person, binding it to a subject card.

The binding itself lives in the pose (``ui.assignment`` edits it); every event of this panel
reads or writes the editor's pose and the subject cards, so they are cross-panel and wired in
``ui.events``. :func:`panel_updates` is what those events show here.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass

import gradio as gr

from pose_db.scene import MAX_PEOPLE

from ..assignment import UNASSIGNED, scene_or_none
from ..subjects import default_name


@dataclass
class AssignmentPanel:
    dropdowns: list[gr.Dropdown]
    auto: gr.Button
    hint: gr.Markdown


def build_assignment_panel() -> AssignmentPanel:
    hint = gr.Markdown("Retrieve or draw a skeleton, then bind each person to a subject.",
                       elem_classes=["panel-hint"], elem_id="assign-hint")
    with gr.Row(elem_classes=["assign-row"]):
        dropdowns = [
            gr.Dropdown([("Unassigned", UNASSIGNED)], value=UNASSIGNED, label=f"Person {i + 1}",
                        visible=False, min_width=140, elem_id=f"assign-{i}",
                        elem_classes=["assign-person", f"person-{i}"])
            for i in range(MAX_PEOPLE)
        ]
    auto = gr.Button("Assign in order", size="sm", elem_id="auto-assign", visible=False)
    return AssignmentPanel(dropdowns, auto, hint)


# Dropdown options are plain text: each subject shows the coloured disc nearest its colour
# (by hue; greys by lightness).
_HUES = (("🔴", 0), ("🟠", 28), ("🟡", 48), ("🟢", 125), ("🔵", 210), ("🟣", 280), ("🔴", 360))


def colour_disc(colour: str | None) -> str:
    """The emoji disc nearest ``colour`` (``#rrggbb``); ``●`` for anything unreadable."""
    text = str(colour or "").strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    try:
        r, g, b = (int(text[i:i + 2], 16) / 255 for i in (0, 2, 4))
    except ValueError:
        return "●"
    if len(text) != 6:
        return "●"
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    if saturation < 0.15 or lightness < 0.12 or lightness > 0.92:
        return "⚫" if lightness < 0.5 else "⚪"
    hue *= 360
    if lightness < 0.35 and 10 <= hue <= 45:
        return "🟤"
    return min(_HUES, key=lambda h: abs(h[1] - hue))[0]


def unmentioned(prompt: str | None, labels: list[str]) -> list[str]:
    """The subject names the prompt never mentions (whole words, any case)."""
    def words(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.lower()))

    text = f" {words(prompt or '')} "
    return [name for name in labels if words(name) and f" {words(name)} " not in text]


def risks(people: list, labels: list[str], prompt: str | None) -> list[str]:
    """Warnings for set-ups that quietly spoil a result."""
    out = []
    bound = [p.subject for p in people if p.subject is not None and p.subject < len(labels)]
    doubled = [labels[k] for k in range(len(labels)) if bound.count(k) > 1]
    idle = [labels[k] for k in range(len(labels)) if k not in bound]
    if doubled and idle:
        out.append(f"{' and '.join(doubled)} {'is' if len(doubled) == 1 else 'are'} bound to "
                   f"more than one person while {', '.join(idle)} "
                   f"{'has' if len(idle) == 1 else 'have'} none: bind each person to a "
                   f"different subject, or press “Assign in order”.")
    if (prompt or "").strip() and labels:
        # Unnamed cards (placeholder "Subject k") are not the creator's words: no nagging.
        named = [name for k, name in enumerate(labels) if name != default_name(k)]
        missing = unmentioned(prompt, named)
        if missing:
            out.append(f"The prompt never mentions {', '.join(missing)}: use each subject's "
                       f"name in the prompt (e.g. “{missing[0]} and …”), or name binding does "
                       f"nothing.")
    return out


def panel_updates(pose: dict | None, labels: list[str], colours: list | None = None,
                  prompt: str | None = None) -> list:
    """Dropdown updates (one per possible person), the Auto button and the hint (with a
    warning for risky set-ups: one subject on two people while another has none, subject
    names the prompt never mentions)."""
    scene = scene_or_none(pose)
    people = scene.people if scene is not None else []
    colours = list(colours or [])
    choices = [("Unassigned", UNASSIGNED)] + [
        (f"{colour_disc(colours[k] if k < len(colours) else None)} {name}", k)
        for k, name in enumerate(labels)]
    updates = []
    for i in range(MAX_PEOPLE):
        if i < len(people):
            subject = people[i].subject
            value = subject if subject is not None and subject < len(labels) else UNASSIGNED
            updates.append(gr.update(visible=True, choices=choices, value=value))
        else:
            updates.append(gr.update(visible=False, value=UNASSIGNED))
    if not people:
        hint = "Retrieve or draw a skeleton, then bind each person to a subject."
    elif not labels:
        hint = "Add a subject to bind people to it; unassigned people follow the prompt."
    else:
        free = sum(1 for p in people if p.subject is None or p.subject >= len(labels))
        hint = (f"{len(people)} people on the canvas"
                + (f", {free} unassigned (they follow the prompt)." if free else
                   ", all bound to subjects."))
    warnings = risks(people, labels, prompt) if people else []
    if warnings:
        hint += "".join(f"  \n⚠️ **{w}**" for w in warnings)
    return [*updates, gr.update(visible=bool(people and labels)), hint]
