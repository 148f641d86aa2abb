"""Up-front validation of a generation's inputs (``AstraPipeline.check_inputs``).

Every problem becomes one ``EngineError`` sentence that says what to change, before any model
runs: the user never sees a traceback from torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image

from engine.errors import EngineError
from pose_db.scene.model import MAX_SUBJECTS, PoseError, PoseScene
from pose_db.scene.openpose_io import read_openpose

MIN_SIDE, MAX_SIDE = 64, 4096
MAX_STEPS = 200
MAX_GUIDANCE = 30.0
MAX_BINDING_STRENGTH = 5.0
MIN_REFERENCE_SIDE = 16
MAX_PROMPT_CHARS = 4000
OUTPUT_TYPES = ("pil", "np", "pt", "latent")


def read_pose(pose: dict | str | PoseScene | None) -> PoseScene | None:
    """The pose as a ``PoseScene`` (OpenPose JSON dict or text, or a scene), or None."""
    if pose is None or isinstance(pose, PoseScene):
        return pose
    if not isinstance(pose, (dict, list, str, bytes)):
        raise EngineError(f"pose must be OpenPose JSON (a dict) or a pose scene, not {type(pose).__name__}.")
    try:
        return read_openpose(pose)
    except PoseError as exc:
        raise EngineError(f"The pose is not valid OpenPose JSON: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # shapes the reader did not foresee
        raise EngineError(f"The pose is not valid OpenPose JSON ({type(exc).__name__}: {exc}); export it again "
                          "from the pose editor or an OpenPose tool.") from exc


def check_prompt(prompt: Any) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise EngineError("Type a prompt that describes the scene.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise EngineError(f"The prompt has {len(prompt)} characters; shorten it to at most {MAX_PROMPT_CHARS}.")


def check_size(height: Any, width: Any, multiple: int) -> None:
    for name, side in (("height", height), ("width", width)):
        if not _is_int(side):
            raise EngineError(f"{name} must be a whole number of pixels, got {side!r}.")
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise EngineError(f"{name} must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {side}.")
        if side % multiple:
            raise EngineError(f"{name} must be a multiple of {multiple} pixels, got {side}; "
                              f"try {round(side / multiple) * multiple}.")


def check_subjects(subjects: Any, subject_names: Any, max_subjects: int = MAX_SUBJECTS) -> None:
    if not isinstance(subjects, Sequence) or isinstance(subjects, (str, bytes)):
        raise EngineError("subjects must be a list of images.")
    if len(subjects) > max_subjects:
        raise EngineError(f"At most {max_subjects} subjects are supported, got {len(subjects)}; remove some.")
    for k, image in enumerate(subjects):
        if not isinstance(image, Image.Image):
            raise EngineError(f"Subject {k + 1} is not an image ({type(image).__name__}); upload a picture.")
        if min(image.size) < MIN_REFERENCE_SIDE:
            raise EngineError(f"Subject {k + 1} is only {image.size[0]}x{image.size[1]} pixels; "
                              f"upload an image at least {MIN_REFERENCE_SIDE} pixels on each side.")
    if subject_names is None:
        return
    if not isinstance(subject_names, Sequence) or isinstance(subject_names, (str, bytes)):
        raise EngineError("subject_names must be a list with one name per subject.")
    if len(subject_names) != len(subjects):
        raise EngineError(f"Give one name per subject: {len(subject_names)} names for {len(subjects)} subjects.")
    for k, name in enumerate(subject_names):
        if name is not None and not isinstance(name, str):
            raise EngineError(f"The name of subject {k + 1} must be text, got {type(name).__name__}.")


def check_pose_subjects(scene: PoseScene | None, num_subjects: int) -> None:
    if scene is None:
        return
    for i, person in enumerate(scene.people):
        if person.subject is not None and person.subject >= num_subjects:
            raise EngineError(f"Person {i + 1} of the pose is assigned to subject {person.subject + 1}, but only "
                              f"{num_subjects} subject(s) were given; reassign it or add that subject.")


def check_settings(num_inference_steps: Any, guidance_scale: Any, seed: Any, binding_strength: Any,
                   callback_on_step_end: Any) -> None:
    if not _is_int(num_inference_steps) or not 1 <= num_inference_steps <= MAX_STEPS:
        raise EngineError(f"num_inference_steps must be a whole number from 1 to {MAX_STEPS}, "
                          f"got {num_inference_steps!r}.")
    if not _is_real(guidance_scale) or not 0 <= guidance_scale <= MAX_GUIDANCE:
        raise EngineError(f"guidance_scale must be a number from 0 to {MAX_GUIDANCE:g}, got {guidance_scale!r}.")
    if not _is_int(seed) or not 0 <= seed < 2**63:
        raise EngineError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}.")
    if not _is_real(binding_strength) or not 0 <= binding_strength <= MAX_BINDING_STRENGTH:
        raise EngineError(f"binding_strength must be a number from 0 (off) to {MAX_BINDING_STRENGTH:g}, "
                          f"got {binding_strength!r}.")
    if callback_on_step_end is not None and not callable(callback_on_step_end):
        raise EngineError("callback_on_step_end must be a function (pipe, step, timestep, callback_kwargs) -> dict.")


def check_output_type(output_type: Any) -> None:
    if output_type not in OUTPUT_TYPES:
        raise EngineError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
