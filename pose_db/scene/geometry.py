"""Measurements on poses: boxes, token-grid regions, and COCO's object keypoint similarity.

OKS is how the library drops near-duplicates, how evaluations compare poses, and how the
studio says how far an edit moved a person. Region masks bind each subject to the part of the
token grid its skeleton occupies (the engine's subject binding).
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from .model import Person, PoseScene
from .skeleton import KEYPOINT_NAMES, OKS_SIGMAS
from .transforms import fit_scene

# (18,) sigma per keypoint; NaN for the neck, which COCO does not define.
_SIGMAS = np.array([OKS_SIGMAS.get(name, np.nan) for name in KEYPOINT_NAMES])
# The head reaches above the nose: pad boxes upwards by this share of the box height.
_HEAD_PAD = 0.12


def person_bbox(person: Person) -> tuple[float, float, float, float] | None:
    return person.bbox()


def person_region(person: Person, dilate: float = 0.1) -> tuple[float, float, float, float] | None:
    """The person's box grown by ``dilate`` x its longer side on every side (plus head room)."""
    box = person.bbox()
    if box is None:
        return None
    x0, y0, x1, y1 = box
    pad = dilate * max(x1 - x0, y1 - y0, 1.0)
    return x0 - pad, y0 - pad - _HEAD_PAD * (y1 - y0), x1 + pad, y1 + pad


def person_region_mask(person: Person, width: int, height: int, grid_h: int, grid_w: int,
                       dilate: float = 0.1) -> np.ndarray:
    """(grid_h, grid_w) bool: token cells whose pixel square overlaps the person's region."""
    mask = np.zeros((grid_h, grid_w), dtype=bool)
    region = person_region(person, dilate)
    if region is None:
        return mask
    x0, y0, x1, y1 = region
    cw, ch = width / grid_w, height / grid_h
    c0, c1 = max(int(np.floor(x0 / cw)), 0), min(int(np.ceil(x1 / cw)), grid_w)
    r0, r1 = max(int(np.floor(y0 / ch)), 0), min(int(np.ceil(y1 / ch)), grid_h)
    if c1 > c0 and r1 > r0:
        mask[r0:r1, c0:c1] = True
    return mask


def region_mask(scene: PoseScene, grid_h: int, grid_w: int, dilate: float = 0.1) -> dict[int, np.ndarray]:
    """Per assigned subject, the union of its people's region masks on a token grid."""
    masks: dict[int, np.ndarray] = {}
    for person in scene.people:
        if person.subject is None:
            continue
        m = person_region_mask(person, scene.width, scene.height, grid_h, grid_w, dilate)
        masks[person.subject] = masks.get(person.subject, np.zeros_like(m)) | m
    return masks


def oks(a: Person, b: Person, area: float | None = None) -> float:
    """COCO object keypoint similarity of two people in the same pixel frame, in [0, 1].

    Averaged over the 17 COCO keypoints visible in either person; a point visible in only one
    counts 0, so hiding a joint lowers similarity. ``area`` defaults to the mean of the two
    people's box areas (COCO uses the segment area, which keypoints alone do not give).
    """
    either = (a.visible | b.visible) & ~np.isnan(_SIGMAS)
    if not either.any():
        return 0.0
    if area is None:
        area = float(np.mean([_box_area(a), _box_area(b)]))
    area = max(area, 1.0)
    both = a.visible & b.visible & either
    d2 = ((a.xy - b.xy) ** 2).sum(axis=1)
    k2 = (2 * np.nan_to_num(_SIGMAS)) ** 2
    sim = np.where(both, np.exp(-d2 / (2 * area * np.maximum(k2, 1e-12))), 0.0)
    return float(sim[either].mean())


def scene_similarity(a: PoseScene, b: PoseScene) -> float:
    """Mean OKS under the best one-to-one matching of people; 0 when people counts differ.

    ``b`` is aspect-fitted onto ``a``'s canvas first, so scenes of different sizes compare.
    """
    if len(a.people) != len(b.people):
        return 0.0
    if not a.people:
        return 1.0
    if (b.width, b.height) != (a.width, a.height):
        b = fit_scene(b, a.width, a.height)
    sims = np.array([[oks(p, q) for q in b.people] for p in a.people])
    n = len(a.people)
    if n <= 7:
        best = max(sum(sims[i, j] for i, j in enumerate(perm)) for perm in permutations(range(n)))
    else:  # greedy beyond 7 people: 8! matchings would cost more than the answer is worth
        best, free = 0.0, set(range(n))
        for i in range(n):
            j = max(free, key=lambda col: sims[i, col])
            best, free = best + sims[i, j], free - {j}
    return float(best / n)


def _box_area(p: Person) -> float:
    box = p.bbox()
    return 0.0 if box is None else (box[2] - box[0]) * (box[3] - box[1])
