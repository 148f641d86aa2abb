"""Reference subjects as the engine receives them: reading the uploaded images and their names.

The Subjects panel itself (the cards) is ``ui.panels.subjects``; the API reads its subjects
with the same :func:`read_subjects`, so a studio card and an API upload follow one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from PIL import Image

from pose_db.scene import MAX_SUBJECTS
from pose_db.scene.skeleton import SUBJECT_COLORS

from .config import Limits
from .images import ImageError, load_image


@dataclass
class Subject:
    """One reference subject as the engine receives it."""

    image: Image.Image
    name: str


def default_name(k: int) -> str:
    return f"Subject {k + 1}"


def default_colour(k: int) -> str:
    return SUBJECT_COLORS[k % len(SUBJECT_COLORS)]


def free_colour(taken: list) -> str:
    """The first default colour that none of ``taken`` is (case-insensitive), else the last."""
    used = {str(c).lower() for c in taken if c}
    return next((c for c in SUBJECT_COLORS if c.lower() not in used), SUBJECT_COLORS[-1])


def read_subjects(images, names, limits: Limits) -> tuple[list[Subject], dict[int, int]]:
    """The subjects to generate with, and ``slot -> subject index`` for the pose.

    Args:
        images: one image path (or ``None``) per slot: a studio card, or an API upload.
        names: one name per slot, or none at all (default names), or a comma-separated string.
        limits: the studio's limits (name length).

    A slot without an image is left out (with a notice when it was named) and the later slots
    move up, so the mapping tells the pose which subject each slot became. Raises ``gr.Error``
    for too many images, a name count that does not match, an unreadable image or duplicate
    names.
    """
    images = list(images or [])
    names = _name_list(names)
    given = sum(1 for image in images if image)
    if given > MAX_SUBJECTS:
        raise gr.Error(f"Give at most {MAX_SUBJECTS} subject images, not {given}.")
    if names and len(names) != len(images):
        raise gr.Error(f"Give one name per subject image: {len(images)} images but "
                       f"{len(names)} names.")
    subjects: list[Subject] = []
    mapping: dict[int, int] = {}
    for k, image in enumerate(images):
        typed = str(names[k] or "").strip() if names else ""
        name = typed[: limits.max_subject_name_chars] or default_name(k)
        if not image:
            if typed:
                gr.Warning(f"{name} has no image and is left out. Upload one to use it.")
            continue
        try:
            picture = load_image(image, what=f"image of {name}")
        except ImageError as err:
            raise gr.Error(str(err)) from err
        mapping[k] = len(subjects)
        subjects.append(Subject(image=picture, name=name))
    return check_names(subjects), mapping


def _name_list(names) -> list:
    """Names as a list of text (``None`` for an unnamed slot), or ``gr.Error``: a client may send
    a list, "Mia, Leo", or nothing."""
    if isinstance(names, str):
        return [n.strip() for n in names.split(",")] if names.strip() else []
    if names is None:
        return []
    if not isinstance(names, (list, tuple)) or not all(n is None or isinstance(n, str) for n in names):
        raise gr.Error("Subject names must be text: send a list such as [\"Mia\", \"Leo\"], "
                       "the text \"Mia, Leo\", or nothing for default names.")
    return list(names)


def check_names(subjects: list[Subject]) -> list[Subject]:
    """``subjects`` unchanged, or ``gr.Error`` if two share a name (the prompt names them)."""
    seen: set[str] = set()
    for subject in subjects:
        if subject.name.lower() in seen:
            raise gr.Error(f"Two subjects are named “{subject.name}”. Give each a different "
                           f"name so the prompt can tell them apart.")
        seen.add(subject.name.lower())
    return subjects


def subject_labels(count: int, names: list) -> list[str]:
    """Display names of the visible cards (placeholders for unnamed ones)."""
    return [(names[k] or "").strip() or default_name(k)
            for k in range(min(int(count or 0), MAX_SUBJECTS, len(names)))]
