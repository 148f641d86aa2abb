"""Named API endpoints for ``gradio_client`` and the pose-from-photo control.

Endpoints take plain values (DESIGN §7: an endpoint reading ``gr.EventData`` fails through
gradio_client):

    /retrieve        (prompt, people) → {"matched", "results": [{score, prompt, pose, …}]}
    /generate        (prompt, subject_images, subject_names, pose, width, height, steps,
                      guidance, seed, binding_strength) → (PNG with recipe, recipe)
    /pose_from_photo (photo) → OpenPose JSON of the people found
    /read_recipe     (png) → the recipe stored in a studio PNG
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import gradio as gr

from .config import Limits, StudioConfig
from .generation import (Generator, Settings, check_settings, gradio_progress, make_request,
                         pick_seed)
from .images import ImageError, load_image
from .results import load_recipe_file
from .retrieval_panel import check_prompt, retrieval_to_json, run_retrieval
from .subjects import Subject, check_names, default_colour, default_name

GPU = dict(concurrency_id="gpu", concurrency_limit=1)


@dataclass
class PhotoPanel:
    image: gr.Image
    button: gr.Button
    note: gr.Markdown


def detector_note(detector) -> str:
    if detector is None:
        return ("Pose-from-photo is off in this studio: no detector was loaded. "
                "Run `python app.py` with controlnet_aux's OpenPose weights available.")
    if not detector.available:
        return detector.reason
    return f"Detector: {detector.name}. The people it finds replace the canvas."


def build_photo_panel(detector) -> PhotoPanel:
    with gr.Accordion("Pose from a photo", open=False, elem_id="photo-box"):
        note = gr.Markdown(detector_note(detector), elem_classes=["panel-hint"],
                           elem_id="photo-note")
        with gr.Row(equal_height=True):
            image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             label="Photo", height=160, buttons=[], elem_id="photo", scale=3)
            button = gr.Button("Detect skeletons", size="sm", elem_id="detect", scale=1,
                               interactive=bool(detector is not None and detector.available))
    return PhotoPanel(image, button, note)


def detect_pose(detector, photo) -> dict:
    """OpenPose JSON of the people ``detector`` finds in ``photo``, or ``gr.Error``."""
    if detector is None or not detector.available:
        raise gr.Error(detector_note(detector))
    if not photo:
        raise gr.Error("Upload a photo first.")
    try:
        image = load_image(photo, what="photo")
    except ImageError as err:
        raise gr.Error(str(err)) from err
    try:
        scene = detector.detect(image)
    except ValueError as err:
        raise gr.Error(str(err)) from err
    if not scene.people:
        raise gr.Error("No person was found in the photo. Try one where whole bodies are "
                       "clearly visible.")
    return scene.to_openpose()


def build_api(*, generator: Generator, retriever, detector, config: StudioConfig) -> None:
    """Register the named endpoints (call inside the studio's Blocks)."""
    limits = config.limits
    threshold = getattr(retriever, "threshold", None)

    def retrieve(prompt: str, people: int = 0) -> dict:
        """Skeletons from the pose library for a prompt; people 0 infers the count."""
        return retrieval_to_json(run_retrieval(retriever, prompt, people, limits), threshold)

    gr.api(retrieve, api_name="retrieve", concurrency_limit=4, concurrency_id="retrieve")

    # File inputs need real components (they upload); they sit in a hidden column.
    with gr.Column(visible=False, elem_id="api-only"):
        prompt = gr.Textbox()
        images = gr.File(file_count="multiple", type="filepath")
        names, pose = gr.JSON(), gr.JSON()
        width, height = gr.Number(1024, precision=0), gr.Number(1024, precision=0)
        steps = gr.Number(28, precision=0)
        guidance, binding = gr.Number(3.5), gr.Number(1.0)
        seed = gr.Number(-1, precision=0)
        image_out, recipe_out = gr.Image(type="filepath", format="png"), gr.JSON()
        photo, photo_out = gr.File(type="filepath"), gr.JSON()
        png, recipe_read = gr.File(type="filepath"), gr.JSON()
        buttons = [gr.Button() for _ in range(3)]

    def generate(prompt, subject_images, subject_names, pose, width, height, steps, guidance,
                 seed, binding_strength, progress=gr.Progress()):
        """Generate one image; seed -1 draws one. Returns the PNG (recipe inside) and recipe."""
        subjects = _api_subjects(subject_images, subject_names, limits)
        settings = check_settings(Settings(width, height, steps, guidance,
                                           pick_seed(seed, seed is None or seed < 0),
                                           binding_strength), limits)
        request = make_request(check_prompt(prompt, limits), subjects, None,
                               _pose_value(pose), settings)
        path, recipe = generator.run(request, gradio_progress(progress))
        return str(path), asdict(recipe)

    buttons[0].click(generate, [prompt, images, names, pose, width, height, steps, guidance,
                                seed, binding], [image_out, recipe_out], api_name="generate",
                     **GPU)

    def pose_from_photo(photo):
        """OpenPose JSON of the people found in a photo (needs the detector's weights)."""
        return detect_pose(detector, photo)

    def read_recipe(png):
        """The recipe stored in a PNG saved by the studio."""
        return asdict(load_recipe_file(png))

    buttons[1].click(pose_from_photo, photo, photo_out, api_name="pose_from_photo", **GPU)
    buttons[2].click(read_recipe, png, recipe_read, api_name="read_recipe")


def _api_subjects(paths, names, limits: Limits) -> list[Subject]:
    paths = [p for p in (paths or []) if p]
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")] if names.strip() else []
    names = list(names or [])
    if len(paths) > limits.max_subjects:
        raise gr.Error(f"Give at most {limits.max_subjects} subject images, not {len(paths)}.")
    if names and len(names) != len(paths):
        raise gr.Error(f"Give one name per subject image: {len(paths)} images but "
                       f"{len(names)} names.")
    subjects = []
    for k, path in enumerate(paths):
        name = (str(names[k]).strip() if names else "")[: limits.max_subject_name_chars]
        name = name or default_name(k)
        try:
            image = load_image(path, what=f"image of {name}")
        except ImageError as err:
            raise gr.Error(str(err)) from err
        subjects.append(Subject(image=image, name=name, colour=default_colour(k)))
    return check_names(subjects)


def _pose_value(pose) -> dict | None:
    """The API's pose: an OpenPose dict, its JSON text, or nothing."""
    if pose in (None, "", {}):
        return None
    if isinstance(pose, str):
        try:
            pose = json.loads(pose)
        except json.JSONDecodeError as err:
            raise gr.Error(f"The pose is not valid JSON ({err.msg}). Send OpenPose JSON.") \
                from err
    if not isinstance(pose, dict):
        raise gr.Error("The pose must be an OpenPose JSON object with \"people\".")
    return pose
