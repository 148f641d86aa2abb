"""OpenPose BODY-18: the one keypoint layout every part of ASTRA Studio speaks.

It is COCO-18 with a neck, the layout ControlNet's openpose models and ASTRA's OpenPose
extraction use. "Right" is the person's own right.
"""

from __future__ import annotations

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# The 17 limbs of controlnet_aux's draw_bodypose, in its order: limb i is drawn in COLORS[i].
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

# RGB. Joint j is drawn in COLORS[j].
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)

# Mirroring a person swaps each left keypoint with its right twin.
_LEFT_RIGHT = (("r_shoulder", "l_shoulder"), ("r_elbow", "l_elbow"), ("r_wrist", "l_wrist"),
               ("r_hip", "l_hip"), ("r_knee", "l_knee"), ("r_ankle", "l_ankle"),
               ("r_eye", "l_eye"), ("r_ear", "l_ear"))


def _mirror_index() -> tuple[int, ...]:
    perm = list(range(NUM_KEYPOINTS))
    for right, left in _LEFT_RIGHT:
        r, l = KEYPOINT_INDEX[right], KEYPOINT_INDEX[left]
        perm[r], perm[l] = l, r
    return tuple(perm)


MIRROR_INDEX: tuple[int, ...] = _mirror_index()

# COCO keypoint sigmas. The neck is not a COCO keypoint: it has none and OKS skips it.
OKS_SIGMAS: dict[str, float] = {
    "nose": 0.026, "r_eye": 0.025, "l_eye": 0.025, "r_ear": 0.035, "l_ear": 0.035,
    "r_shoulder": 0.079, "l_shoulder": 0.079, "r_elbow": 0.072, "l_elbow": 0.072,
    "r_wrist": 0.062, "l_wrist": 0.062, "r_hip": 0.107, "l_hip": 0.107,
    "r_knee": 0.087, "l_knee": 0.087, "r_ankle": 0.089, "l_ankle": 0.089,
}

# COCO-17 order, for importers: index in COCO-17 -> BODY-18 name.
COCO17_NAMES: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
    "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)

# Subject k is drawn in SUBJECT_COLORS[k] wherever a person is assigned to it (canvas, previews).
SUBJECT_COLORS: tuple[str, ...] = ("#ff6b6b", "#4dabf7", "#51cf66", "#fcc419", "#cc5de8", "#ff922b")

# ---- hands: OpenPose's 21-point hand (hand_left_keypoints_2d / hand_right_keypoints_2d) ------
# The layout ControlNet's openpose_full maps use: the wrist, then four joints per finger from
# the palm outwards (thumb, index, middle, ring, little). Both hands use the same order.
_FINGERS = ("thumb", "index", "middle", "ring", "little")
HAND_KEYPOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{k}" for finger in _FINGERS for k in range(1, 5))
NUM_HAND_KEYPOINTS = len(HAND_KEYPOINT_NAMES)
# controlnet_aux draw_handpose's 20 edges, in its order: edge i is drawn in HAND_EDGE_COLORS[i].
HAND_LIMBS: tuple[tuple[int, int], ...] = tuple(
    pair for f in range(5) for pair in ((0 if k == 0 else 4 * f + k, 4 * f + k + 1) for k in range(4)))


def _hsv_rgb(h: float) -> tuple[float, float, float]:
    """RGB (0-255 floats) of hue ``h`` in [0, 1) at full saturation and value."""
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    q, t = 255 * (1 - f), 255 * f
    return ((255, t, 0), (q, 255, 0), (0, 255, t), (0, q, 255), (t, 0, 255), (255, 0, q))[i]


# The reference colours edge i by hue i / 20 (matplotlib's hsv_to_rgb, times 255); joints are
# all (0, 0, 255).
HAND_EDGE_COLORS: tuple[tuple[float, float, float], ...] = tuple(
    _hsv_rgb(i / len(HAND_LIMBS)) for i in range(len(HAND_LIMBS)))
HAND_JOINT_COLOR = (0, 0, 255)
# Each hand's OpenPose key, and the body joints (wrist, elbow) it hangs from.
HAND_KEYS: dict[str, tuple[str, str]] = {
    "hand_left_keypoints_2d": ("l_wrist", "l_elbow"),
    "hand_right_keypoints_2d": ("r_wrist", "r_elbow"),
}
