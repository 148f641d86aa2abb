"""Generation through the engine service: checked requests, progress, Stop, recipe PNGs.

The service (``engine.service.EngineService``) is handed in and owns the models; this module
turns studio values into a ``GenerationRequest`` (:func:`prepare_request`, the one way, for the
page's Generate and the ``/generate`` endpoint alike), runs it with a progress callback and a
per-session cancel flag, and writes the result as a PNG carrying its recipe.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from engine.errors import EngineError, GenerationCancelled
from engine.request import GenerationRequest
from pose_db.prompt import MAX_PROMPT_CHARS
from pose_db.scene import MAX_SUBJECTS
from pose_db.scene.openpose_io import write_openpose

from .assignment import remap_subjects, scene_or_none
from .config import Limits
from .inputs import number
from .recipe import MAX_SEED, Recipe, write_png
from .subjects import Subject, read_subjects

RESULT_TTL_S = 24 * 3600  # result PNGs older than this are pruned from the studio's folder


class SessionCancel(threading.Event):
    """Stop flag of one browser session, kept in a ``gr.State``.

    Gradio deep-copies a State's initial value for each new session; a fresh flag per session
    is exactly what that copy should produce (an Event's lock cannot be copied).
    """

    def __deepcopy__(self, memo) -> SessionCancel:
        return SessionCancel()


@dataclass
class Settings:
    """The generation settings as the user left them."""

    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    binding_strength: float


def check_prompt(prompt: str | None) -> str:
    """The stripped prompt, or ``gr.Error`` saying what to fix."""
    if prompt is not None and not isinstance(prompt, str):
        raise gr.Error("The prompt must be text, e.g. “two friends shaking hands”.")
    prompt = (prompt or "").strip()
    if not prompt:
        raise gr.Error("Type a prompt first, e.g. “two friends shaking hands”.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise gr.Error(f"The prompt is {len(prompt)} characters; shorten it to "
                       f"{MAX_PROMPT_CHARS} or fewer.")
    return prompt


def pose_value(pose) -> dict | None:
    """A pose as given: an OpenPose dict, its JSON text, or nothing (``None``, ``""``, ``{}``)."""
    if pose in (None, "", {}):
        return None
    if isinstance(pose, str):
        try:
            pose = json.loads(pose)
        except json.JSONDecodeError as err:
            raise gr.Error(f"The pose is not valid JSON ({err.msg}). Send OpenPose JSON.") \
                from err
        except RecursionError:
            raise gr.Error("The pose JSON is nested too deeply to be OpenPose. Send OpenPose "
                           "JSON.") from None
    if not isinstance(pose, dict):
        raise gr.Error("The pose must be an OpenPose JSON object with \"people\".")
    return pose


def pick_seed(seed: float | int | None, randomise: bool) -> int:
    """The seed to use: ``seed`` itself, or a drawn one for Randomise, nothing or a negative."""
    if randomise or seed is None or seed < 0:
        return random.randint(0, MAX_SEED)
    if seed > MAX_SEED:
        raise gr.Error(f"Seed must be between 0 and {MAX_SEED} (or -1 to draw one).")
    return int(seed)


def check_settings(settings: Settings, limits: Limits) -> Settings:
    """Settings clamped to 16-pixel sizes, or ``gr.Error`` for values out of range."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise gr.Error(message)

    for name, side in (("Width", settings.width), ("Height", settings.height)):
        need(side is not None and limits.min_side <= side <= limits.max_side,
             f"{name} must be between {limits.min_side} and {limits.max_side} pixels.")
    need(settings.steps is not None and 1 <= settings.steps <= limits.max_steps,
         f"Steps must be between 1 and {limits.max_steps}.")
    need(settings.guidance is not None and 0 <= settings.guidance <= limits.max_guidance,
         f"Guidance must be between 0 and {limits.max_guidance}.")
    need(settings.binding_strength is not None
         and 0 <= settings.binding_strength <= limits.max_binding_strength,
         f"Binding strength must be between 0 and {limits.max_binding_strength}.")
    # FLUX packs 2x2 latent patches of an 8x VAE: sizes snap to 16 pixels.
    return Settings(width=int(settings.width) // 16 * 16, height=int(settings.height) // 16 * 16,
                    steps=int(settings.steps), guidance=float(settings.guidance),
                    seed=int(settings.seed), binding_strength=float(settings.binding_strength))


def make_request(prompt: str, subjects: list[Subject], mapping: dict[int, int] | None,
                 pose: dict | None, settings: Settings) -> GenerationRequest:
    """The engine request; ``mapping`` re-points pose assignments from cards to subjects."""
    if mapping is not None:
        pose = remap_subjects(pose, mapping)
    scene = scene_or_none(pose)
    if scene is not None:
        for i, person in enumerate(scene.people):
            if person.subject is not None and person.subject >= len(subjects):
                raise gr.Error(f"Person {i + 1} is bound to subject {person.subject + 1}, "
                               f"which has no image. Upload one or unassign the person.")
    return GenerationRequest(
        prompt=prompt,
        subjects=[s.image for s in subjects],
        subject_names=[s.name for s in subjects],
        pose=write_openpose(scene) if scene is not None and scene.people else None,
        height=settings.height, width=settings.width,
        num_inference_steps=settings.steps, guidance_scale=settings.guidance,
        seed=settings.seed, binding_strength=settings.binding_strength,
    )


def prepare_request(*, prompt: str | None, subject_images=(), subject_names=(), pose=None,
                    width, height, steps, guidance, seed, binding_strength,
                    randomise: bool = False, limits: Limits, controlnet_conditioning_scale=None,
                    control_guidance_start=None, control_guidance_end=None) -> GenerationRequest:
    """The checked engine request for the studio's values, or ``gr.Error`` saying what to fix.

    Args:
        prompt: the scene description (at most ``MAX_PROMPT_CHARS``).
        subject_images: one image path per subject slot; ``None`` for an empty slot (a studio
            card without an image, or a hidden card): it is left out, and the people bound
            to it follow the prompt, with a warning that says so. People bound past the last
            slot are refused.
        subject_names: one name per slot, none at all (default names), or "Mia, Leo".
        pose: OpenPose dict or its JSON text (people may carry ``"subject"``: a slot index),
            or nothing for text-only posing.
        width, height: output size, snapped down to 16 pixels.
        steps, guidance, binding_strength: as the settings panel has them.
        seed: the seed (at most ``MAX_SEED``); negative or ``None`` draws one, as does
            ``randomise``. The seed used is the request's ``seed``.
        Numbers may be numeric text; anything else that is not a finite number is refused
        (``ui.inputs.number``).
        limits: the studio's limits (``ui/presets.yaml``).
        controlnet_conditioning_scale, control_guidance_start, control_guidance_end: the pose
            ControlNet's settings (engines with one); None or empty keeps its model card's values.
    """
    prompt = check_prompt(prompt)
    whole = dict(whole=True)
    settings = check_settings(Settings(
        number(width, "Width", **whole), number(height, "Height", **whole),
        number(steps, "Steps", **whole), number(guidance, "Guidance"),
        pick_seed(number(seed, "Seed", **whole), randomise),
        number(binding_strength, "Binding strength")), limits)
    slots = list(subject_images or [])
    pose = pose_value(pose)
    _say_unbound(pose, slots)
    subjects, mapping = read_subjects(slots, subject_names, limits)
    # A person bound past the slots keeps its number, so make_request names the problem.
    mapping.update({k: k for k in range(len(slots), MAX_SUBJECTS)})
    request = make_request(prompt, subjects, mapping, pose, settings)
    return _with_control(request, controlnet_conditioning_scale, control_guidance_start, control_guidance_end)


def _say_unbound(pose: dict | None, slots: list) -> None:
    """A visible warning when people are bound to slots without an image (a studio card left
    empty or hidden): they are unbound and the prompt alone poses them, and the page says so
    rather than doing it quietly. (The API has no empty slots: a binding past its images is
    refused by ``make_request``.)"""
    scene = scene_or_none(pose)
    people = [i + 1 for i, person in enumerate(scene.people if scene is not None else [])
              if person.subject is not None and 0 <= person.subject < len(slots)
              and not slots[person.subject]]
    if people:
        who = (f"Person {people[0]} is" if len(people) == 1 else
               f"People {', '.join(map(str, people[:-1]))} and {people[-1]} are")
        gr.Warning(f"{who} bound to a subject card without an image, so the prompt alone decides "
                   f"who they are. Upload the image to use it, or unassign them.")


def _with_control(request: GenerationRequest, scale, start, end) -> GenerationRequest:
    """The request with the ControlNet settings that were given (the engine checks their ranges)."""
    for name, value in (("controlnet_conditioning_scale", scale), ("control_guidance_start", start),
                        ("control_guidance_end", end)):
        value = number(value, name.replace("_", " ").capitalize())
        if value is not None:
            setattr(request, name, float(value))
    return request


def check_recipe(recipe: Recipe, limits: Limits) -> Recipe:
    """``recipe`` unchanged when Generate would take its prompt, settings and pose, else
    ``gr.Error`` naming the value: restoring never loads what Generate refuses."""
    try:
        check_prompt(recipe.prompt)
        check_settings(Settings(recipe.width, recipe.height, recipe.num_inference_steps,
                                recipe.guidance_scale, recipe.seed, recipe.binding_strength), limits)
        scene_or_none(recipe.pose)
    except gr.Error as err:
        raise gr.Error(f"This PNG's recipe was not restored: {err.message} The studio never "
                       f"writes such a recipe; the PNG was probably edited.") from err
    return recipe


class Generator:
    """Runs requests on the engine service and stores result PNGs with their recipes.

    Args:
        service: the engine service (``info()``, ``generate(request, progress, cancel)``).
        gpu: optional wrapper for the engine call (``spaces.GPU(...)`` on ZeroGPU).
    """

    def __init__(self, service, gpu=None) -> None:
        self.service = service
        self._run = gpu(self._generate) if gpu is not None else self._generate
        self._folder = tempfile.TemporaryDirectory(prefix="astra-results-")

    def _generate(self, request, progress, cancel):
        return self.service.generate(request, progress=progress, cancel=cancel)

    def run(self, request: GenerationRequest, progress=None,
            cancel: threading.Event | None = None) -> tuple[Path, Recipe]:
        """Generate and save; engine problems become ``gr.Error`` sentences."""
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("Stopped before the first step.")
        try:
            result = self._run(request, progress, cancel)
        except GenerationCancelled:
            raise
        except EngineError as err:
            raise gr.Error(str(err)) from err
        recipe = Recipe(
            prompt=request.prompt, seed=result.seed, width=request.width,
            height=request.height, num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale, binding_strength=request.binding_strength,
            subject_names=list(request.subject_names), pose=copy.deepcopy(request.pose),
            engine=engine_label(result.info),
        )
        return self._save(result.image, recipe), recipe

    def _save(self, image, recipe: Recipe) -> Path:
        folder = Path(self._folder.name)
        self._prune(folder)
        return write_png(image, recipe, folder / f"astra-{recipe.seed}-{uuid.uuid4().hex[:8]}.png")

    @staticmethod
    def _prune(folder: Path) -> None:
        cutoff = time.time() - RESULT_TTL_S
        for old in folder.glob("*.png"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)


def engine_label(info) -> str:
    """Short engine description for captions and recipes."""
    if info.kind == "real":
        adapter = f" + {info.adapter}" if info.adapter else ""
        return f"{info.base}{adapter} ({info.device}, {info.dtype})"
    if info.kind == "tiny":
        return "tiny untrained engine (noise)"
    return "no engine"


def gradio_progress(progress: gr.Progress):
    """The service's ``progress(step, total)`` callback drawing Gradio's progress bar."""
    def report(step: int, total: int) -> None:
        progress((step, total), desc=f"Denoising {step}/{total}", unit="steps")
    return report
