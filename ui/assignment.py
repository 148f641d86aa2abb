"""Binding each skeleton person to a subject (ASTRA's subject↔pose assignment).

The assignment lives in the pose itself (each person's ``subject`` in the OpenPose JSON), so
the canvas, the recipe and the engine all read one source. This module holds the pure
functions that edit that field; the control (one dropdown per person) is
``ui.panels.assignment``.
"""

from __future__ import annotations

import gradio as gr

from pose_db.scene.model import PoseError, PoseScene
from pose_db.scene.openpose_io import read_openpose, write_openpose

UNASSIGNED = -1


def scene_or_none(pose: dict | str | None) -> PoseScene | None:
    """The pose as a scene; ``None`` for no pose or an empty canvas value."""
    if not pose:
        return None
    try:
        return read_openpose(pose)
    except PoseError as err:
        raise gr.Error(f"The pose on the canvas is invalid: {err}") from err


def assign(pose: dict | None, person: int, subject: int | None) -> dict | None:
    """The pose with person ``person`` bound to ``subject`` (None or -1: unbound)."""
    scene = scene_or_none(pose)
    if scene is None or not 0 <= person < len(scene.people):
        return pose
    scene.people[person].subject = None if subject in (None, UNASSIGNED) else int(subject)
    return write_openpose(scene)


def assign_in_order(pose: dict | None, n_subjects: int) -> dict | None:
    """Person i → subject i while there are subjects; the rest unbound."""
    scene = scene_or_none(pose)
    if scene is None:
        return pose
    for i, person in enumerate(scene.people):
        person.subject = i if i < n_subjects else None
    return write_openpose(scene)


def remap_subjects(pose: dict | None, mapping: dict[int, int]) -> dict | None:
    """Re-point assignments through ``mapping`` (old index → new); others become unbound."""
    scene = scene_or_none(pose)
    if scene is None:
        return pose
    for person in scene.people:
        if person.subject is not None:
            person.subject = mapping.get(person.subject)
    return write_openpose(scene)


def drop_subject(pose: dict | None, removed: int, count_before: int) -> dict | None:
    """Assignments after card ``removed`` is deleted and the later cards move up."""
    mapping = {k: k if k < removed else k - 1 for k in range(count_before) if k != removed}
    return remap_subjects(pose, mapping)
