"""Pose from a photo: upload a picture, detect the skeletons in it (they replace the canvas).

The detector is handed in (``pose_db.library.detector.PoseDetector``, BlazePose by default:
it needs no download) or absent; the note says which. Detecting writes the editor's value, a cross-panel event wired in ``ui.events``; the
same :func:`detect_pose` serves the ``/pose_from_photo`` endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pose_db.scene.openpose_io import write_openpose

from ..images import ImageError, load_image


@dataclass
class PhotoPanel:
    image: gr.Image
    button: gr.Button
    note: gr.Markdown


def detector_note(detector) -> str:
    if detector is None:
        return ("Pose-from-photo is off in this studio: no detector was loaded. "
                "Run `python app.py` (its built-in BlazePose detector needs no download).")
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
        raise gr.Error("No person was found in the photo. Try one where whole bodies and faces "
                       "are clearly visible.")
    return write_openpose(scene)
