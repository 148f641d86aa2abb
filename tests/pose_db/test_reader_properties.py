"""Property-based: whatever the reader is given, it returns a scene or raises PoseError."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pose_db.scene.model import PoseError, PoseScene
from pose_db.scene.openpose_io import read_openpose, write_openpose

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=60,
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12), st.booleans(),
                    st.text(max_size=3), st.none())
people = st.lists(
    st.fixed_dictionaries({"pose_keypoints_2d": st.lists(numbers, min_size=0, max_size=60)},
                          optional={"subject": numbers}),
    max_size=12,
)
scene_like = st.fixed_dictionaries(
    {"people": people}, optional={"canvas_width": numbers, "canvas_height": numbers})


def _read(data):
    try:
        scene = read_openpose(data)
    except PoseError:
        return None
    assert isinstance(scene, PoseScene)
    # anything accepted writes back to JSON that reads back to the same scene
    assert read_openpose(json.dumps(write_openpose(scene))) == scene
    return scene


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_values(data):
    _read(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scene_like)
def test_scene_shaped_junk(data):
    _read(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_text_and_bytes(data):
    _read(data)
