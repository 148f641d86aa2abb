"""One shape for the skeleton canvas and the output image.

A retrieved pose arrives on its own canvas (say 512×768) while the output may be 256×256: sent
as it is, the engine would squeeze the pose. The studio fits the pose to the output instead:
scaled uniformly to fit inside the output size and centred ("contain", the skeleton keeps its
proportions), so the canvas, the engine's pose and the recipe all carry the output's shape.
"""

from __future__ import annotations

import copy

FIT_MODE = "contain"  # the only fitting: uniform scale, centred, nothing cut off


def canvas_size(pose: dict | None) -> tuple[int, int] | None:
    if not pose:
        return None
    try:
        return int(pose["canvas_width"]), int(pose["canvas_height"])
    except (KeyError, TypeError, ValueError):
        return None


def fit_pose(pose: dict | None, width: int, height: int) -> dict | None:
    """``pose`` on a ``width``×``height`` canvas, its keypoints scaled and centred to fit
    ("contain"); unchanged when it already has that size (or is empty)."""
    size = canvas_size(pose)
    width, height = int(width), int(height)
    if size is None or size == (width, height):
        return pose
    old_w, old_h = size
    scale = min(width / old_w, height / old_h)
    dx, dy = (width - old_w * scale) / 2, (height - old_h * scale) / 2
    fitted = copy.deepcopy(pose)
    fitted["canvas_width"], fitted["canvas_height"] = width, height
    for person in fitted.get("people", []):
        for key, flat in person.items():
            if not (key.endswith("_keypoints_2d") and isinstance(flat, list)):
                continue
            for i in range(0, len(flat) - 2, 3):
                x, y, c = flat[i:i + 3]
                if c or x or y:  # hidden joints stay [0, 0, 0]
                    flat[i], flat[i + 1] = round(x * scale + dx, 2), round(y * scale + dy, 2)
    return fitted


def fit_note(pose: dict | None, width: int, height: int) -> str | None:
    """A sentence saying how the pose was fitted to the output, or None when no fitting."""
    size = canvas_size(pose)
    if size is None or size == (int(width), int(height)):
        return None
    return (f"The {size[0]}×{size[1]} pose was fitted inside the {int(width)}×{int(height)} "
            f"output (scaled evenly and centred, not squeezed).")
