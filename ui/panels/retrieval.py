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


def build_retrieval_gallery() -> tuple[gr.Gallery, gr.Markdown, gr.State]:
    status = gr.Markdown("Type a prompt and press **Retrieve poses** to browse skeletons from "
                         "the pose library.", elem_id="retrieval-status",
                         elem_classes=["panel-hint"])
    gallery = gr.Gallery(label="Retrieved skeletons — click one to edit it", columns=4,
                         height=290, allow_preview=False, object_fit="contain", format="png",
                         buttons=[], interactive=False, elem_id="retrieved",
                         visible=False)
    return gallery, status, gr.State([])


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
