"""The Subjects panel: 1–4 reference cards (image, short name, colour) and how they are read.

Cards are created once (``max_subjects`` of them) and shown or hidden, so every card keeps a
fixed position and a person's ``subject`` index always means "card k". Removing a card shifts
the later cards up, and the studio shifts the pose's assignments with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from PIL import Image

from pose_db.skeleton import SUBJECT_COLORS

from .config import Limits
from .images import ImageError, load_image


@dataclass
class Subject:
    """One reference subject as the engine receives it."""

    image: Image.Image
    name: str
    colour: str


@dataclass
class SubjectCard:
    box: gr.Group
    image: gr.Image
    name: gr.Textbox
    colour: gr.ColorPicker
    remove: gr.Button


@dataclass
class SubjectsPanel:
    cards: list[SubjectCard]
    count: gr.State
    add: gr.Button
    hint: gr.Markdown

    @property
    def images(self) -> list[gr.Image]:
        return [c.image for c in self.cards]

    @property
    def names(self) -> list[gr.Textbox]:
        return [c.name for c in self.cards]

    @property
    def colours(self) -> list[gr.ColorPicker]:
        return [c.colour for c in self.cards]

    @property
    def inputs(self) -> list:
        """``[count, *images, *names, *colours]``: what ``read_cards`` takes, in order."""
        return [self.count, *self.images, *self.names, *self.colours]

    @property
    def card_outputs(self) -> list:
        """Everything ``_remove_card``/``_add_card`` update, in order."""
        return [self.count, *[c.box for c in self.cards], *self.images, *self.names,
                *self.colours, self.add, self.hint]


def default_name(k: int) -> str:
    return f"Subject {k + 1}"


def default_colour(k: int) -> str:
    return SUBJECT_COLORS[k % len(SUBJECT_COLORS)]


def build_subjects_panel(limits: Limits, initial: int = 1) -> SubjectsPanel:
    """Lay out the cards (call inside a Blocks context) and wire add/remove."""
    cards = []
    with gr.Column(elem_classes=["subject-cards"]):
        for k in range(limits.max_subjects):
            with gr.Group(visible=k < initial, elem_id=f"subject-card-{k}",
                          elem_classes=["subject-card", f"subject-{k}"]) as box:
                image = gr.Image(label=f"Subject {k + 1}", type="filepath", image_mode=None,
                                 sources=["upload", "clipboard"], height=150,
                                 buttons=[], elem_id=f"subject-image-{k}",
                                 elem_classes=["subject-image"])
                with gr.Row(elem_classes=["subject-meta"]):
                    # Labels stay hidden but must be distinct: the examples table keys on them.
                    name = gr.Textbox(label=f"Name {k + 1}", placeholder=default_name(k),
                                      show_label=False,
                                      max_length=limits.max_subject_name_chars, scale=3,
                                      container=False, elem_id=f"subject-name-{k}",
                                      elem_classes=["subject-name"])
                    colour = gr.ColorPicker(value=default_colour(k), label=f"Colour {k + 1}",
                                            show_label=False,
                                            container=False, scale=0, min_width=44,
                                            elem_classes=["subject-colour"])
                    remove = gr.Button("×", size="sm", variant="secondary", scale=0,
                                       min_width=36, elem_id=f"subject-remove-{k}",
                                       elem_classes=["subject-remove"])
            cards.append(SubjectCard(box, image, name, colour, remove))
    hint = gr.Markdown(_hint(initial, limits.max_subjects), elem_classes=["panel-hint"])
    add = gr.Button("+ Add subject", size="sm", visible=initial < limits.max_subjects,
                    elem_id="add-subject")
    panel = SubjectsPanel(cards, gr.State(initial), add, hint)
    _wire(panel, limits.max_subjects)
    return panel


def _hint(count: int, max_subjects: int) -> str:
    if count == 0:
        return "No subjects: the prompt alone decides who appears."
    return f"{count} of {max_subjects} subjects. Name them as the prompt does (e.g. “Mia”)."


def _wire(panel: SubjectsPanel, max_subjects: int) -> None:
    n = max_subjects

    def add_card(count, *values):
        images, names, colours = values[:n], values[n:2 * n], values[2 * n:]
        return card_updates(min(count + 1, n), list(images), list(names), list(colours), n)

    panel.add.click(add_card, panel.inputs, panel.card_outputs, queue=False,
                    api_visibility="private")
    for k, card in enumerate(panel.cards):
        def remove_card(count, *values, k=k):
            images, names, colours = (list(values[:n]), list(values[n:2 * n]),
                                      list(values[2 * n:]))
            for column in (images, names, colours):
                del column[k]
            images.append(None)
            names.append("")
            colours.append(None)
            return card_updates(max(count - 1, 0), images, names, colours, n)

        card.remove.click(remove_card, panel.inputs, panel.card_outputs, queue=False,
                          api_visibility="private")


def card_updates(count: int, images: list, names: list, colours: list, n: int) -> list:
    colours = [c or default_colour(k) for k, c in enumerate(colours)]
    # Hidden cards are reset so that re-adding one starts empty, in its own default colour.
    for k in range(count, n):
        images[k], names[k], colours[k] = None, "", default_colour(k)
    return [count, *[gr.update(visible=k < count) for k in range(n)], *images, *names, *colours,
            gr.update(visible=count < n), _hint(count, n)]


def read_cards(count: int, images: list, names: list, colours: list,
               limits: Limits) -> tuple[list[Subject], dict[int, int]]:
    """The subjects to generate with, and ``card index -> subject index`` for the pose.

    Cards without an image are left out (with a notice when they were named), and the later
    cards move up, so the mapping tells the pose which subject each assigned card became.
    Raises ``gr.Error`` for an unreadable image or duplicate names.
    """
    subjects: list[Subject] = []
    mapping: dict[int, int] = {}
    for k in range(min(int(count or 0), limits.max_subjects)):
        name = (names[k] or "").strip()[: limits.max_subject_name_chars] or default_name(k)
        if images[k] is None:
            if (names[k] or "").strip():
                gr.Warning(f"{name} has no image and is left out. Upload one to use it.")
            continue
        try:
            image = load_image(images[k], what=f"image of {name}")
        except ImageError as err:
            raise gr.Error(str(err)) from err
        mapping[k] = len(subjects)
        subjects.append(Subject(image=image, name=name, colour=colours[k] or default_colour(k)))
    return check_names(subjects), mapping


def check_names(subjects: list[Subject]) -> list[Subject]:
    """``subjects`` unchanged, or ``gr.Error`` if two share a name (the prompt names them)."""
    seen: set[str] = set()
    for subject in subjects:
        if subject.name.lower() in seen:
            raise gr.Error(f"Two subjects are named “{subject.name}”. Give each a different "
                           f"name so the prompt can tell them apart.")
        seen.add(subject.name.lower())
    return subjects


def subject_labels(count: int, names: list, max_subjects: int) -> list[str]:
    """Display names of the visible cards (placeholders for unnamed ones)."""
    return [(names[k] or "").strip() or default_name(k)
            for k in range(min(int(count or 0), max_subjects))]
