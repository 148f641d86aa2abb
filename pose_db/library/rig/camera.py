"""The camera: views of a posed scene, perspective projection to BODY-18, and framing.

Views (front, three-quarter, side, back, high and low angle) are data in ``views.yaml``. What
a camera cannot see follows from the view: a face turned away hides its nose and eyes, the
far eye and ear of a profile are hidden, and joints that leave the frame are hidden too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import yaml

from pose_db.scene.model import Person, PoseScene
from pose_db.scene.skeleton import KEYPOINT_NAMES

from .kinematics import Body3D, cross

_VIEWS = Path(__file__).with_name("views.yaml")
VIEW_NAMES = ("front", "three_quarter", "side", "back", "high_angle", "low_angle")
# Canvas sizes by the scene's shape: tall people get a portrait canvas, groups a landscape one.
CANVAS_PORTRAIT, CANVAS_SQUARE, CANVAS_LANDSCAPE = (512, 768), (512, 512), (768, 512)
_ASPECT_SWITCH = 1.25
_MARGIN = 0.07          # share of the canvas kept free on every side
_MIN_CAMERA_HEIGHT = 0.25  # metres: a low-angle camera still stands on the floor
_LOW_SCENE, _LOW_SCENE_ELEVATION = 0.7, 32.0  # metres (highest joint), degrees
# A face point is seen when the face (or, for eyes and ears, that side of the head) is turned
# towards the camera by more than this cosine.
_NOSE_SEEN, _EYE_SEEN, _EAR_SEEN = -0.4, -0.2, -0.35


@dataclass(frozen=True)
class ViewSpec:
    name: str
    azimuth: float
    elevation: float
    spread: float
    mirror: bool


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at ``position`` looking at ``target`` (world frame, metres)."""

    position: np.ndarray
    target: np.ndarray
    focal: float = 1.0

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._basis

    @cached_property
    def _basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Computed once per camera: every person and landmark of a scene is projected with it.
        forward = self.target - self.position
        forward = forward / np.linalg.norm(forward)
        right = cross(forward, (0.0, 1.0, 0.0))
        if np.linalg.norm(right) < 1e-6:  # looking straight down: keep x to the right
            right = np.array([1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        return right, cross(right, forward), forward

    def project(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) world points to (n, 2) image-plane coordinates, x right and y down."""
        right, up, forward = self._basis
        rel = np.asarray(points, dtype=float) - self.position
        depth = np.maximum(rel @ forward, 1e-3)
        return np.stack([self.focal * (rel @ right) / depth, -self.focal * (rel @ up) / depth], axis=1)


@lru_cache(maxsize=1)
def view_specs() -> dict[str, ViewSpec]:
    data = yaml.safe_load(_VIEWS.read_text())
    return {name: ViewSpec(name, **{k: (bool(v) if k == "mirror" else float(v)) for k, v in spec.items()})
            for name, spec in data.items()}


def camera_for_view(bodies: list[Body3D], view: str, side: int = 1,
                    jitter: tuple[float, float] = (0.0, 0.0)) -> Camera:
    """A camera showing ``bodies`` from ``view``; ``side`` = -1 takes a mirrored view from the
    other side, ``jitter`` (degrees) nudges azimuth and elevation."""
    specs = view_specs()
    if view not in specs:
        raise ValueError(f"unknown view {view!r}; use one of {', '.join(specs)}")
    spec = specs[view]
    points = np.concatenate([b.array(tuple(b.joints)) for b in bodies])
    lo, hi = points.min(axis=0), points.max(axis=0)
    target = (lo + hi) / 2
    extent = float(np.linalg.norm(hi - lo))
    distance = 2.5 * extent + 2.0  # far enough that perspective stays mild
    az = np.radians(side * (spec.azimuth + jitter[0]))
    elevation = spec.elevation + jitter[1]
    if hi[1] < _LOW_SCENE and view != "low_angle":
        # People lying on the floor are photographed by someone standing, looking down: from
        # eye level they would be a flat line that shows nothing of the pose.
        elevation = max(elevation, _LOW_SCENE_ELEVATION + jitter[1])
    el = np.radians(elevation)
    position = target + distance * np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    position[1] = max(position[1], _MIN_CAMERA_HEIGHT)
    return Camera(position=position, target=target)


def keypoints_in_view(body: Body3D, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """BODY-18 image-plane points (18, 2) and visibility (18,) of one body seen by ``camera``."""
    xy = camera.project(body.array(KEYPOINT_NAMES))
    visible = np.ones(len(KEYPOINT_NAMES), dtype=bool)
    head = body.frames["head"]
    to_camera = camera.position - body.joints["head"]
    to_camera /= np.linalg.norm(to_camera)
    facing = head @ np.array([0.0, 0.0, 1.0]) @ to_camera
    left = head @ np.array([1.0, 0.0, 0.0]) @ to_camera
    index = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
    visible[index["nose"]] = facing > _NOSE_SEEN
    for side, outward in (("r", -left), ("l", left)):
        visible[index[f"{side}_eye"]] = facing > _EYE_SEEN and outward > -0.5
        visible[index[f"{side}_ear"]] = outward > _EAR_SEEN
    return xy, visible


def frame_people(points: list[tuple[np.ndarray, np.ndarray]], head_tops: np.ndarray,
                 crop_below: float | None = None, canvas: tuple[int, int] | None = None) -> PoseScene:
    """Fit projected people onto a canvas with a margin (uniform scale, centred).

    ``head_tops`` (n, 2) keep the crown of each head inside the frame. ``crop_below`` is an
    image-plane y: everything below it leaves the frame (a waist-up shot) and is hidden.
    ``canvas`` forces a size; otherwise portrait, square or landscape follows the scene's shape.
    """
    vis_pts = np.concatenate([xy[vis] for xy, vis in points] + [head_tops])
    if crop_below is not None:
        vis_pts = vis_pts[vis_pts[:, 1] <= crop_below]
    (x0, y0), (x1, y1) = vis_pts.min(axis=0), vis_pts.max(axis=0)
    if crop_below is not None:
        y1 = crop_below
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    if canvas is None:
        canvas = (CANVAS_PORTRAIT if h > _ASPECT_SWITCH * w
                  else CANVAS_LANDSCAPE if w > _ASPECT_SWITCH * h else CANVAS_SQUARE)
    width, height = canvas
    bottom_margin = 0.0 if crop_below is not None else _MARGIN * height
    s = min((1 - 2 * _MARGIN) * width / w, ((1 - _MARGIN) * height - bottom_margin) / h)
    ox = width / 2 - s * (x0 + x1) / 2
    if crop_below is not None:
        oy = height - s * y1
    else:
        oy = height / 2 - s * (y0 + y1) / 2
    people = []
    for xy, vis in points:
        pix = xy * s + (ox, oy)
        inside = (pix[:, 0] >= 0) & (pix[:, 0] <= width - 1) & (pix[:, 1] >= 0) & (pix[:, 1] <= height - 1)
        people.append(Person(xy=pix, visible=vis & inside))
    return PoseScene(width, height, people)
