"""The studio's events: what each button and edit does, calling the services handed in.

Every handler takes plain component values and per-session ``gr.State`` (history, cancel
flag), never module globals, so one session never sees another's subjects or results.
"""

from __future__ import annotations

import gradio as gr

from engine.errors import GenerationCancelled

from .api import GPU
from .assignment import assign, assign_in_order, drop_subject, panel_updates
from .config import StudioConfig
from .generation import (Generator, Settings, check_settings, gradio_progress, make_request,
                         pick_seed)
from .results import add_to_history, gallery_value, load_recipe_file, show_result
from .retrieval_panel import (check_prompt, gallery_items, run_retrieval, status_text)
from .settings_panel import CUSTOM
from .subjects import card_updates, read_cards, subject_labels

UI_ONLY = dict(api_visibility="private")


def wire_studio(studio, *, generator: Generator, retriever, detector,
                config: StudioConfig) -> None:
    _wire_retrieval(studio, retriever, config)
    _wire_assignment(studio, config)
    _wire_generation(studio, generator, config)
    _wire_restore(studio, config)
    _wire_photo(studio, detector)


def _labels_and_count(n: int, values) -> tuple[int, list[str], list[str]]:
    """Split ``[count, *names, *colours]`` into count, display labels and colours."""
    count, names, colours = values[0], list(values[1:1 + n]), list(values[1 + n:1 + 2 * n])
    return count, subject_labels(count, names, n), colours


def _prompt_validation(prompt: str | None, config: StudioConfig, inputs: int) -> list[dict]:
    """The cheap check run before an event is queued, shown on the prompt box itself; Gradio
    wants one verdict per input, and only the prompt (the first input) can fail."""
    limit = config.limits.max_prompt_chars
    verdict = gr.validate(0 < len((prompt or "").strip()) <= limit,
                          f"Type a prompt first (at most {limit} characters).")
    return [verdict] + [gr.validate(True, "")] * (inputs - 1)


def _wire_retrieval(studio, retriever, config: StudioConfig) -> None:
    limits, r, subjects = config.limits, studio.retrieval, studio.subjects
    threshold = getattr(retriever, "threshold", None)

    def validate(prompt, people, count):
        return _prompt_validation(prompt, config, inputs=3)

    def retrieve(prompt, people, count):
        retrieval = run_retrieval(retriever, prompt, people, limits)
        scenes = [res.scene.to_openpose() for res in retrieval.results] \
            if retrieval.matched else []
        best = assign_in_order(scenes[0], count) if scenes else None
        gallery = gr.update(value=gallery_items(retrieval) if scenes else [],
                            visible=bool(scenes), selected_index=None)
        return gallery, status_text(retrieval, threshold), scenes, best

    for trigger in (r.button.click, r.prompt.submit):
        trigger(retrieve, [r.prompt, r.people, subjects.count],
                [r.gallery, r.status, r.scenes, studio.editor], validator=validate,
                concurrency_limit=4, concurrency_id="retrieve", **UI_ONLY)

    def pick(scenes, count, evt: gr.SelectData):
        if not scenes or evt.index is None or not 0 <= evt.index < len(scenes):
            return gr.skip()
        return assign_in_order(scenes[evt.index], count)

    r.gallery.select(pick, [r.scenes, subjects.count], studio.editor, queue=False, **UI_ONLY)


def _wire_assignment(studio, config: StudioConfig) -> None:
    n = config.limits.max_subjects
    a, subjects, editor = studio.assignment, studio.subjects, studio.editor
    name_inputs = [subjects.count, *subjects.names, *subjects.colours]
    outputs = [*a.dropdowns, a.auto, a.hint]

    def refresh(pose, *values):
        _, labels, _ = _labels_and_count(n, values)
        return panel_updates(pose, labels)

    refresh_inputs = [editor, *name_inputs]
    editor.change(refresh, refresh_inputs, outputs, queue=False, **UI_ONLY)
    for component in (subjects.count, *subjects.names):
        component.change(refresh, refresh_inputs, outputs, queue=False, **UI_ONLY)
    # Names and colours reach the canvas halos in the browser alone: no server round trip.
    for component in (*subjects.names, *subjects.colours):
        component.change(None, [*subjects.names, *subjects.colours], None,
                         js=editor.subjects_js(), queue=False, **UI_ONLY)

    for i, dropdown in enumerate(a.dropdowns):
        dropdown.input(lambda pose, subject, i=i: assign(pose, i, subject), [editor, dropdown],
                       editor, queue=False, **UI_ONLY)
    a.auto.click(assign_in_order, [editor, subjects.count], editor, queue=False, **UI_ONLY)

    # Removing card k moves the later cards up: move the assignments with them.
    for k, card in enumerate(subjects.cards):
        card.remove.click(lambda pose, count, k=k: drop_subject(pose, k, count),
                          [editor, subjects.count], editor, queue=False, **UI_ONLY)


def _wire_generation(studio, generator: Generator, config: StudioConfig) -> None:
    limits, n = config.limits, config.limits.max_subjects
    s, res, subjects = studio.settings, studio.results, studio.subjects
    inputs = [studio.retrieval.prompt, studio.editor, *s.inputs, *subjects.inputs,
              res.history, studio.cancel]

    def validate(prompt, *rest):
        return _prompt_validation(prompt, config, inputs=1 + len(rest))

    def generate(prompt, pose, width, height, steps, guidance, seed, randomise, binding,
                 count, *rest, progress=gr.Progress()):
        images, names, colours = rest[:n], rest[n:2 * n], rest[2 * n:3 * n]
        history, cancel = rest[3 * n], rest[3 * n + 1]
        prompt = check_prompt(prompt, limits)
        used_seed = pick_seed(seed, randomise)
        settings = check_settings(Settings(width, height, steps, guidance, used_seed, binding),
                                  limits)
        cards, mapping = read_cards(count, list(images), list(names), list(colours), limits)
        request = make_request(prompt, cards, mapping, pose, settings)
        progress(0, desc="Waiting for the engine")
        try:
            path, recipe = generator.run(request, gradio_progress(progress), cancel)
        except GenerationCancelled:
            gr.Info("Stopped. Nothing was generated.")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), history, used_seed
        history = add_to_history(history, path, recipe, limits.history_length)
        caption, recipe_json, download = show_result(history, 0)
        return (gr.update(value=gallery_value(history), selected_index=0), caption,
                recipe_json, download, history, used_seed)

    clear = res.generate.click(lambda cancel: cancel.clear(), studio.cancel, None, queue=False,
                               **UI_ONLY)
    clear.then(generate, inputs,
               [res.gallery, res.caption, res.recipe, res.download, res.history, s.seed],
               validator=validate, show_progress_on=[res.gallery], **GPU, **UI_ONLY)
    res.stop.click(lambda cancel: cancel.set(), studio.cancel, None, queue=False, **UI_ONLY)

    def select(history, evt: gr.SelectData):
        return show_result(history, evt.index)

    res.gallery.select(select, res.history, [res.caption, res.recipe, res.download],
                       queue=False, **UI_ONLY)


def _wire_restore(studio, config: StudioConfig) -> None:
    n = config.limits.max_subjects
    s, subjects, r = studio.settings, studio.subjects, studio.retrieval

    def restore(path, count, *values):
        recipe = load_recipe_file(path)
        images, names, colours = list(values[:n]), list(values[n:2 * n]), list(values[2 * n:])
        for k, name in enumerate(recipe.subject_names[:n]):
            names[k] = name
        count = max(int(count or 0), min(len(recipe.subject_names), n))
        preset = next((p.label for p in config.presets.sizes
                       if (p.width, p.height) == (recipe.width, recipe.height)), CUSTOM)
        missing = [recipe.subject_names[k] for k in range(min(len(recipe.subject_names), n))
                   if images[k] is None]
        gr.Info("Recipe restored." + (f" Upload the images of {', '.join(missing)} again: "
                                      f"PNGs keep names, not pictures." if missing else ""))
        return [recipe.prompt, recipe.pose, preset, recipe.width, recipe.height,
                recipe.num_inference_steps, recipe.guidance_scale, recipe.seed, False,
                recipe.binding_strength, *card_updates(count, images, names, colours, n)]

    studio.results.restore.upload(
        restore, [studio.results.restore, *subjects.inputs],
        [r.prompt, studio.editor, s.preset, s.width, s.height, s.steps, s.guidance, s.seed,
         s.randomise, s.binding, *subjects.card_outputs], queue=False, **UI_ONLY)


def _wire_photo(studio, detector) -> None:
    from .api import detect_pose

    photo = studio.photo
    photo.button.click(lambda path: detect_pose(detector, path), photo.image, studio.editor,
                       **GPU, **UI_ONLY)

