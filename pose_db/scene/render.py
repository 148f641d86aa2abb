"""Pose maps: scenes drawn exactly as controlnet_aux's ``draw_bodypose`` draws them.

The engine conditions on this picture, so it must match what openpose ControlNets and ASTRA's
OpenPose extraction produce: black background, 17 limbs as filled ellipses at 0.6 brightness,
18 joints as filled circles, limb i and joint j in ``COLORS[i]``/``COLORS[j]``. With ``hands=True``
each person's hands follow, left then right, as ``draw_handpose`` draws them (openpose_full):
20 lines of width 2 coloured by hue, 21 blue joints of radius 4. Sizes are the reference's at a
512-pixel canvas and scale with the canvas's longer side. Only a pose ControlNet takes hands;
ASTRA's pose tokens are body-only, so the default leaves them out.

CLI: ``python -m pose_db.render IN.json OUT.png [--width W --height H] [--preview] [--hands]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from .model import CANVAS_MAX, CANVAS_MIN, Person, PoseError, PoseScene
from .skeleton import COLORS, HAND_EDGE_COLORS, HAND_JOINT_COLOR, HAND_KEYS, HAND_LIMBS, LIMBS, SUBJECT_COLORS
from .transforms import fit_scene

_REFERENCE_SIDE = 512
_STICK_HALF_WIDTH = 4
_JOINT_RADIUS = 4
_LIMB_BRIGHTNESS = 0.6
_HAND_LINE_WIDTH = 2
_HAND_JOINT_RADIUS = 4


def render_pose_map(scene: PoseScene, width: int | None = None, height: int | None = None, *,
                    hands: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB pose map. With ``width``/``height`` the scene is aspect-fitted first;
    ``hands`` also draws each person's hands (for a pose ControlNet, as openpose_full does)."""
    scene = _sized(scene, width, height)
    canvas = np.zeros((scene.height, scene.width, 3), dtype=np.uint8)
    unit = _unit(scene)
    for person in scene.people:
        _draw_person(canvas, person, unit, hands)
    return canvas


def render_preview(scene: PoseScene, width: int | None = None, height: int | None = None,
                   background: tuple[int, int, int] = (24, 24, 28)) -> np.ndarray:
    """A browsing picture: the pose map over a dark background, each assigned person haloed in
    its subject's colour (``SUBJECT_COLORS``), so "who stands where" is visible at a glance."""
    scene = _sized(scene, width, height)
    canvas = np.empty((scene.height, scene.width, 3), dtype=np.uint8)
    canvas[:] = background
    unit = _unit(scene)
    for person in scene.people:
        if person.subject is not None:
            colour = _hex_rgb(SUBJECT_COLORS[person.subject % len(SUBJECT_COLORS)])
            for a, b in LIMBS:
                if person.visible[a] and person.visible[b]:
                    cv2.line(canvas, _pt(person.xy[a]), _pt(person.xy[b]), colour,
                             thickness=max(1, round(4 * _STICK_HALF_WIDTH * unit)), lineType=cv2.LINE_AA)
    for person in scene.people:
        _draw_person(canvas, person, unit, hands=True)
    return canvas


def _draw_person(canvas: np.ndarray, person: Person, unit: float, hands: bool) -> None:
    half_width = max(1, round(_STICK_HALF_WIDTH * unit))
    radius = max(1, round(_JOINT_RADIUS * unit))
    xy, vis = person.xy, person.visible
    for (a, b), colour in zip(LIMBS, COLORS):
        if not (vis[a] and vis[b]):
            continue
        (xa, ya), (xb, yb) = xy[a], xy[b]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        polygon = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)),
                                   (int(length / 2), half_width), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(c * _LIMB_BRIGHTNESS) for c in colour])
    for j, colour in enumerate(COLORS):
        if vis[j]:
            cv2.circle(canvas, _pt(xy[j]), radius, colour, thickness=-1)
    if hands:
        for key in HAND_KEYS:  # left, then right, as the reference draws them
            if key in person.extras:
                _draw_hand(canvas, person.extras[key], unit)


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, unit: float) -> None:
    # As draw_handpose: pixel positions truncated, and a point on the top or left edge (x or y
    # of 0) is skipped, as the reference skips it.
    width = max(1, round(_HAND_LINE_WIDTH * unit))
    radius = max(1, round(_HAND_JOINT_RADIUS * unit))
    shown = [bool(c > 0) and int(x) > 0 and int(y) > 0 for x, y, c in hand.tolist()]
    for (a, b), colour in zip(HAND_LIMBS, HAND_EDGE_COLORS):
        if shown[a] and shown[b]:
            cv2.line(canvas, _pt(hand[a]), _pt(hand[b]), colour, thickness=width)
    for point, ok in zip(hand, shown):
        if ok:
            cv2.circle(canvas, _pt(point), radius, HAND_JOINT_COLOR, thickness=-1)


def _sized(scene: PoseScene, width: int | None, height: int | None) -> PoseScene:
    if width is None and height is None:
        return scene
    return fit_scene(scene, width or scene.width, height or scene.height)


def _unit(scene: PoseScene) -> float:
    return max(scene.width, scene.height) / _REFERENCE_SIDE


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(p[0]), int(p[1])


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def save_png(image: np.ndarray, path: str) -> None:
    from PIL import Image

    Image.fromarray(image).save(path, format="PNG")


# What an output name's suffix asks for; anything else is refused (never PNG bytes in a .jpg).
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def save_image(image: np.ndarray, path: str | Path) -> None:
    """Write `image` in the format its name says (`IMAGE_FORMATS`), atomically: a temporary file in
    the same folder renamed into place, so a failure never leaves half a file."""
    import os

    from PIL import Image

    path = Path(path)
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
        Image.fromarray(image).save(tmp, format=fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(input_path: str | Path, output: str | Path) -> Path:
    """The output path, or PoseError with what to do: a known image suffix, an existing folder,
    never the input file itself, never a folder."""
    output, source = Path(output), Path(input_path)
    suffix = output.suffix.lower()
    try:
        same = output.exists() and source.exists() and output.samefile(source)
    except OSError:
        same = False
    if same:
        raise PoseError(f"The output {output} is the input file: it would be overwritten with an image. Give "
                        f"the image its own name, e.g. {output.stem}-pose.png.")
    if suffix not in IMAGE_FORMATS:
        names = ", ".join(IMAGE_FORMATS)
        raise PoseError(f"Cannot tell which image format to write from {output.name!r}: end the output name with "
                        f"one of {names} (e.g. pose.png).")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise PoseError(f"The folder {folder} does not exist: create it first or write the image elsewhere.")
    if output.is_dir():
        raise PoseError(f"{output} is a folder; give a file name such as {output / 'pose.png'}.")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_db.render",
                                     description="Render an OpenPose JSON file to a pose map PNG.")
    parser.add_argument("input", help="OpenPose JSON file (ControlNet format)")
    parser.add_argument("output", help="image to write: .png (pose map), .jpg, .webp or .bmp, by its name")
    parser.add_argument("--width", type=int, help="output width (the scene is aspect-fitted)")
    parser.add_argument("--height", type=int, help="output height (the scene is aspect-fitted)")
    parser.add_argument("--preview", action="store_true", help="draw subject halos on a dark background")
    parser.add_argument("--hands", action="store_true",
                        help="draw hands too, as a pose ControlNet takes them (the preview always does)")
    args = parser.parse_args(argv)
    from .openpose_io import load_openpose

    try:
        output = check_output(args.input, args.output)
        scene = load_openpose(args.input)
        draw = render_preview if args.preview else partial(render_pose_map, hands=args.hands)
        for name, side in (("--width", args.width), ("--height", args.height)):
            if side is not None and not CANVAS_MIN <= side <= CANVAS_MAX:
                raise PoseError(f"{name} must be between {CANVAS_MIN} and {CANVAS_MAX} pixels, got {side}.")
        image = draw(scene, args.width, args.height)
        save_image(image, output)
    except PoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}. Choose a folder you can write.",
              file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({image.shape[1]}x{image.shape[0]}, {len(scene.people)} people)")
    return 0
