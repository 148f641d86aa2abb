"""Pose from a photo: controlnet_aux's OpenPose body detector, as a service for the studio.

The detector is the same CMU OpenPose body network ControlNet was trained with, so the
skeletons it finds are in BODY-18 order already. Its weights (``body_pose_model.pth``, ~200 MB,
from ``lllyasviel/Annotators``) are loaded only when present; otherwise the service says what
is missing and the studio shows that sentence instead of a broken control.

torch and controlnet_aux are imported only when weights are found, so a studio without them
starts fast and the UI stays torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_db.scene import CANVAS_MAX, CANVAS_MIN, Person, PoseScene

ANNOTATORS_REPO = "lllyasviel/Annotators"
BODY_WEIGHTS = "body_pose_model.pth"


@dataclass
class PoseDetector:
    """Finds BODY-18 skeletons in a photo.

    Attributes:
        available: False when the weights (or controlnet_aux) are missing.
        reason: for an unavailable detector, the sentence telling the user what to do.
        name: what is loaded, for the UI.
    """

    available: bool
    reason: str = ""
    name: str = ""
    _openpose: object | None = None

    @classmethod
    def load(cls, source: str | os.PathLike = ANNOTATORS_REPO, *, device: str = "cpu",
             local_files_only: bool = True) -> "PoseDetector":
        """The detector from a folder holding ``body_pose_model.pth`` or a hub repo id.

        Args:
            source: a local folder, or a hub repo (default ``lllyasviel/Annotators``).
            device: torch device for the network ("cuda" on a GPU machine).
            local_files_only: only look in the local Hugging Face cache (no download).
        """
        weights = _find_weights(source, local_files_only)
        if weights is None:
            return cls.unavailable(
                f"Pose-from-photo needs controlnet_aux's OpenPose weights ({BODY_WEIGHTS}, "
                f"~200 MB). Run `huggingface-cli download {ANNOTATORS_REPO} {BODY_WEIGHTS}` "
                f"or start the studio with `--openpose FOLDER` holding that file.")
        try:
            from controlnet_aux.open_pose import Body, OpenposeDetector
        except ImportError as err:  # controlnet_aux or its torchvision pairing is broken
            return cls.unavailable(f"Pose-from-photo needs controlnet_aux, which failed to "
                                   f"import ({err}). Reinstall requirements.txt.")
        body = Body(str(weights))
        body.to(device)
        return cls(True, name=f"OpenPose body ({weights.name}, {device})",
                   _openpose=OpenposeDetector(body))

    @classmethod
    def unavailable(cls, reason: str) -> "PoseDetector":
        return cls(False, reason=reason)

    def detect(self, image) -> PoseScene:
        """The people in ``image`` (RGB PIL image) as a scene the size of the photo."""
        if not self.available:
            raise RuntimeError(self.reason)
        rgb = np.asarray(image.convert("RGB"))
        height, width = rgb.shape[:2]
        if min(width, height) < CANVAS_MIN:
            raise ValueError(f"The photo is {width}x{height}; give one at least {CANVAS_MIN} "
                             f"pixels on each side.")
        poses = self._openpose.detect_poses(rgb)
        scene = PoseScene(width, height, [_person(p.body.keypoints, width, height) for p in poses])
        return _within_canvas(scene)


def _find_weights(source, local_files_only: bool) -> Path | None:
    folder = Path(source)
    if folder.is_dir():
        path = folder / BODY_WEIGHTS
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(str(source), BODY_WEIGHTS,
                                    local_files_only=local_files_only))
    except Exception:  # not cached, offline, or no such repo: all mean "not available"
        return None


def _person(keypoints, width: int, height: int) -> Person:
    """controlnet_aux keypoints (BODY-18 order, normalised, None = not found) → Person."""
    xy = np.zeros((len(keypoints), 2))
    visible = np.zeros(len(keypoints), dtype=bool)
    for i, point in enumerate(keypoints):
        if point is not None:
            xy[i] = (point.x * width, point.y * height)
            visible[i] = True
    return Person(xy=xy, visible=visible)


def _within_canvas(scene: PoseScene) -> PoseScene:
    """Photos beyond the canvas limit are scaled down with their skeletons."""
    scale = min(1.0, CANVAS_MAX / max(scene.width, scene.height))
    if scale == 1.0:
        return scene
    people = [Person(p.xy * scale, p.visible.copy()) for p in scene.people]
    return PoseScene(int(scene.width * scale), int(scene.height * scale), people)
