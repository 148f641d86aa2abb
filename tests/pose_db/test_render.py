"""Pose maps: pixel parity with controlnet_aux, the preview, and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pose_db.scene.model import PoseScene
from pose_db.scene.openpose_io import write_openpose
from pose_db.scene.render import main, render_pose_map, render_preview
from pose_db.scene.skeleton import KEYPOINT_INDEX
from tests.helpers.poses import standing_person, three_person_scene

util = pytest.importorskip("controlnet_aux.open_pose.util")
body = pytest.importorskip("controlnet_aux.open_pose.body")


def _reference_drawing(scene: PoseScene) -> np.ndarray:
    """controlnet_aux's own draw_bodypose over the same keypoints (normalised, None = hidden)."""
    canvas = np.zeros((scene.height, scene.width, 3), dtype=np.uint8)
    for person in scene.people:
        keypoints = [
            body.Keypoint(x / scene.width, y / scene.height) if vis else None
            for (x, y), vis in zip(person.xy.tolist(), person.visible.tolist())
        ]
        canvas = util.draw_bodypose(canvas, keypoints)
    return canvas


def _hidden_joints_scene() -> PoseScene:
    p = standing_person(256, 90, 380, wave=True)
    for name in ("l_eye", "l_ear", "r_knee", "r_ankle"):
        p.visible[KEYPOINT_INDEX[name]] = False
    return PoseScene(512, 512, [p])


def _rotated_scene() -> PoseScene:
    from pose_db.scene.transforms import rotate

    return PoseScene(512, 512, [rotate(standing_person(256, 100, 330), 37), rotate(standing_person(120, 60, 200), -80)])


SCENES = {
    "one person": lambda: PoseScene(512, 512, [standing_person(256, 80, 400)]),
    "three people": three_person_scene,
    "hidden joints": _hidden_joints_scene,
    "rotated limbs": _rotated_scene,
}


@pytest.mark.parametrize("name", sorted(SCENES))
def test_pixel_parity_with_controlnet_aux(name):
    scene = SCENES[name]()
    ours, theirs = render_pose_map(scene), _reference_drawing(scene)
    assert ours.shape == theirs.shape == (512, 512, 3)
    differing = (ours != theirs).any(axis=2).mean()
    assert differing <= 0.005, f"{differing:.2%} of pixels differ"
    assert (ours > 0).any(axis=2).mean() > 0.01  # something was drawn


def test_hidden_limbs_are_not_drawn():
    scene = _hidden_joints_scene()
    p = scene.people[0]
    image = render_pose_map(scene)
    x, y = ((p.xy[KEYPOINT_INDEX["r_knee"]] + p.xy[KEYPOINT_INDEX["r_ankle"]]) / 2).astype(int)
    assert not image[y - 2:y + 3, x - 2:x + 3].any()


def test_resize_fits_without_stretching_and_scales_strokes():
    scene = PoseScene(512, 512, [standing_person(256, 80, 400)])
    big = render_pose_map(scene, 1024, 512)
    assert big.shape == (512, 1024, 3)
    assert not big[:, :250].any() and not big[:, -250:].any()  # centred, side bands empty
    double = render_pose_map(scene, 1024, 1024)
    assert (double > 0).any(axis=2).sum() > 3.5 * (render_pose_map(scene) > 0).any(axis=2).sum()


def test_preview_halos_assigned_people_only():
    scene = three_person_scene()
    image = render_preview(scene)
    red_halo = (image == [255, 107, 107]).all(axis=2).sum()  # subject 0's colour
    assert red_halo > 50
    scene.people[0].subject = None
    assert (render_preview(scene) == [255, 107, 107]).all(axis=2).sum() == 0


def test_cli_renders_three_people(tmp_path):
    src = tmp_path / "scene.json"
    src.write_text(json.dumps(write_openpose(three_person_scene())))
    out = tmp_path / "map.png"
    proc = subprocess.run([sys.executable, "-m", "pose_db.render", str(src), str(out), "--width", "768",
                           "--height", "512"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    image = np.asarray(Image.open(out))
    assert image.shape == (512, 768, 3)
    np.testing.assert_array_equal(image, render_pose_map(three_person_scene(), 768, 512))


def test_cli_reports_bad_json(tmp_path, capsys):
    src = tmp_path / "bad.json"
    src.write_text("{\"people\": 3}")
    assert main([str(src), str(tmp_path / "x.png")]) == 2
    assert "people" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def _scene_file(tmp_path):
    src = tmp_path / "scene.json"
    src.write_text(json.dumps(write_openpose(three_person_scene())))
    return src


def test_cli_never_overwrites_its_input(tmp_path, capsys):
    src = _scene_file(tmp_path)
    before = src.read_bytes()
    assert main([str(src), str(src)]) == 2
    assert "is the input file" in capsys.readouterr().err and src.read_bytes() == before
    (tmp_path / "link.png").symlink_to(src)  # the same file under an image name
    assert main([str(src), str(tmp_path / "link.png")]) == 2 and src.read_bytes() == before


@pytest.mark.parametrize("name,fmt", [("map.png", "PNG"), ("map.jpg", "JPEG"), ("map.JPEG", "JPEG"),
                                      ("map.webp", "WEBP")])
def test_cli_writes_the_format_the_name_says(tmp_path, name, fmt):
    src = _scene_file(tmp_path)
    assert main([str(src), str(tmp_path / name)]) == 0
    with Image.open(tmp_path / name) as image:
        assert image.format == fmt
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_cli_refuses_unknown_formats_missing_folders_and_folders(tmp_path, capsys):
    src = _scene_file(tmp_path)
    assert main([str(src), str(tmp_path / "map.tga")]) == 2
    assert "end the output name with" in capsys.readouterr().err and not (tmp_path / "map.tga").exists()
    assert main([str(src), str(tmp_path / "missing" / "map.png")]) == 2
    assert "does not exist: create it first" in capsys.readouterr().err and not (tmp_path / "missing").exists()
    (tmp_path / "dir.png").mkdir()
    assert main([str(src), str(tmp_path / "dir.png")]) == 2 and "is a folder" in capsys.readouterr().err
    assert main([str(src), str(tmp_path / "m.png"), "--width", "100000"]) == 2
    assert "--width must be between" in capsys.readouterr().err


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_reading_a_device_a_pipe_or_a_folder_never_hangs(tmp_path, special, capsys):
    import os

    if special == "fifo":
        path = tmp_path / "pose.json"
        os.mkfifo(path)  # nobody writes: a plain open() would block forever
    elif special == "folder":
        path = tmp_path
    else:
        path = special
    proc = subprocess.run([sys.executable, "-m", "pose_db.render", str(path), str(tmp_path / "m.png")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr, proc.stderr
    assert not (tmp_path / "m.png").exists()
