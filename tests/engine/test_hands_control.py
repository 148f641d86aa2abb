"""Hands reach the model only through a pose ControlNet: its control image draws them, ASTRA's
pose tokens do not, and the studio's note says which applies (tiny engines, CPU)."""

import numpy as np
import pytest
import torch

from engine import AstraPipeline, modes
from engine.conditioning import pose_map_image
from pose_db.scene.model import Person, PoseScene
from pose_db.scene.openpose_io import read_openpose
from pose_db.scene.skeleton import KEYPOINT_INDEX
from tests.helpers.pipeline import two_people_pose

LATENT_HW = (4, 4)  # a 64 x 64 canvas


def _scenes() -> tuple[PoseScene, PoseScene]:
    """The two-person test pose with an open right hand on person 1, and the same without it."""
    body = read_openpose(two_people_pose())
    people = []
    for n, p in enumerate(body.people):
        extras = {}
        if n == 0:
            x, y = p.xy[KEYPOINT_INDEX["r_wrist"]]
            fingers = [[x + (f - 2) * 2.5 * k / 4, y + 3.0 * k, 1.0] for f in range(5) for k in range(1, 5)]
            extras["hand_right_keypoints_2d"] = np.array([[x, y, 1.0], *fingers])
        people.append(Person(p.xy, p.visible, p.subject, extras))
    return PoseScene(64, 64, people), body


def test_the_control_image_draws_hands_and_the_pose_tokens_do_not():
    with_hands, body = _scenes()
    a = np.asarray(pose_map_image(with_hands, LATENT_HW, 1, hands=True))
    b = np.asarray(pose_map_image(body, LATENT_HW, 1, hands=True))
    assert (a != b).any(axis=2).sum() > 10
    assert np.array_equal(np.asarray(pose_map_image(with_hands, LATENT_HW, 1)), b)  # body-only by default


@pytest.mark.parametrize("mode", ["base", "public"])
def test_a_controlnet_mode_sends_the_hands(mode):
    pipe = AstraPipeline.tiny(seed=0, mode=mode)
    with_hands, body = _scenes()
    device = torch.device("cpu")
    a, b = (pipe._encode_control(s, LATENT_HW, device) for s in (with_hands, body))
    assert not torch.equal(a, b)


def test_astra_pose_tokens_ignore_the_hands():
    pipe = AstraPipeline.tiny(seed=0, mode="astra")
    with_hands, body = _scenes()
    a, b = (pipe._encode_conditions([], s, LATENT_HW).tokens for s in (with_hands, body))
    assert a is not None and torch.equal(a, b)


def test_uses_hands_and_the_studio_note():
    from engine.request import EngineInfo
    from ui.engine_status import hands_note

    assert modes.uses_hands("base", has_controlnet=True) and modes.uses_hands("public", has_controlnet=True)
    assert not modes.uses_hands("astra", has_controlnet=True)
    assert not modes.uses_hands("base", has_controlnet=False) and not modes.uses_hands(None, has_controlnet=False)

    def info(mode, controlnet):
        return EngineInfo("tiny", "cpu", "float32", "tiny", None, "", mode=mode, controlnet=controlnet)

    assert "Hands are used:" in hands_note(info("public", "tiny"))
    assert "this engine ignores them (ASTRA's pose tokens are body-only)" in hands_note(info("astra", None))
    assert "no pose ControlNet is loaded" in hands_note(info("base", None))
    assert "no engine is loaded" in hands_note(EngineInfo("none", "none", "none", "", None, "why"))
