"""Named API endpoints for ``gradio_client``.

Endpoints take plain values (DESIGN §7: an endpoint reading ``gr.EventData`` fails through
gradio_client); ``/generate`` builds its request with ``ui.generation.prepare_request``, the
same function as the page's Generate button:

    /retrieve        (prompt, people) → {"matched", "results": [{score, prompt, pose, …}]}
    /generate        (prompt, subject_images, subject_names, pose, width, height, steps,
                      guidance, seed, binding_strength[, controlnet_conditioning_scale,
                      control_guidance_start, control_guidance_end]) → (PNG with recipe, recipe)
    /pose_from_photo (photo) → OpenPose JSON of the people found
    /read_recipe     (png) → the recipe stored in a studio PNG
"""

from __future__ import annotations

import threading
from dataclasses import asdict

import gradio as gr

from engine.errors import GenerationCancelled

from .config import Defaults, StudioConfig
from .disconnect import cancel_on_disconnect
from .generation import Generator, gradio_progress, prepare_request
from .panels.photo import detect_pose
from .panels.results import load_recipe_file
from .panels.retrieval import retrieval_to_json, run_retrieval


def gpu_queue(config: StudioConfig) -> dict:
    """Queue options of every GPU event: one shared ``"gpu"`` group admitting as many events at
    once as there are resident engines (``--gpus``). Gradio applies the lowest limit of a group,
    so every GPU event must take these same options."""
    return dict(concurrency_id="gpu", concurrency_limit=max(1, int(config.gpu_concurrency)))


def build_api(*, generator: Generator, retriever, detector, config: StudioConfig,
              defaults: Defaults | None = None) -> None:
    """Register the named endpoints (call inside the studio's Blocks).

    ``defaults`` (``presets.yaml``, per engine kind; the real engine's by default) are the
    values a client gets for the settings it leaves out.
    """
    limits = config.limits
    defaults = defaults or config.defaults_for("real")
    size = config.presets.size(defaults.size)
    threshold = getattr(retriever, "threshold", None)

    def retrieve(prompt: str, people: int = 0) -> dict:
        """Skeletons from the pose library for a prompt; people 0 infers the count."""
        return retrieval_to_json(run_retrieval(retriever, prompt, people, limits), threshold)

    # CPU work with its own slots (presets.yaml), never behind the GPU's single slot.
    gr.api(retrieve, api_name="retrieve", concurrency_limit=limits.retrieve_concurrency,
           concurrency_id="retrieve")

    # File inputs need real components (they upload); they sit in a hidden column.
    with gr.Column(visible=False, elem_id="api-only"):
        prompt = gr.Textbox()
        images = gr.File(file_count="multiple", type="filepath")
        names, pose = gr.JSON(), gr.JSON()
        # Numbers without precision or bounds pass through Gradio untouched: prepare_request
        # reads them (ui.inputs.number), so "abc", NaN or 2**64 get a sentence, not a Gradio error.
        width, height = gr.Number(size.width), gr.Number(size.height)
        steps = gr.Number(defaults.steps)
        guidance, binding = gr.Number(defaults.guidance), gr.Number(defaults.binding_strength)
        seed = gr.Number(-1)
        control_scale, control_start, control_end = gr.Number(None), gr.Number(None), gr.Number(None)
        image_out, recipe_out = gr.Image(type="filepath", format="png"), gr.JSON()
        photo, photo_out = gr.File(type="filepath"), gr.JSON()
        png, recipe_read = gr.File(type="filepath"), gr.JSON()
        buttons = [gr.Button() for _ in range(3)]

    def generate(prompt, subject_images, subject_names, pose, width, height, steps, guidance,
                 seed, binding_strength, controlnet_conditioning_scale=None,
                 control_guidance_start=None, control_guidance_end=None, client: gr.Request = None,
                 progress=gr.Progress()):
        """Generate one image; seed -1 draws one. Returns the PNG (recipe inside) and recipe.
        The ControlNet settings (last, optional) apply to engines with a pose ControlNet."""
        request = prepare_request(prompt=prompt, subject_images=subject_images,
                                  subject_names=subject_names, pose=pose, width=width,
                                  height=height, steps=steps, guidance=guidance, seed=seed,
                                  binding_strength=binding_strength, limits=limits,
                                  controlnet_conditioning_scale=controlnet_conditioning_scale,
                                  control_guidance_start=control_guidance_start,
                                  control_guidance_end=control_guidance_end)
        try:  # a client that disconnects frees the GPU slot at the next step
            with cancel_on_disconnect(client, threading.Event()) as cancel:
                path, recipe = generator.run(request, gradio_progress(progress), cancel)
        except GenerationCancelled as stopped:
            raise gr.Error("The generation was stopped: its client disconnected.") from stopped
        return str(path), asdict(recipe)

    buttons[0].click(generate, [prompt, images, names, pose, width, height, steps, guidance,
                                seed, binding, control_scale, control_start, control_end],
                     [image_out, recipe_out], api_name="generate",
                     **gpu_queue(config))

    def pose_from_photo(photo):
        """OpenPose JSON of the people found in a photo (needs the detector's weights)."""
        return detect_pose(detector, photo)

    def read_recipe(png):
        """The recipe stored in a PNG saved by the studio."""
        return asdict(load_recipe_file(png))

    buttons[1].click(pose_from_photo, photo, photo_out, api_name="pose_from_photo", **gpu_queue(config))
    buttons[2].click(read_recipe, png, recipe_read, api_name="read_recipe")
