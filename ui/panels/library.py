"""The pose library browser: filter the indexed library by category, people count, view and
prompt words, read each entry's full source prompt, page through, and pick a skeleton onto the
canvas without guessing a prompt that retrieves it.

The data comes from ``pose_db.index.browse.LibraryBrowser`` over the retriever's index, read
when the panel is first opened. The panel fills its gallery and ``scenes`` exactly as the
retrieval gallery does (OpenPose dicts in gallery order), so ``ui.events`` wires one pick
(binding, canvas fit, the "replaced your edit" notice) to both.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from pose_db.index.browse import BrowsePage, BrowseQuery, LibraryBrowser
from pose_db.scene.model import PoseError
from pose_db.scene.openpose_io import write_openpose

from ..config import Limits
from .retrieval import preview_image

ANY = "Any"
CLOSED_NOTE = "Open to browse the pose library."
NO_INDEX = ("The pose library browser needs the pose index, which this studio was started "
            "without; run `python app.py` (it builds the index on first start).")


@dataclass
class LibraryPanel:
    box: gr.Accordion
    category: gr.Dropdown
    people: gr.Dropdown
    view: gr.Dropdown
    text: gr.Textbox
    gallery: gr.Gallery
    prompts: gr.HTML   # the page's full source prompts, in gallery order
    pager: gr.Markdown
    prev: gr.Button
    next: gr.Button
    page: gr.State     # the page shown (1-based)
    scenes: gr.State   # OpenPose dicts of the shown entries, gallery order (as the retrieval's)


def library_browser(retriever) -> LibraryBrowser | None:
    """A browser over the retriever's index, or None when it has none that can list entries."""
    index = getattr(retriever, "index", None)
    return LibraryBrowser(index) if index is not None and hasattr(index, "records") else None


def build_library_panel() -> LibraryPanel:
    with gr.Accordion("Browse the pose library", open=False, elem_id="library-box") as box:
        with gr.Row(equal_height=True, elem_classes=["library-filters"]):
            category = gr.Dropdown([ANY], value=ANY, label="Category", elem_id="library-category",
                                   min_width=140)
            people = gr.Dropdown([(ANY, 0)], value=0, label="People", elem_id="library-people",
                                 min_width=110)
            view = gr.Dropdown([ANY], value=ANY, label="View", elem_id="library-view", min_width=130)
            text = gr.Textbox(label="Words in the prompt", placeholder="e.g. hands", max_lines=1,
                              max_length=80, elem_id="library-text", min_width=150)
        pager = gr.Markdown(CLOSED_NOTE, elem_id="library-pager", elem_classes=["panel-hint"])
        gallery = gr.Gallery(label="Library skeletons — click one to put it on the canvas",
                             show_label=False, columns=4, height="auto", allow_preview=False,
                             object_fit="contain", format="png", buttons=[], interactive=False,
                             elem_id="library-gallery")
        prompts = gr.HTML("", elem_id="library-prompts")
        with gr.Row():
            prev = gr.Button("◀ Previous page", size="sm", elem_id="library-prev", interactive=False)
            next_ = gr.Button("Next page ▶", size="sm", elem_id="library-next", interactive=False)
    return LibraryPanel(box, category, people, view, text, gallery, prompts, pager, prev, next_,
                        gr.State(1), gr.State([]))


def caption(entry) -> str:
    people = "1 person" if entry.people == 1 else f"{entry.people} people"
    return f"{entry.action_name} · {people} · {entry.view.replace('_', ' ')}"


def prompt_list(page: BrowsePage, first: int) -> str:
    """The page's entries with their full prompts, numbered as in the gallery."""
    if not page.entries:
        return ""
    rows = "".join(
        f"<li value='{first + i}'><b>{html.escape(caption(e))}</b> — “{html.escape(e.prompt)}” "
        f"<small>{html.escape(e.category)} · {html.escape(e.id)}</small></li>"
        for i, e in enumerate(page.entries))
    return f"<ol class='library-prompts'>{rows}</ol>"


def wire_library(panel: LibraryPanel, browser: LibraryBrowser | None, limits: Limits,
                 private: dict) -> None:
    """The panel's own events: open (load the filters), filter, page. Picking is ``ui.events``'."""

    def show(category, people, view, text, page):
        if browser is None:
            return [gr.skip()] * 2 + [NO_INDEX] + [gr.skip()] * 4
        query = BrowseQuery(None if category in (None, ANY) else category, people or None,
                            None if view in (None, ANY) else view, text or "", int(page or 1),
                            limits.library_page_size)
        try:
            result = browser.browse(query)
        except PoseError as err:
            raise gr.Error(str(err)) from err
        first = (result.page - 1) * query.page_size + 1
        items = [(preview_image(e.scene), f"{first + i}. {caption(e)}") for i, e in enumerate(result.entries)]
        if result.total:
            pager = (f"Page {result.page} of {result.pages} · {result.total} "
                     f"{'entry' if result.total == 1 else 'entries'} · click a skeleton to put it on the canvas.")
        else:
            pager = "No library entry matches these filters; set one back to “Any”."
        return (gr.update(value=items, selected_index=None), prompt_list(result, first), pager,
                gr.update(interactive=result.page > 1), gr.update(interactive=result.page < result.pages),
                result.page, [write_openpose(e.scene) for e in result.entries])

    outputs = [panel.gallery, panel.prompts, panel.pager, panel.prev, panel.next, panel.page, panel.scenes]
    filters = [panel.category, panel.people, panel.view, panel.text]

    def opened(*values):
        if browser is None:
            return [gr.skip()] * 3 + list(show(*values, 1))
        try:
            facets = browser.facets()
        except PoseError as err:
            raise gr.Error(str(err)) from err
        choices = [
            gr.update(choices=[ANY, *facets.categories]),
            gr.update(choices=[(ANY, 0)] + [("1 person" if n == 1 else f"{n} people", n) for n in facets.people]),
            gr.update(choices=[ANY, *facets.views]),
        ]
        return choices + list(show(*values, 1))

    panel.box.expand(opened, filters, [panel.category, panel.people, panel.view, *outputs], **private)
    for component in (panel.category, panel.people, panel.view):
        component.input(lambda *v: show(*v, 1), filters, outputs, **private)
    panel.text.submit(lambda *v: show(*v, 1), filters, outputs, **private)
    panel.prev.click(lambda *v: show(*v[:-1], v[-1] - 1), [*filters, panel.page], outputs, **private)
    panel.next.click(lambda *v: show(*v[:-1], v[-1] + 1), [*filters, panel.page], outputs, **private)
