"""The studio's cross-panel events: what a button or an edit does when it reaches beyond its
own panel, calling the services handed in.

The rule: **panel-local events in the panel (``ui/panels/``), cross-panel events here.** An
event whose inputs and outputs all belong to one panel is wired by that panel's ``build_*``;
anything that reads or writes another panel (Retrieve fills the editor, Generate reads every
panel, Restore fills them all) is wired below.

Handlers read their inputs by name: an event given a *set* of components receives one
``{component: value}`` dict, so no handler counts positions. Every handler takes component
values and per-session ``gr.State`` (history, cancel flag), never module globals, so one
session never sees another's subjects or results.
"""

from __future__ import annotations

import gradio as gr

from engine.errors import GenerationCancelled
from pose_db.prompt import MAX_PROMPT_CHARS
from pose_db.scene import MAX_SUBJECTS
from pose_db.scene.openpose_io import write_openpose

from .api import gpu_queue
from .assignment import assign, assign_in_order, drop_subject
from .canvas_fit import canvas_size, fit_note, fit_pose
from .config import StudioConfig
from .disconnect import cancel_on_disconnect
from .generation import MAX_SEED, Generator, check_recipe, gradio_progress, prepare_request
from .panels.assignment import panel_updates
from .panels.photo import detect_pose
from .panels.results import add_to_history, gallery_value, load_recipe_file, show_result
from .panels.retrieval import (
    EMPTY_PROMPT_STATUS,
    REPLACED_EDIT,
    gallery_items,
    replaces_edit,
    run_retrieval,
    status_text,
)
from .panels.settings import CUSTOM
from .panels.subjects import card_updates, remove_card
from .subjects import subject_labels

UI_ONLY = dict(api_visibility="private")


def wire_studio(studio, *, generator: Generator, retriever, detector,
                config: StudioConfig) -> None:
    _wire_retrieval(studio, retriever, config)
    _wire_assignment(studio)
    _wire_generation(studio, generator, config)
    _wire_restore(studio, config)
    _wire_photo(studio, detector, config)
    _wire_canvas_fit(studio)


def _wire_canvas_fit(studio) -> None:
    """With the lock on, the canvas takes the output size: a retrieved, imported or restored
    pose, and a new size or preset, refit the skeletons (scaled evenly, centred)."""
    s, editor = studio.settings, studio.editor

    def follow(pose, width, height, locked):
        if not locked or canvas_size(pose) in (None, (int(width), int(height))):
            return gr.skip()
        return fit_pose(pose, width, height)

    inputs = [editor, s.width, s.height, s.lock]
    for trigger in (editor.change, s.width.change, s.height.change, s.lock.change):
        trigger(follow, inputs, editor, queue=False, **UI_ONLY)


def _prompt_verdict(prompt: str | None) -> dict:
    """The cheap check run before an event is queued, shown on the prompt box itself."""
    return gr.validate(0 < len((prompt or "").strip()) <= MAX_PROMPT_CHARS,
                       f"Type a prompt first (at most {MAX_PROMPT_CHARS} characters).")


def _wire_retrieval(studio, retriever, config: StudioConfig) -> None:
    limits, r, subjects = config.limits, studio.retrieval, studio.subjects
    threshold = getattr(retriever, "threshold", None)

    def validate(prompt, *others):
        # One verdict per input; only the prompt can fail.
        return [_prompt_verdict(prompt)] + [gr.validate(True, "")] * len(others)

    s = studio.settings
    shape = [s.width, s.height, s.lock]

    def placed_pose(scene, count, width, height, locked):
        # Bound in order and, with the lock on, already in the output's shape: the canvas gets
        # one new value (one undo step), not a retrieved one and then its refit.
        pose = assign_in_order(scene, count)
        return fit_pose(pose, width, height) if locked else pose

    def retrieve(prompt, people, count, pose, placed, width, height, locked):
        retrieval = run_retrieval(retriever, prompt, people, limits)
        scenes = [write_openpose(res.entry.scene) for res in retrieval.results] \
            if retrieval.matched else []
        best = placed_pose(scenes[0], count, width, height, locked) if scenes else None
        gallery = gr.update(value=gallery_items(retrieval) if scenes else [],
                            visible=bool(scenes), selected_index=None)
        if replaces_edit(pose, placed):  # text-only clears the canvas: that also loses an edit
            gr.Info(REPLACED_EDIT, duration=12)
        return gallery, status_text(retrieval, threshold), scenes, best, best

    for trigger in (r.button.click, r.prompt.submit):
        # The validator stops an empty prompt before the retrieval; the status line must not go
        # on describing the last prompt's results as if they were this one's, so it is set first.
        trigger(lambda prompt: gr.skip() if (prompt or "").strip() else EMPTY_PROMPT_STATUS,
                r.prompt, r.status, queue=False, **UI_ONLY).then(
            retrieve, [r.prompt, r.people, subjects.count, studio.editor, r.placed, *shape],
            [r.gallery, r.status, r.scenes, studio.editor, r.placed], validator=validate,
            concurrency_limit=limits.retrieve_concurrency, concurrency_id="retrieve", **UI_ONLY)

    def pick(scenes, count, pose, placed, width, height, locked, evt: gr.SelectData):
        if not scenes or evt.index is None or not 0 <= evt.index < len(scenes):
            return gr.skip(), gr.skip(), gr.skip()
        chosen = placed_pose(scenes[evt.index], count, width, height, locked)
        # Unqueued, so the pick lands before the next edit (a queued answer could arrive after
        # one and undo it); the "replaced" notice therefore goes to the status line, not a toast.
        notice = f"**{REPLACED_EDIT}**" if replaces_edit(pose, placed) else gr.skip()
        return chosen, chosen, notice

    # The library browser's gallery fills its scenes as this one does: one pick serves both.
    library = studio.library
    for gallery, scenes in [(r.gallery, r.scenes)] + ([(library.gallery, library.scenes)] if library else []):
        gallery.select(pick, [scenes, subjects.count, studio.editor, r.placed, *shape],
                       [studio.editor, r.placed, r.status], queue=False, **UI_ONLY)


def _wire_assignment(studio) -> None:
    a, subjects, editor = studio.assignment, studio.subjects, studio.editor
    outputs = [*a.dropdowns, a.auto, a.hint]
    prompt = studio.retrieval.prompt
    refresh_inputs = {editor, subjects.count, prompt, *subjects.names, *subjects.colours}

    def refresh(values):
        labels = subject_labels(values[subjects.count], [values[c] for c in subjects.names])
        return panel_updates(values[editor], labels, [values[c] for c in subjects.colours],
                             values[prompt])

    editor.change(refresh, refresh_inputs, outputs, queue=False, **UI_ONLY)
    for component in (subjects.count, *subjects.names, *subjects.colours):
        component.change(refresh, refresh_inputs, outputs, queue=False, **UI_ONLY)
    # The prompt is checked against the names when the creator leaves the box, not per key.
    for trigger in (prompt.blur, prompt.submit):
        trigger(refresh, refresh_inputs, outputs, queue=False, **UI_ONLY)
    # Names and colours reach the canvas halos in the browser alone: no server round trip.
    for component in (*subjects.names, *subjects.colours):
        component.change(None, [*subjects.names, *subjects.colours], None,
                         js=editor.subjects_js(), queue=False, **UI_ONLY)

    for i, dropdown in enumerate(a.dropdowns):
        dropdown.input(lambda pose, subject, i=i: assign(pose, i, subject), [editor, dropdown],
                       editor, queue=False, **UI_ONLY)
    a.auto.click(assign_in_order, [editor, subjects.count], editor, queue=False, **UI_ONLY)

    # Removing card k moves the later cards up: the cards and the pose's bindings change in
    # one event, so a binding follows its subject (never a stale count or a half-done move).
    for k, card in enumerate(subjects.cards):
        def remove(values, k=k):
            cards = subjects.read(values)
            return [*remove_card(cards, k), drop_subject(values[editor], k, int(cards.count or 0))]

        card.remove.click(remove, {editor, *subjects.inputs}, [*subjects.card_outputs, editor],
                          queue=False, **UI_ONLY)


def _wire_generation(studio, generator: Generator, config: StudioConfig) -> None:
    limits = config.limits
    s, res, subjects = studio.settings, studio.results, studio.subjects
    prompt = studio.retrieval.prompt
    inputs = {prompt, studio.editor, s.width, s.height, s.steps, s.guidance, s.seed,
              s.randomise, s.binding, s.variations, *s.control, res.history, studio.cancel,
              *subjects.inputs}

    def validate(values):
        return {prompt: _prompt_verdict(values[prompt])}

    def generate(values, client: gr.Request, progress=gr.Progress()):
        # A refused request says why in a toast and leaves the outputs as they were: an error
        # raised from here would cover the whole session gallery with an "Error" badge.
        try:
            yield from run_generation(values, client, progress)
        except gr.Error as err:
            gr.Warning(err.message, title="Not generated", duration=15)
            yield (gr.skip(),) * 6

    def run_generation(values, client, progress):
        images, names = subjects.read(values).slots()
        # The engine and the recipe get one shape: the pose fitted to the output, said aloud.
        pose = values[studio.editor]
        note = fit_note(pose, values[s.width], values[s.height])
        if note:
            pose = fit_pose(pose, values[s.width], values[s.height])
            gr.Info(note)
        count = variation_count(values[s.variations], limits)

        def request_for(seed, randomise):
            return prepare_request(
                prompt=values[prompt], subject_images=images, subject_names=names,
                pose=pose, width=values[s.width], height=values[s.height],
                steps=values[s.steps], guidance=values[s.guidance], seed=seed,
                randomise=randomise, binding_strength=values[s.binding], limits=limits,
                **_control_values(values, s))

        # Variations: consecutive seeds from the first (drawn when Randomise is on), each
        # request built and checked the one way, all of them before the first image starts.
        first = request_for(values[s.seed], values[s.randomise])
        requests = [first] + [request_for((first.seed + k) % (MAX_SEED + 1), False)
                              for k in range(1, count)]
        history, done = values[res.history], 0
        for k, request in enumerate(requests):
            # One image at a time, this event holding the GPU group's one slot throughout:
            # a batch never runs two generations at once.
            progress(0, desc="Waiting for the engine" if count == 1 else
                     f"Image {k + 1} of {count}: waiting for the engine")
            try:
                with cancel_on_disconnect(client, values[studio.cancel]) as cancel:  # a closed tab frees the GPU
                    path, recipe = generator.run(request, variation_progress(progress, k, count),
                                                 cancel)
            except GenerationCancelled:
                gr.Info("Stopped. Nothing was generated." if not done else
                        f"Stopped after {done} of {count} images.")
                break
            except gr.Error as err:
                if not done:
                    raise
                gr.Warning(f"{err.message} ({done} of {count} images were made.)",
                           title="Variations stopped", duration=15)
                break
            history, done = add_to_history(history, path, recipe, limits.history_length), done + 1
            caption, recipe_json, download = show_result(history, 0)
            if count > 1:  # the grid, not one image opened large; each shown as it is made
                caption = (f"Variation {done} of {count} (seeds {first.seed}–"
                           f"{requests[-1].seed}); click an image for its own recipe.  \n"
                           + caption)
            # The seed box keeps the batch's first seed, so Generate can repeat the batch.
            yield (gr.update(value=gallery_value(history), selected_index=0 if count == 1 else None),
                   caption, recipe_json, download, history, first.seed)
        if not done:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), history, first.seed

    clear = res.generate.click(lambda cancel: cancel.clear(), studio.cancel, None, queue=False,
                               **UI_ONLY)
    clear.then(generate, inputs,
               [res.gallery, res.caption, res.recipe, res.download, res.history, s.seed],
               validator=validate, show_progress_on=[res.gallery], **gpu_queue(config), **UI_ONLY)
    res.stop.click(lambda cancel: cancel.set(), studio.cancel, None, queue=False, **UI_ONLY)


def variation_count(value, limits) -> int:
    """The Variations setting as a count, or ``gr.Error`` naming the range."""
    try:
        count = float(1 if value is None else value)
    except (TypeError, ValueError):
        count = 0.0
    if not (count.is_integer() and 1 <= count <= limits.max_variations):  # 2.5: refused
        raise gr.Error(f"Variations must be a whole number from 1 to {limits.max_variations}.")
    return int(count)


def variation_progress(progress, k: int, count: int):
    """The engine's ``progress(step, total)`` for image ``k`` of ``count``: one bar per image,
    saying which image it is."""
    if count == 1:
        return gradio_progress(progress)

    def report(step: int, total: int) -> None:
        progress((step, total), desc=f"Image {k + 1} of {count}: denoising {step}/{total}",
                 unit="steps")
    return report


def _control_values(values: dict, settings) -> dict:
    """The ControlNet settings for `prepare_request`, only when a ControlNet is loaded (the
    engine refuses them otherwise)."""
    if not settings.has_control:
        return {}
    scale, start, end = (values[slider] for slider in settings.control)
    return {"controlnet_conditioning_scale": scale, "control_guidance_start": start, "control_guidance_end": end}


def _wire_restore(studio, config: StudioConfig) -> None:
    n = MAX_SUBJECTS
    s, subjects, r, restore_file = (studio.settings, studio.subjects, studio.retrieval,
                                    studio.results.restore)

    def restore(values):
        recipe = check_recipe(load_recipe_file(values[restore_file]), config.limits)  # Generate's limits
        cards = subjects.read(values)
        for k, name in enumerate(recipe.subject_names[:n]):
            cards.names[k] = name
        count = max(int(cards.count or 0), min(len(recipe.subject_names), n))
        preset = next((p.label for p in config.presets.sizes
                       if (p.width, p.height) == (recipe.width, recipe.height)), CUSTOM)
        missing = [recipe.subject_names[k] for k in range(min(len(recipe.subject_names), n))
                   if cards.images[k] is None]
        # Randomise is switched off so the restored seed is the one used: say so.
        gr.Info(f"Recipe restored. Randomise is now off, so Generate repeats seed {recipe.seed}; "
                f"tick Randomise for new seeds."
                + (f" Upload the images of {', '.join(missing)} again: "
                   f"PNGs keep names, not pictures." if missing else ""))
        return [recipe.prompt, recipe.pose, preset, recipe.width, recipe.height,
                recipe.num_inference_steps, recipe.guidance_scale, recipe.seed, False,
                recipe.binding_strength,
                *card_updates(count, cards.images, cards.names, cards.colours)]

    restore_file.upload(
        restore, {restore_file, *subjects.inputs},
        [r.prompt, studio.editor, s.preset, s.width, s.height, s.steps, s.guidance, s.seed,
         s.randomise, s.binding, *subjects.card_outputs], concurrency_limit=None,
        **UI_ONLY)  # queued: only a queued event shows its gr.Info


def _wire_photo(studio, detector, config: StudioConfig) -> None:
    photo = studio.photo
    photo.button.click(lambda path: detect_pose(detector, path), photo.image, studio.editor,
                       **gpu_queue(config), **UI_ONLY)
