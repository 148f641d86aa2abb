"""Hand-made poses for the foundation tests (no rig needed)."""

import numpy as np

from pose_db.scene.model import Person, PoseScene
from pose_db.scene.skeleton import KEYPOINT_INDEX

# A front-facing standing person in units of its height, origin at the top of the head.
# x: the person's right is the viewer's left.
_STANDING = {
    "nose": (0.0, 0.07), "neck": (0.0, 0.17),
    "r_shoulder": (-0.11, 0.18), "r_elbow": (-0.14, 0.34), "r_wrist": (-0.15, 0.48),
    "l_shoulder": (0.11, 0.18), "l_elbow": (0.14, 0.34), "l_wrist": (0.15, 0.48),
    "r_hip": (-0.06, 0.52), "r_knee": (-0.07, 0.74), "r_ankle": (-0.07, 0.96),
    "l_hip": (0.06, 0.52), "l_knee": (0.07, 0.74), "l_ankle": (0.07, 0.96),
    "r_eye": (-0.025, 0.055), "l_eye": (0.025, 0.055), "r_ear": (-0.05, 0.07), "l_ear": (0.05, 0.07),
}


def standing_person(x: float, top: float, height: float = 300, subject=None, wave: bool = False) -> Person:
    xy = np.zeros((18, 2))
    for name, (u, v) in _STANDING.items():
        xy[KEYPOINT_INDEX[name]] = (x + u * height, top + v * height)
    if wave:  # right forearm up
        xy[KEYPOINT_INDEX["r_elbow"]] = (x - 0.2 * height, top + 0.12 * height)
        xy[KEYPOINT_INDEX["r_wrist"]] = (x - 0.22 * height, top - 0.02 * height)
    return Person(xy=xy, visible=np.ones(18, bool), subject=subject)


def three_person_scene() -> PoseScene:
    return PoseScene(512, 512, [
        standing_person(110, 120, 320, subject=0, wave=True),
        standing_person(256, 100, 360, subject=1),
        standing_person(400, 150, 280),
    ])
