"""The Subjects panel: 1 to ``MAX_SUBJECTS`` reference cards (image, short name, colour).

Cards are created once (``MAX_SUBJECTS`` of them) and shown or hidden, so every card keeps a
fixed position and a person's ``subject`` index always means "card k". Removing a card shifts
the later cards up, and the studio shifts the pose's assignments with them (a cross-panel
event, in ``ui.events``). How the cards become engine subjects is ``ui.subjects``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pose_db.scene import MAX_SUBJECTS

from ..config import Limits
from ..images import ImageError, load_image
from ..subjects import default_colour, default_name, free_colour


def check_upload(payload, k: int):
    """The upload of card ``k`` kept, or refused with a sentence and the card left empty.

    Wired with ``preprocess=False``: Gradio's own preprocessing opens the file with PIL and
    raises on a damaged one (a raw "Could not preprocess" error); the raw upload's path is
    judged here instead, by the same decoder Generate uses. Removing the bad file at once keeps
    it from breaking every later event that reads the cards (Generate, ×, Add)."""
    path = payload.get("path") if isinstance(payload, dict) else payload
    if not path:
        return gr.skip()
    try:
        load_image(path, what=f"image for subject {k + 1}")
    except ImageError as err:
        gr.Warning(f"{err} Nothing else was changed.", title="Image refused")
        return None
    return gr.skip()


@dataclass
class SubjectCard:
    box: gr.Group
    image: gr.Image
    name: gr.Textbox
    colour: gr.ColorPicker
    remove: gr.Button


@dataclass
class CardValues:
    """The cards' values as an event receives them, one list entry per card."""

    count: int
    images: list
    names: list
    colours: list

    def slots(self) -> tuple[list, list]:
        """Image and name of each card, ``None``/``""`` for the hidden ones: what
        ``ui.subjects.read_subjects`` (and ``prepare_request``) take."""
        shown = range(min(int(self.count or 0), len(self.images)))
        return ([self.images[k] if k in shown else None for k in range(len(self.images))],
                [self.names[k] if k in shown else "" for k in range(len(self.names))])


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
    def inputs(self) -> set:
        """Every card value, as a set: the event receives them keyed by component, and
        :meth:`read` turns that into :class:`CardValues`."""
        return {self.count, *self.images, *self.names, *self.colours}

    def read(self, values: dict) -> CardValues:
        """The cards' values out of an event's ``{component: value}`` dict."""
        return CardValues(count=values[self.count],
                          images=[values[c] for c in self.images],
                          names=[values[c] for c in self.names],
                          colours=[values[c] for c in self.colours])

    @property
    def card_outputs(self) -> list:
        """Everything :func:`card_updates` updates, in its order."""
        return [self.count, *[c.box for c in self.cards], *self.images, *self.names,
                *self.colours, self.add, self.hint]


def build_subjects_panel(limits: Limits, initial: int = 1) -> SubjectsPanel:
    """Lay out the cards (call inside a Blocks context) and wire add/remove."""
    cards = []
    with gr.Column(elem_classes=["subject-cards"]):
        for k in range(MAX_SUBJECTS):
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
                                      min_width=60, container=False,
                                      elem_id=f"subject-name-{k}",
                                      elem_classes=["subject-name"])
                    colour = gr.ColorPicker(value=default_colour(k), label=f"Colour {k + 1}",
                                            show_label=False,
                                            container=False, scale=0, min_width=44,
                                            elem_classes=["subject-colour"])
                    remove = gr.Button("×", size="sm", variant="secondary", scale=0,
                                       min_width=36, elem_id=f"subject-remove-{k}",
                                       elem_classes=["subject-remove"])
            cards.append(SubjectCard(box, image, name, colour, remove))
    hint = gr.Markdown(_hint(initial), elem_classes=["panel-hint"])
    add = gr.Button("+ Add subject", size="sm", visible=initial < MAX_SUBJECTS,
                    elem_id="add-subject")
    panel = SubjectsPanel(cards, gr.State(initial), add, hint)
    _wire(panel)
    return panel


def _hint(count: int) -> str:
    if count == 0:
        return "No subjects: the prompt alone decides who appears."
    return f"{count} of {MAX_SUBJECTS} subjects. Name them as the prompt does (e.g. “Mia”)."


def _wire(panel: SubjectsPanel) -> None:
    """The panel's own events: add a card, remove one."""
    def add_card(values):
        cards = panel.read(values)
        return card_updates(min(cards.count + 1, MAX_SUBJECTS), cards.images, cards.names,
                            cards.colours)

    panel.add.click(add_card, panel.inputs, panel.card_outputs, queue=False,
                    api_visibility="private")
    for k, card in enumerate(panel.cards):
        # A damaged file is refused right here, before any other event can read it.
        # Queued (its own cheap slot, not the GPU's): only a queued event can show the toast.
        card.image.upload(lambda payload, k=k: check_upload(payload, k), card.image,
                          card.image, preprocess=False, concurrency_limit=None,
                          api_visibility="private")
    for card in panel.cards:
        card.colour.change(None, panel.colours, None, js=STRIPE_JS, queue=False,
                           api_visibility="private")
    # Removing a card also moves the pose's bindings: one cross-panel event, in ``ui.events``.


# Browser-side: each card's stripe wears its colour picker's value (``--subject-colour``), so
# stripe, swatch and canvas halo agree wherever a subject's card sits. A style sheet, not
# inline styles: a hidden card is not in the page, and is drawn afresh when shown.
STRIPE_JS = ("(...colours) => { let sheet = document.getElementById('subject-stripes'); "
             "if (!sheet) { sheet = document.createElement('style'); sheet.id = 'subject-stripes'; "
             "document.head.append(sheet); } "
             "sheet.textContent = colours.map((c, k) => c && CSS.supports('color', c) ? "
             "`.subject-card.subject-${k} { --subject-colour: ${c} !important; } "
             # The assign dropdowns list "Unassigned" first, then subject k as option k + 2.
             ".assign-person [data-testid=dropdown-option]:nth-child(${k + 2}) "
             "{ box-shadow: inset 6px 0 0 ${c} !important; }` : '').join('\\n'); "
             "return []; }")


def remove_card(cards: CardValues, k: int) -> list:
    """:func:`card_updates` after card ``k`` is removed: the later cards move up, each with its
    own image, name and colour (a subject keeps its colour wherever its card sits)."""
    images, names, colours = list(cards.images), list(cards.names), list(cards.colours)
    for column in (images, names, colours):
        del column[k]
    images.append(None)
    names.append("")
    colours.append(None)
    return card_updates(max(int(cards.count or 0) - 1, 0), images, names, colours)


def card_updates(count: int, images: list, names: list, colours: list) -> list:
    """Values for :attr:`SubjectsPanel.card_outputs`: ``count`` cards shown, the rest reset."""
    n = MAX_SUBJECTS
    images, names = list(images), list(names)
    colours = [c or default_colour(k) for k, c in enumerate(colours)]
    # Hidden cards are reset so that re-adding one starts empty, in a colour no shown card
    # wears (after a removal, the default colour of a position may be taken).
    for k in range(count, n):
        images[k], names[k] = None, ""
        colours[k] = free_colour(colours[:k])
    return [count, *[gr.update(visible=k < count) for k in range(n)], *images, *names, *colours,
            gr.update(visible=count < n), _hint(count)]
