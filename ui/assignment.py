"""Binding each skeleton person to a subject (ASTRA's subject↔pose assignment).

The assignment lives in the pose itself (each person's ``subject`` in the OpenPose JSON), so
the canvas, the recipe and the engine all read one source. This module holds the control (one
dropdown per person) and the pure functions that edit that field.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pose_db.scene import MAX_PEOPLE, PoseError, PoseScene

UNASSIGNED = -1


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


def scene_or_none(pose: dict | str | None) -> PoseScene | None:
    """The pose as a scene; ``None`` for no pose or an empty canvas value."""
    if not pose:
        return None
    try:
        return PoseScene.from_openpose(pose)
    except PoseError as err:
        raise gr.Error(f"The pose on the canvas is invalid: {err}") from err


def panel_updates(pose: dict | None, labels: list[str]) -> list:
    """Dropdown updates (one per possible person), the Auto button and the hint."""
    scene = scene_or_none(pose)
    people = scene.people if scene is not None else []
    choices = [("Unassigned", UNASSIGNED)] + [(f"● {name}", k) for k, name in enumerate(labels)]
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
    return [*updates, gr.update(visible=bool(people and labels)), hint]


def assign(pose: dict | None, person: int, subject: int | None) -> dict | None:
    """The pose with person ``person`` bound to ``subject`` (None or -1: unbound)."""
    scene = scene_or_none(pose)
    if scene is None or not 0 <= person < len(scene.people):
        return pose
    scene.people[person].subject = None if subject in (None, UNASSIGNED) else int(subject)
    return scene.to_openpose()


def assign_in_order(pose: dict | None, n_subjects: int) -> dict | None:
    """Person i → subject i while there are subjects; the rest unbound."""
    scene = scene_or_none(pose)
    if scene is None:
        return pose
    for i, person in enumerate(scene.people):
        person.subject = i if i < n_subjects else None
    return scene.to_openpose()


def remap_subjects(pose: dict | None, mapping: dict[int, int]) -> dict | None:
    """Re-point assignments through ``mapping`` (old index → new); others become unbound."""
    scene = scene_or_none(pose)
    if scene is None:
        return pose
    for person in scene.people:
        if person.subject is not None:
            person.subject = mapping.get(person.subject)
    return scene.to_openpose()


def drop_subject(pose: dict | None, removed: int, count_before: int) -> dict | None:
    """Assignments after card ``removed`` is deleted and the later cards move up."""
    mapping = {k: k if k < removed else k - 1 for k in range(count_before) if k != removed}
    return remap_subjects(pose, mapping)
