"""The Examples box: ready-made subjects and prompts (data from ``assets/examples``).

Clicking an example fills the prompt and the first two subject cards, so the box is built with
those components handed in; ``gr.Examples`` wires its own click.
"""

from __future__ import annotations

import gradio as gr

from pose_db.scene import MAX_SUBJECTS

from ..config import StudioConfig
from .subjects import SubjectsPanel, card_updates


def build_examples(subjects: SubjectsPanel, prompt: gr.Textbox, people: gr.Dropdown,
                   config: StudioConfig) -> None:
    """Example subjects and prompts; two cards each at most. Nothing without examples."""
    if not config.examples:
        return
    n = MAX_SUBJECTS
    first, second = subjects.cards[:2]
    inputs = [prompt, people,
              first.image, first.name, second.image, second.name]
    rows = []
    for example in config.examples:
        pairs = list(example.subjects[:2]) + [(None, "")] * (2 - len(example.subjects[:2]))
        rows.append([example.prompt, example.people or 0, *pairs[0], *pairs[1]])

    def show_cards(prompt, people, image0, name0, image1, name1):
        # An example is a fresh start: its subjects, in fresh cards.
        count = 2 if image1 else 1
        return card_updates(count, [image0, image1] + [None] * (n - 2),
                            [name0, name1] + [""] * (n - 2), [None] * n)

    with gr.Accordion("Examples — subjects and a prompt to start from", open=False,
                      elem_id="examples-box"):
        # Labels, not the table of every input: the table (prompt, images, names) overflowed
        # the panel at 1280 px and on phones.
        labels = [example.prompt for example in config.examples]
        gr.Examples(rows, inputs, outputs=subjects.card_outputs, fn=show_cards,
                    example_labels=labels,
                    run_on_click=True, cache_examples=False, examples_per_page=4,
                    label="Click one to load its subjects and prompt",
                    elem_id="examples", api_visibility="private")
