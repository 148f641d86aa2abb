"""RAG-Pose in the studio: the prompt, Retrieve, and the gallery of retrieved skeletons.

The retriever is handed in (``pose_db.retrieval.retriever.PoseRetriever`` or anything with the same
``retrieve``); this module only turns its ``Retrieval`` into what the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from pose_db.prompt import MAX_PROMPT_CHARS
from pose_db.scene import MAX_PEOPLE, MAX_SUBJECTS
from pose_db.scene.model import PoseError, PoseScene
from pose_db.scene.render import render_preview

from ..canvas_fit import canvas_size, fit_pose
from ..config import Limits
from ..generation import check_prompt
from ..inputs import number

PREVIEW_SIDE = 256  # thumbnails only; the canvas gets the full scene
# The people filter offers as many people as there can be subjects (the API takes up to
# MAX_PEOPLE).
PEOPLE_CHOICES = [("Auto", 0), ("1 person", 1)] + [(f"{k} people", k)
                                                    for k in range(2, MAX_SUBJECTS + 1)]


@dataclass
class RetrievalPanel:
    prompt: gr.Textbox
    people: gr.Dropdown
    button: gr.Button
    gallery: gr.Gallery
    status: gr.Markdown
    scenes: gr.State  # OpenPose dicts of the shown results, gallery order
    placed: gr.State  # the pose retrieval last put on the canvas: a later change is the user's


def build_retrieval_prompt() -> tuple[gr.Textbox, gr.Dropdown, gr.Button]:
    """The prompt row: prompt, people count, Retrieve."""
    with gr.Row(elem_classes=["prompt-row"], equal_height=True):
        prompt = gr.Textbox(label="Prompt", lines=2, max_lines=4, scale=5,
                            max_length=MAX_PROMPT_CHARS, elem_id="prompt",
                            placeholder="e.g. Mia and Leo shaking hands at a train station, "
                                        "golden hour")
        with gr.Column(scale=1, min_width=130, elem_classes=["retrieve-col"]):
            people = gr.Dropdown(PEOPLE_CHOICES, value=0, label="People", elem_id="people",
                                 min_width=120)
            button = gr.Button("Retrieve poses", variant="secondary", elem_id="retrieve")
    return prompt, people, button


IDLE_STATUS = ("Type a prompt and press **Retrieve poses** to browse skeletons from the pose "
               "library.")
EMPTY_PROMPT_STATUS = ("Type a prompt first, then press **Retrieve poses**. The skeletons below "
                       "(if any) are from the last retrieval.")
REPLACED_EDIT = ("Replaced your edited pose. Undo (↶ on the canvas, or Ctrl+Z) brings your "
                 "edit back.")
EDIT_TOLERANCE_PX = 0.5  # the canvas rounds coordinates; smaller differences are not edits


def build_retrieval_gallery() -> tuple[gr.Gallery, gr.Markdown, gr.State, gr.State]:
    """Status line, gallery, the shown scenes and the pose last placed on the canvas.

    The gallery's label is hidden (it covered the first row; the status line says what to do)
    and its layout (columns by width, captions wrapped in full, two rows in view) is
    ``studio.css``'s."""
    status = gr.Markdown(IDLE_STATUS, elem_id="retrieval-status", elem_classes=["panel-hint"])
    gallery = gr.Gallery(label="Retrieved skeletons — click one to edit it", show_label=False,
                         columns=4, height="auto", allow_preview=False, object_fit="contain",
                         format="png", buttons=[], interactive=False, elem_id="retrieved",
                         visible=False)
    return gallery, status, gr.State([]), gr.State(None)


def replaces_edit(current: dict | None, placed: dict | None) -> bool:
    """Whether putting a new pose on the canvas would throw away the user's work: the canvas
    has people and they are not (up to the canvas fit and rounding) the pose retrieval placed.
    Bindings are not compared: a new pose is bound afresh anyway."""
    people = (current or {}).get("people") or []
    if not people:
        return False
    size = canvas_size(current)
    placed = fit_pose(placed, *size) if placed and size else placed
    theirs = (placed or {}).get("people") or []
    if len(theirs) != len(people):
        return True
    for mine, old in zip(people, theirs):
        a, b = mine.get("pose_keypoints_2d") or [], old.get("pose_keypoints_2d") or []
        if len(a) != len(b) or any(abs(float(x) - float(y)) > EDIT_TOLERANCE_PX
                                   for x, y in zip(a, b)):
            return True
    return False


def run_retrieval(retriever, prompt: str, people: int | None, limits: Limits):
    """Call the retriever with checked inputs; ``people`` 0/None means "infer from prompt"."""
    prompt = check_prompt(prompt)
    people = number(people, "People", whole=True) or None  # "two", NaN: a sentence
    if people is not None and not 1 <= people <= MAX_PEOPLE:
        raise gr.Error(f"People must be between 1 and {MAX_PEOPLE} (or 0 for automatic).")
    try:
        return retriever.retrieve(prompt, people=people, top_k=limits.retrieve_top_k)
    except PoseError as err:
        raise gr.Error(str(err)) from err


def retrieval_to_json(retrieval, threshold: float | None) -> dict:
    """The ``retrieve`` API answer: pose_db's serialisation plus the threshold that applied."""
    return retrieval.to_json() | {"threshold": threshold}


def gallery_items(retrieval) -> list[tuple[np.ndarray, str]]:
    return [(preview_image(r.entry.scene), f"{r.score:.2f} · {r.entry.action_name} — “{r.entry.prompt}”")
            for r in retrieval.results]


def preview_image(scene: PoseScene) -> np.ndarray:
    scale = PREVIEW_SIDE / max(scene.width, scene.height)
    return render_preview(scene, width=max(64, round(scene.width * scale)),
                          height=max(64, round(scene.height * scale)))


def status_text(retrieval, threshold: float | None) -> str:
    cut = f" (cosine ≥ {threshold:.2f})" if threshold is not None else ""
    where = f" for **{retrieval.canonical}**" if retrieval.canonical else ""
    if not retrieval.matched or not retrieval.results:
        return (f"**No confident pose match{where}{cut}: text-only.** The engine will pose "
                f"people from the prompt alone. You can still draw skeletons on the canvas "
                f"or take them from a photo.")
    best = retrieval.results[0]
    return (f"{len(retrieval.results)} skeletons{where}; best {best.score:.2f} "
            f"(“{best.entry.prompt}”). The best one is on the canvas — click another to swap.")
