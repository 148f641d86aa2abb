"""OpenPose JSON in and out, as ControlNet and its pose editors read and write it.

Written: ``{"canvas_width", "canvas_height", "people": [{"pose_keypoints_2d": [x, y, c] * 18}]}``
in pixels, ``c = 1`` for a visible point and ``[0, 0, 0]`` for a hidden one, plus our optional
per-person ``"subject"`` (other tools ignore it). Read: the same, pixel or normalised ([0, 1])
coordinates, COCO-17 keypoint lists, a one-frame list as some editors export, and the hand/face
extensions. Hands (``hand_left_keypoints_2d`` / ``hand_right_keypoints_2d``) are 21 ``[x, y, c]``
each, checked like body points and written with hidden points as ``[0, 0, 0]``; an all-zero hand
(OpenPose's "not detected") reads as no hand. Anything malformed raises :class:`PoseError` with a sentence that says what to fix;
nothing else ever escapes the reader.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .model import (
    CANVAS_MAX,
    CANVAS_MIN,
    MAX_PEOPLE,
    MAX_SUBJECTS,
    Person,
    PoseError,
    PoseScene,
)
from .skeleton import COCO17_NAMES, HAND_KEYS, KEYPOINT_INDEX, NUM_HAND_KEYPOINTS, NUM_KEYPOINTS

MAX_JSON_BYTES = 5_000_000
MAX_NESTING = 12  # deeper structures are junk, not pose data
EXTRA_KEYS = ("hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d")
_EXTRA_MAX_POINTS = 200
_DEFAULT_CANVAS = 512
# Visible points may leave the frame a little (a raised hand cut off), never absurdly far.
_COORD_SLACK = 2.0


def read_openpose(data: Any) -> PoseScene:
    """Read OpenPose JSON from a dict, a one-frame list, JSON text or bytes, or a ``Path``.

    Coordinates are taken as normalised when every visible value lies in [0, 1]. A file without
    ``canvas_width``/``canvas_height`` (the CMU OpenPose tool writes none) gets the smallest
    canvas of whole 64-pixel steps, at least 512, that holds its points.
    """
    if isinstance(data, os.PathLike):
        return load_openpose(data)
    try:
        return _parse(_load(data))
    except PoseError:
        raise
    except (RecursionError, MemoryError) as exc:  # defensive: junk nested beyond our depth check
        raise PoseError("The pose JSON is nested too deeply to be OpenPose data.") from exc


def load_openpose(path: str | os.PathLike) -> PoseScene:
    """Read an OpenPose JSON file (a regular file of at most ``MAX_JSON_BYTES``)."""
    return read_openpose(read_pose_file(path))


def read_pose_file(path: str | os.PathLike) -> bytes:
    """The bytes of a pose file: regular files only, read up to ``MAX_JSON_BYTES`` and no further."""
    from .files import read_regular_file

    return read_regular_file(path, limit=MAX_JSON_BYTES, what="pose file", expected="an OpenPose .json file")


def write_openpose(scene: PoseScene) -> dict:
    """The scene as ControlNet-compatible OpenPose JSON (a dict ready for ``json.dumps``)."""
    people = []
    for person in scene.people:
        flat: list[float] = []
        for (x, y), vis in zip(person.xy.tolist(), person.visible.tolist()):
            flat.extend((x, y, 1.0) if vis else (0.0, 0.0, 0.0))
        entry: dict[str, Any] = {"pose_keypoints_2d": flat}
        for key, arr in person.extras.items():
            if key in HAND_KEYS:  # like body points: hidden ones as [0, 0, 0]
                arr = np.where(arr[:, 2:] > 0, arr, 0.0)
            entry[key] = arr.reshape(-1).tolist()
        if person.subject is not None:
            entry["subject"] = int(person.subject)
        people.append(entry)
    return {"canvas_width": scene.width, "canvas_height": scene.height, "people": people}


def dumps_openpose(scene: PoseScene, indent: int | None = None) -> str:
    return json.dumps(write_openpose(scene), indent=indent)


def person_from_coco17(flat: list[float], subject: int | None = None) -> Person:
    """A BODY-18 person from a COCO-17 ``[x, y, v] * 17`` list (pixels; v > 0 means labelled).

    The neck, which COCO lacks, is the mean of the shoulders when both are labelled.
    """
    values = _numbers(flat, "COCO keypoints")
    if len(values) != 17 * 3:
        raise PoseError(f"COCO keypoints need 17 x 3 = 51 numbers, got {len(values)}.")
    xy = np.zeros((NUM_KEYPOINTS, 2))
    visible = np.zeros(NUM_KEYPOINTS, dtype=bool)
    for k, name in enumerate(COCO17_NAMES):
        x, y, v = values[3 * k: 3 * k + 3]
        if v > 0:
            i = KEYPOINT_INDEX[name]
            xy[i], visible[i] = (x, y), True
    rs, ls = KEYPOINT_INDEX["r_shoulder"], KEYPOINT_INDEX["l_shoulder"]
    neck = KEYPOINT_INDEX["neck"]
    if visible[rs] and visible[ls]:
        xy[neck], visible[neck] = (xy[rs] + xy[ls]) / 2, True
    return Person(xy=xy, visible=visible, subject=subject)


# ---- parsing ----------------------------------------------------------------------------------


def _load(data: Any) -> Any:
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_JSON_BYTES:
            raise PoseError(f"Pose JSON is {len(data)} bytes; OpenPose JSON is far smaller than {MAX_JSON_BYTES}.")
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PoseError("Pose JSON must be UTF-8 text.") from exc
    if isinstance(data, str):
        text = data.strip()
        if not text.startswith(("{", "[")):
            raise PoseError("Pose data must be OpenPose JSON: an object with a \"people\" list.")
        if len(text) > MAX_JSON_BYTES:
            raise PoseError(f"Pose JSON is {len(text)} characters; OpenPose JSON is far smaller than {MAX_JSON_BYTES}.")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PoseError(f"Pose JSON does not parse: {exc}.") from exc
    _check_depth(data)
    return data


def _check_depth(obj: Any) -> None:
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise PoseError(f"Pose JSON is nested more than {MAX_NESTING} levels deep; this is not OpenPose data.")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)


def _parse(data: Any) -> PoseScene:
    if isinstance(data, list):
        if len(data) != 1:
            raise PoseError(f"Expected one OpenPose frame, got a list of {len(data)}; export a single frame.")
        data = data[0]
    if not isinstance(data, dict):
        raise PoseError("Pose data must be a JSON object with a \"people\" list.")
    people_raw = data.get("people")
    if not isinstance(people_raw, list):
        raise PoseError("Pose JSON needs a \"people\" list (it may be empty).")
    if len(people_raw) > MAX_PEOPLE:
        raise PoseError(f"A scene holds at most {MAX_PEOPLE} people; this one has {len(people_raw)}.")
    raw = [_raw_person(p, n) for n, p in enumerate(people_raw)]

    width, height = _canvas_size(data, raw)
    all_vis = np.concatenate([r["kp"][r["kp"][:, 2] > 0, :2].ravel() for r in raw] or [np.zeros(0)])
    normalised = len(all_vis) > 0 and bool(((all_vis >= 0) & (all_vis <= 1)).all())
    scale = np.array([width, height], dtype=np.float64) if normalised else np.ones(2)

    people = []
    for n, r in enumerate(raw):
        kp = r["kp"]
        visible = kp[:, 2] > 0
        xy = np.where(visible[:, None], kp[:, :2] * scale, 0.0)
        _check_in_range(xy[visible], width, height, f"person {n + 1}")
        extras = {}
        for key, arr in r["extras"].items():
            arr = arr.copy()
            arr[:, :2] *= scale
            if key in HAND_KEYS:
                _check_in_range(arr[arr[:, 2] > 0, :2], width, height, f"person {n + 1} {key}")
            extras[key] = arr
        people.append(Person(xy=xy, visible=visible, subject=r["subject"], extras=extras))
    return PoseScene(width=width, height=height, people=people)


def _raw_person(p: Any, n: int) -> dict:
    where = f"person {n + 1}"
    if not isinstance(p, dict):
        raise PoseError(f"{where}: each person must be an object with \"pose_keypoints_2d\".")
    values = _numbers(p.get("pose_keypoints_2d"), f"{where} pose_keypoints_2d")
    if len(values) == NUM_KEYPOINTS * 3:
        kp = np.asarray(values, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    elif len(values) == 17 * 3:
        coco = person_from_coco17(values)
        kp = np.column_stack([coco.xy, coco.visible.astype(np.float64)])
    else:
        raise PoseError(
            f"{where}: pose_keypoints_2d needs 18 x 3 = 54 numbers (BODY-18) or 51 (COCO-17), got {len(values)}."
        )
    if (kp[:, 2] < 0).any():
        raise PoseError(f"{where}: keypoint confidences must be 0 (missing) or positive.")
    if not (kp[:, 2] > 0).any():
        raise PoseError(f"{where} has no visible keypoint; remove the person or give its keypoints.")
    subject = p.get("subject")
    if subject is not None:
        if isinstance(subject, bool) or not isinstance(subject, (int, float)) or subject != int(subject) \
                or not 0 <= subject < MAX_SUBJECTS:
            raise PoseError(f"{where}: \"subject\" must be a whole number from 0 to {MAX_SUBJECTS - 1}, or null.")
        subject = int(subject)
    extras = {}
    for key in EXTRA_KEYS:
        if p.get(key) in (None, []):
            continue
        vals = _numbers(p[key], f"{where} {key}")
        if len(vals) % 3 or len(vals) > 3 * _EXTRA_MAX_POINTS:
            raise PoseError(f"{where}: {key} must be [x, y, c] triples, got {len(vals)} numbers.")
        arr = np.asarray(vals, dtype=np.float64).reshape(-1, 3)
        if key in HAND_KEYS:
            if len(arr) != NUM_HAND_KEYPOINTS:
                raise PoseError(f"{where}: {key} needs {NUM_HAND_KEYPOINTS} x 3 = {NUM_HAND_KEYPOINTS * 3} numbers "
                                f"(OpenPose's hand), got {len(vals)}.")
            if (arr[:, 2] < 0).any():
                raise PoseError(f"{where}: {key} confidences must be 0 (missing) or positive.")
            if not (arr[:, 2] > 0).any():
                continue  # OpenPose writes an undetected hand as zeros: no hand
        extras[key] = arr
    return {"kp": kp, "subject": subject, "extras": extras}


def _numbers(values: Any, where: str) -> list[float]:
    if not isinstance(values, (list, tuple)):
        raise PoseError(f"{where} must be a list of numbers.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PoseError(f"{where} must hold only numbers; found {type(v).__name__} {str(v)[:20]!r}.")
        v = float(v)
        if not math.isfinite(v):
            raise PoseError(f"{where} holds {v}; every coordinate must be a finite number.")
        out.append(v)
    return out


def _canvas_size(data: dict, raw: list[dict]) -> tuple[int, int]:
    w, h = data.get("canvas_width"), data.get("canvas_height")
    if w is None and h is None:
        pts = [r["kp"][r["kp"][:, 2] > 0, :2] for r in raw]
        pts = np.concatenate(pts) if pts else np.zeros((0, 2))
        if len(pts) == 0 or pts.max() <= 1:
            return _DEFAULT_CANVAS, _DEFAULT_CANVAS
        size = [max(_DEFAULT_CANVAS, 64 * math.ceil((float(pts[:, k].max()) + 1) / 64)) for k in (0, 1)]
        if max(size) > CANVAS_MAX:
            raise PoseError(f"Keypoints reach {int(pts.max())} px, beyond the {CANVAS_MAX} px canvas limit.")
        return size[0], size[1]
    sizes = []
    for name, v in (("canvas_width", w), ("canvas_height", h)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
            raise PoseError(f"{name} must be a whole number of pixels, got {str(v)[:20]!r}.")
        if not CANVAS_MIN <= v <= CANVAS_MAX:
            raise PoseError(f"{name} must be {CANVAS_MIN} to {CANVAS_MAX} pixels, got {int(v)}.")
        sizes.append(int(v))
    return sizes[0], sizes[1]


def _check_in_range(xy: np.ndarray, width: int, height: int, where: str) -> None:
    lo = -_COORD_SLACK * np.array([width, height])
    hi = (1 + _COORD_SLACK) * np.array([width, height])
    if len(xy) and ((xy < lo) | (xy > hi)).any():
        raise PoseError(
            f"{where} has keypoints far outside the {width}x{height} canvas; check the canvas size or the coordinates."
        )
