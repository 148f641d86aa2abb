"""The skeleton editor on its own page, for trying it out and for its browser tests.

Run: ``python -m ui.pose_editor_demo [--port 7861]``. The JSON box under the canvas shows the
value Python receives on every committed edit (``change``), the counter the user edits
(``input``).
"""

from __future__ import annotations

import argparse
import json

import gradio as gr

from pose_db.scene.skeleton import SUBJECT_COLORS

from .pose_editor import PoseEditor


def build_demo(value: dict | None = None) -> gr.Blocks:
    """Blocks with the editor (``#pose-editor``), its value as seen by Python (``#pose-value``),
    a count of user edits (``#pose-inputs``) and a button that sets a pose from Python
    (``#pose-set``)."""
    with gr.Blocks(title="ASTRA skeleton editor") as demo:
        editor = PoseEditor(value=value, elem_id="pose-editor")
        seen = gr.Textbox(label="Value in Python (OpenPose JSON)", elem_id="pose-value", lines=3,
                          max_lines=8, interactive=False)
        inputs = gr.Number(0, label="User edits", elem_id="pose-inputs", precision=0)
        setter = gr.Button("Set a two-person pose from Python", elem_id="pose-set", size="sm")
        with gr.Row():
            names = [gr.Textbox(label=f"Subject {k + 1} name", elem_id=f"demo-name-{k}")
                     for k in range(2)]
            colours = [gr.ColorPicker(SUBJECT_COLORS[k], label=f"Subject {k + 1} colour",
                                      elem_id=f"demo-colour-{k}") for k in range(2)]
        editor.change(lambda pose: json.dumps(pose), editor, seen, queue=False)
        editor.input(lambda n: int(n or 0) + 1, inputs, inputs, queue=False)
        setter.click(_two_people, None, editor, queue=False)
        # Names and colours reach the canvas in the browser alone (no server round trip).
        for component in (*names, *colours):
            component.change(None, [*names, *colours], None, js=editor.subjects_js())
    return demo


def _two_people() -> dict:
    from .pose_editor import STANDING_TEMPLATE

    people = []
    for k, cx in enumerate((170, 340)):
        flat: list[float] = []
        for x, y in STANDING_TEMPLATE:
            flat.extend((cx + 330 * x, 270 + 330 * y, 1.0))
        people.append({"pose_keypoints_2d": flat, "subject": k})
    return {"canvas_width": 512, "canvas_height": 512, "people": people}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    build_demo().launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
