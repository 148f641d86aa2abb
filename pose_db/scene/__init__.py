"""The pose-scene model (paper section 3.1.1's OpenPose skeletons): BODY-18 people on a canvas.

``skeleton`` (keypoints, limbs, colours, OKS sigmas) → ``model`` (`Person`, `PoseScene`,
`PoseError`, limits) → ``openpose_io`` (ControlNet's OpenPose JSON) → ``transforms`` →
``geometry`` (boxes, region masks, OKS) → ``render`` (controlnet_aux's pose map);
``entry`` is the database record every later layer passes around.
"""

from .entry import Hit, LibraryEntry
from .model import (
    CANVAS_MAX,
    CANVAS_MIN,
    MAX_PEOPLE,
    MAX_SUBJECTS,
    Person,
    PoseError,
    PoseScene,
)
from .openpose_io import load_openpose, read_openpose, write_openpose

__all__ = [
    "CANVAS_MAX", "CANVAS_MIN", "MAX_PEOPLE", "MAX_SUBJECTS", "Hit", "LibraryEntry", "Person",
    "PoseError", "PoseScene", "load_openpose", "read_openpose", "write_openpose",
]
