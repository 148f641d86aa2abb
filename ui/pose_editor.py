"""The skeleton canvas editor: a ``gr.HTML`` subclass whose value is the pose-scene OpenPose JSON.

Everything interactive happens in the browser (``ui/static/pose_editor/*.js``, vanilla JS, no
CDN, concatenated in ``JS_FILES`` order by :func:`editor_script`; the skeleton it draws comes
from ``pose_db.scene.skeleton`` through :func:`skeleton_config`): dragging joints,
moving/scaling/rotating people, undo/redo, zoom and pan, a background photo to trace,
import/export. The browser commits the value once per gesture (pointer-up), so
dragging three people never waits for the server. Python only validates what crosses the wire:
every value in and out goes through ``pose_db.scene.openpose_io``, and bad pose data becomes a
``gr.Error`` sentence instead of a traceback.

Value: ``{"canvas_width", "canvas_height", "people": [{"pose_keypoints_2d": [x, y, c] * 18,
"hand_left_keypoints_2d"?: [x, y, c] * 21, "hand_right_keypoints_2d"?: ..., "subject"?: 0-3}]}`` in pixels, hidden joints ``[0, 0, 0]`` — ControlNet-compatible; ``None``
for an empty editor.

Using it: drag a joint to move it; drag a limb to move its person, Shift+drag rotates, Alt+drag
scales (or the selection's corner and round handles, or the toolbar); Delete/Backspace removes
the selected person, Ctrl+D duplicates, M mirrors, H hides/shows the selected joint, N adds a
standing person, R/Shift+R rotate 15°, ]/[ scale, arrows nudge (Shift: 10 px), Tab cycles
people, Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y undo and redo, Ctrl+wheel or pinch zooms, dragging the
empty margin (or Space+drag) pans. The background photo stays in the browser.

Hands (OpenPose's 21 points, ``hand_left/right_keypoints_2d``): select a wrist, "Add hand" puts
an open hand there, "Edit hand" (E) zooms into hand mode where finger joints drag (Esc returns),
"Delete hand" removes it; dragging a wrist carries its hand, mirror swaps the hands, undo/redo,
JSON and the pose-map PNG include them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr

from pose_db.scene import skeleton
from pose_db.scene.model import CANVAS_MAX, CANVAS_MIN, MAX_PEOPLE, MAX_SUBJECTS, PoseError, PoseScene
from pose_db.scene.openpose_io import EXTRA_KEYS, read_openpose, write_openpose

STATIC = Path(__file__).with_name("static")
CSS_PATH = STATIC / "pose_editor.css"
# The editor's script, one file per concern, concatenated in this order into the one string
# ``js_on_load`` takes (no bundler, nothing fetched at run time). Every file but the last only
# declares functions and constants; they share one scope, take the editor state explicitly, and
# main.js, the last, builds that state and starts the editor.
JS_DIR = STATIC / "pose_editor"
JS_FILES: tuple[str, ...] = (
    "model.js",     # pose scene, OpenPose JSON in/out, undo/redo history, mirror/duplicate/...
    "view.js",      # scene <-> screen, drawing the canvas, the pose-map PNG
    "gestures.js",  # hit-testing, pointer/touch/pinch/wheel gestures
    "toolbar.js",   # buttons, file inputs, keyboard shortcuts, status line
    "main.js",      # the state object, edits and commits, the value from Python, start-up
)

# "Add person" drops this standing figure (BODY-18, facing the viewer, so the person's right is
# on the viewer's left), in units of its height; the browser scales it to the canvas.
STANDING_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.000, -0.465), (0.000, -0.355), (-0.123, -0.355), (-0.150, -0.165), (-0.165, 0.015),
    (0.123, -0.355), (0.150, -0.165), (0.165, 0.015), (-0.068, 0.030), (-0.077, 0.275),
    (-0.082, 0.510), (0.068, 0.030), (0.077, 0.275), (0.082, 0.510), (-0.027, -0.492),
    (0.027, -0.492), (-0.060, -0.478), (0.060, -0.478),
)

# "Add hand" puts this open hand (OpenPose's 21 hand points) at the selected wrist, in units of
# the hand's length: wrist at the origin, fingers along -y, thumb towards +x. The browser turns
# it along the forearm, thumb away from the body, about 0.75 forearms long.
OPEN_HAND_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.00, 0.00),
    (0.13, -0.10), (0.25, -0.22), (0.34, -0.33), (0.42, -0.44),      # thumb
    (0.11, -0.45), (0.14, -0.63), (0.16, -0.75), (0.18, -0.86),      # index
    (0.00, -0.47), (0.00, -0.67), (0.00, -0.80), (0.00, -0.93),      # middle
    (-0.10, -0.45), (-0.13, -0.62), (-0.15, -0.73), (-0.17, -0.84),  # ring
    (-0.19, -0.40), (-0.25, -0.52), (-0.28, -0.61), (-0.31, -0.69),  # little
)

# Fixed markup; the script builds the canvas into it. No ``${...}`` or ``{{...}}`` here: Gradio
# evaluates the template, and a constant template is never re-rendered under the script's feet.
HTML_TEMPLATE = """
<div class="pe-root" data-ready="0">
  <div class="pe-toolbar" role="toolbar" aria-label="Pose editor tools"></div>
  <div class="pe-stage" tabindex="0" role="application"
       aria-label="Skeleton canvas. Drag joints; arrows nudge; Delete removes the selected person.">
    <canvas class="pe-canvas"></canvas>
    <div class="pe-empty">No skeleton yet: retrieve one, import OpenPose JSON, or press “Add person”.</div>
  </div>
  <div class="pe-status" aria-live="polite"></div>
</div>
"""


@cache
def _asset(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def editor_script() -> str:
    """The editor's ``js_on_load``: the files of ``JS_FILES`` concatenated in order, each
    under a ``// ==== <name> ====`` line."""
    return "\n".join(f"// ==== {name} ====\n{_asset(JS_DIR / name)}" for name in JS_FILES)


def skeleton_config() -> dict:
    """What the browser knows of the pose model, all from ``pose_db.scene.skeleton`` (and
    ``openpose_io``'s extension keys): the JS repeats none of it."""
    index = skeleton.KEYPOINT_INDEX
    mirror_extras = {}
    for key in EXTRA_KEYS:                    # hand_left_... <-> hand_right_...
        for side, other in (("_left_", "_right_"), ("_right_", "_left_")):
            if side in key:
                mirror_extras[key] = key.replace(side, other)
    return {
        "names": list(skeleton.KEYPOINT_NAMES), "limbs": [list(l) for l in skeleton.LIMBS],
        "colors": [list(c) for c in skeleton.COLORS], "mirror": list(skeleton.MIRROR_INDEX),
        "extra_keys": list(EXTRA_KEYS), "mirror_extras": mirror_extras,
        # COCO-17 slot k -> BODY-18 index; the neck (COCO has none) is the shoulders' mean.
        "coco17": [index[name] for name in skeleton.COCO17_NAMES],
        "coco_neck": [index["neck"], index["r_shoulder"], index["l_shoulder"]],
        "subject_colors": list(skeleton.SUBJECT_COLORS),
        # Hands: which OpenPose key hangs from which wrist (and its elbow), drawn as draw_handpose.
        "hands": [{"key": key, "wrist": index[wrist], "elbow": index[elbow],
                   "label": key.split("_")[1] + " hand"} for key, (wrist, elbow) in skeleton.HAND_KEYS.items()],
        "hand_limbs": [list(l) for l in skeleton.HAND_LIMBS],
        "hand_colors": [[round(c) for c in rgb] for rgb in skeleton.HAND_EDGE_COLORS],
        "hand_joint_color": list(skeleton.HAND_JOINT_COLOR),
        "hand_template": [list(p) for p in OPEN_HAND_TEMPLATE],
        "hand_names": list(skeleton.HAND_KEYPOINT_NAMES),
    }


def normalise_pose(value: Any) -> dict | None:
    """``value`` (OpenPose dict, JSON text, ``PoseScene`` or ``None``) as canonical OpenPose JSON.

    Raises:
        PoseError: the data is not a readable pose scene (the message says what to fix).
    """
    if value is None or value == "" or value == {}:
        return None
    scene = value if isinstance(value, PoseScene) else read_openpose(value)
    return write_openpose(scene)


def _size_presets(sizes) -> list[dict]:
    if sizes is None:  # the studio's own presets (ui/presets.yaml), so canvas and output sizes agree
        from .config import Presets

        sizes = [(p.name, p.width, p.height) for p in Presets.load().sizes]
    out = []
    for label, width, height in sizes:
        if not (CANVAS_MIN <= width <= CANVAS_MAX and CANVAS_MIN <= height <= CANVAS_MAX):
            raise ValueError(f"Size preset {label!r} is {width}x{height}; sides must be "
                             f"{CANVAS_MIN} to {CANVAS_MAX} pixels.")
        out.append({"label": str(label), "width": int(width), "height": int(height)})
    return out


class PoseEditor(gr.HTML):
    """Skeleton canvas editor; its value is the pose scene as OpenPose JSON (a dict) or None.

    Events: ``change`` (any new value, from the user or from Python) and ``input`` (the user's
    own edits only), committed once per gesture.
    """

    def __init__(
        self,
        value: dict | str | PoseScene | None = None,
        *,
        label: str | None = "Skeleton editor",
        canvas_width: int = 512,
        canvas_height: int = 512,
        sizes: list[tuple[str, int, int]] | None = None,
        max_people: int = MAX_PEOPLE,
        elem_id: str | None = None,
        elem_classes: list[str] | str | None = None,
        visible: bool = True,
        render: bool = True,
        key: int | str | None = None,
        scale: int | None = None,
        min_width: int | None = None,
    ):
        """
        Args:
            value: the starting pose (OpenPose dict or JSON text, a ``PoseScene``) or None.
            label: accessible name of the editor (not shown).
            canvas_width, canvas_height: canvas of an empty editor, in pixels.
            sizes: ``(label, width, height)`` canvas presets; default: ``ui/presets.yaml``.
            max_people: "Add person" and "Duplicate" stop at this many people.
            elem_id, elem_classes, visible, render, key, scale, min_width: as for ``gr.HTML``.
        """
        for name, side in (("canvas_width", canvas_width), ("canvas_height", canvas_height)):
            if not CANVAS_MIN <= int(side) <= CANVAS_MAX:
                raise ValueError(f"{name} must be {CANVAS_MIN} to {CANVAS_MAX} pixels, got {side}.")
        if not 1 <= max_people <= MAX_PEOPLE:
            raise ValueError(f"max_people must be 1 to {MAX_PEOPLE}, got {max_people}.")
        config = {
            **skeleton_config(), "max_subjects": MAX_SUBJECTS,
            "template": [list(p) for p in STANDING_TEMPLATE], "max_people": int(max_people),
            "canvas_min": CANVAS_MIN, "canvas_max": CANVAS_MAX,
            "default_size": [int(canvas_width), int(canvas_height)],
            "sizes": _size_presets(sizes), "label": label or "Skeleton editor",
        }
        super().__init__(
            value=value,
            label=label,
            html_template=HTML_TEMPLATE,
            css_template=_asset(CSS_PATH),
            js_on_load=editor_script(),
            apply_default_css=False,
            show_label=False,
            container=False,
            elem_id=elem_id,
            elem_classes=elem_classes,
            visible=visible,
            render=render,
            key=key,
            scale=scale,
            min_width=min_width,
            editor_config=config,
        )

    def subjects_js(self) -> str:
        """Browser-side code that hands the Subjects panel's names and colours to the canvas
        (halos and badges), with no server round trip. Use it as
        ``event(None, [*names, *colours], None, js=editor.subjects_js())``: the first half of
        the inputs are names, the second half colours, subject k at position k in each."""
        selector = f"#{self.elem_id} .pe-root" if self.elem_id else ".pe-root"
        return ("(...values) => { const half = Math.floor(values.length / 2); "
                f"const root = document.querySelector({json.dumps(selector)}); "
                "const api = root && root.parentElement.poseEditor; "
                "if (api) api.setSubjects(values.slice(0, half), values.slice(half)); return []; }")

    # ---- what crosses the wire ----------------------------------------------------------------

    def preprocess(self, payload: Any) -> dict | None:
        """The browser's value, validated: OpenPose dict, or None for an empty editor."""
        try:
            return normalise_pose(payload)
        except PoseError as err:
            raise gr.Error(f"The pose on the canvas is invalid: {err} Undo the last edit or "
                           f"import a valid OpenPose JSON.") from err

    def postprocess(self, value: Any) -> dict | None:
        """A value from Python (dict, JSON text, ``PoseScene`` or None), validated for the canvas."""
        try:
            return normalise_pose(value)
        except PoseError as err:
            raise gr.Error(f"Cannot show this pose on the canvas: {err}") from err

    def api_info(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "OpenPose JSON: canvas_width, canvas_height, people[] with "
                           "pose_keypoints_2d (18 x [x, y, c]; hidden = [0, 0, 0]) and an "
                           "optional subject index",
        }

    def example_payload(self) -> Any:
        return _example()

    def example_value(self) -> Any:
        return _example()


def _example() -> dict:
    """One standing person on a 512 canvas (docs and API examples)."""
    flat: list[float] = []
    for x, y in STANDING_TEMPLATE:
        flat.extend((round(256 + 360 * x, 1), round(270 + 360 * y, 1), 1.0))
    return {"canvas_width": 512, "canvas_height": 512, "people": [{"pose_keypoints_2d": flat}]}
