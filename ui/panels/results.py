"""Generate / Stop, the per-session results gallery, each result's recipe and download,
and restoring a recipe from a PNG the studio saved.

Picking a result in the gallery is the panel's own event (wired here); Generate, Stop and
Restore reach other panels and are wired in ``ui.events``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..recipe import Recipe, RecipeError, read_recipe


@dataclass
class ResultsPanel:
    generate: gr.Button
    stop: gr.Button
    gallery: gr.Gallery
    caption: gr.Markdown
    recipe: gr.JSON
    download: gr.DownloadButton
    restore: gr.File
    history: gr.State  # list of {"path", "caption", "recipe"}, newest first


def build_results_panel(engine_ready: bool = True) -> ResultsPanel:
    """The panel; without an engine (``engine_ready`` false) Generate and Stop are shown
    disabled and say so, matching the status banner."""
    with gr.Row(elem_classes=["generate-row"]):
        generate = gr.Button("Generate" if engine_ready else "Generate (no engine)",
                             variant="primary", size="lg", scale=3, interactive=engine_ready,
                             elem_id="generate")
        stop = gr.Button("■ Stop", variant="stop", size="lg", scale=1, min_width=90,
                         interactive=engine_ready, elem_id="stop")
    # No floating label: it covered the first row of the grid (variations fill several rows).
    gallery = gr.Gallery(label="Results (this session)", show_label=False, columns=2, height=380,
                         format="png",
                         object_fit="contain", buttons=["download", "fullscreen"],
                         interactive=False, elem_id="results", preview=False)
    caption = gr.Markdown("", elem_id="result-caption", elem_classes=["panel-hint"])
    download = gr.DownloadButton("Download PNG (recipe inside)", visible=False, size="sm",
                                 elem_id="download")
    with gr.Accordion("Recipe of the selected result", open=False, elem_id="recipe-box"):
        recipe = gr.JSON(label="Recipe", elem_id="recipe", height=260)
    with gr.Accordion("Restore a recipe from a PNG", open=False, elem_id="restore-box"):
        restore = gr.File(label="Drop a PNG saved by the studio", file_types=[".png"],
                          type="filepath", height=120, elem_id="restore")
    panel = ResultsPanel(generate, stop, gallery, caption, recipe, download, restore,
                         gr.State([]))
    _wire(panel)
    return panel


def _wire(panel: ResultsPanel) -> None:
    """The panel's own event: picking a result shows its caption, recipe and download."""
    def select(history, evt: gr.SelectData):
        return show_result(history, evt.index)

    panel.gallery.select(select, panel.history, [panel.caption, panel.recipe, panel.download],
                         queue=False, api_visibility="private")


def add_to_history(history: list, path: str, recipe: Recipe, limit: int) -> list:
    caption = f"seed {recipe.seed} · {recipe.width}×{recipe.height}"
    return ([{"path": str(path), "caption": caption, "recipe": asdict(recipe)}]
            + list(history or []))[:limit]


def gallery_value(history: list) -> list[tuple[str, str]]:
    return [(item["path"], item["caption"]) for item in history or []]


def show_result(history: list, index: int | None):
    """Caption, recipe JSON and download button for result ``index``."""
    if not history or index is None or not 0 <= index < len(history):
        return "", None, gr.update(visible=False)
    item = history[index]
    recipe = item["recipe"]
    names = ", ".join(recipe["subject_names"]) or "no subjects"
    people = len((recipe.get("pose") or {}).get("people", []))
    caption = (f"**{recipe['prompt']}**  \nseed {recipe['seed']} · {recipe['width']}×"
               f"{recipe['height']} · {recipe['num_inference_steps']} steps · guidance "
               f"{recipe['guidance_scale']} · binding {recipe['binding_strength']} · "
               f"{people} posed people · subjects: {names}  \n_{recipe['engine']}_")
    return caption, recipe, gr.update(visible=True, value=item["path"])


def load_recipe_file(path: str | None) -> Recipe:
    if not path:
        raise gr.Error("Drop a PNG saved by the studio to restore its recipe.")
    try:
        return read_recipe(path)
    except RecipeError as err:
        raise gr.Error(str(err)) from err
