"""Transforms, OKS, region masks and scene similarity."""

import numpy as np
import pytest

from pose_db.scene.geometry import oks, person_region_mask, region_mask, scene_similarity
from pose_db.scene.model import MAX_PEOPLE, PoseError, PoseScene
from pose_db.scene.skeleton import KEYPOINT_INDEX
from pose_db.scene.transforms import (
    duplicate_person,
    fit_scene,
    mirror,
    mirror_scene,
    rotate,
    scale,
    translate,
)
from tests.helpers.poses import standing_person, three_person_scene


def test_mirror_twice_is_identity_and_swaps_sides():
    p = standing_person(200, 100, wave=True)
    once = mirror(p, 256)
    # the raised right wrist becomes a raised left wrist on the other side of the axis
    rw, lw = KEYPOINT_INDEX["r_wrist"], KEYPOINT_INDEX["l_wrist"]
    assert once.xy[lw, 1] == p.xy[rw, 1]
    assert once.xy[lw, 0] == pytest.approx(512 - p.xy[rw, 0])
    twice = mirror(once, 256)
    np.testing.assert_allclose(twice.xy, p.xy)
    assert np.array_equal(twice.visible, p.visible)
    back = mirror_scene(mirror_scene(three_person_scene()))
    for a, b in zip(back.people, three_person_scene().people):
        np.testing.assert_allclose(a.xy, b.xy, atol=1e-9)
        assert a.subject == b.subject


def test_translate_scale_rotate():
    p = standing_person(200, 100)
    np.testing.assert_allclose(translate(p, 5, -3).xy, p.xy + [5, -3])
    big = scale(p, 2.0, about=(0, 0))
    np.testing.assert_allclose(big.xy, p.xy * 2)
    with pytest.raises(PoseError):
        scale(p, 0)
    r = rotate(p, 90, about=(0, 0))  # clockwise on screen: (x, y) -> (-y, x)
    np.testing.assert_allclose(r.xy, np.column_stack([-p.xy[:, 1], p.xy[:, 0]]), atol=1e-9)
    full = rotate(p, 360)
    np.testing.assert_allclose(full.xy, p.xy, atol=1e-9)


def test_fit_scene_keeps_aspect_and_centres():
    scene = three_person_scene()  # 512 x 512
    wide = fit_scene(scene, 1024, 512)
    # uniform scale 1 and a 256-px horizontal offset: nothing stretched
    np.testing.assert_allclose(wide.people[0].xy, scene.people[0].xy + [256, 0])
    tall = fit_scene(scene, 256, 512)
    np.testing.assert_allclose(tall.people[1].xy, scene.people[1].xy * 0.5 + [0, 128])


def test_duplicate_person_limits():
    scene = three_person_scene()
    dup = duplicate_person(scene, 0, (30, 0))
    assert len(dup.people) == 4 and dup.people[3].subject is None
    np.testing.assert_allclose(dup.people[3].xy, scene.people[0].xy + [30, 0])
    full = PoseScene(512, 512, [standing_person(200, 100)] * MAX_PEOPLE)
    with pytest.raises(PoseError, match="at most"):
        duplicate_person(full, 0)


def test_oks_is_one_for_identical_and_falls_with_distance():
    p = standing_person(200, 100)
    assert oks(p, p) == pytest.approx(1.0)
    values = [oks(p, translate(p, d, 0)) for d in (2, 10, 30, 80)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] < 0.2
    hidden = p.copy()
    hidden.visible[KEYPOINT_INDEX["l_wrist"]] = False
    assert oks(p, hidden) < 1.0


def test_scene_similarity_matches_people_in_any_order():
    scene = three_person_scene()
    shuffled = PoseScene(512, 512, scene.people[::-1])
    assert scene_similarity(scene, shuffled) == pytest.approx(1.0)
    assert scene_similarity(scene, PoseScene(512, 512, scene.people[:2])) == 0.0
    assert scene_similarity(scene, fit_scene(scene, 1024, 1024)) == pytest.approx(1.0)


def test_region_masks_cover_each_assigned_person():
    scene = three_person_scene()
    masks = region_mask(scene, 32, 32, dilate=0.0)
    assert set(masks) == {0, 1}  # the third person is unassigned
    for subject, person in ((0, scene.people[0]), (1, scene.people[1])):
        m = masks[subject]
        for x, y in person.visible_xy:
            assert m[min(int(y / 16), 31), min(int(x / 16), 31)]
        x0, _, x1, _ = person.bbox()
        cols = np.where(m.any(axis=0))[0]
        assert cols.min() * 16 <= x0 and (cols.max() + 1) * 16 >= x1
        assert (cols.max() - cols.min() + 1) * 16 <= (x1 - x0) + 32  # no more than a cell of slack a side
    grown = person_region_mask(scene.people[0], 512, 512, 32, 32, dilate=0.3)
    assert grown.sum() > masks[0].sum()
