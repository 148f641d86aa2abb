"""The skeleton editor's script, without a browser: which files it is made of, that the
component ships exactly their concatenation, and that the pose model reaches it from Python
(``pose_db.scene.skeleton``) instead of being repeated in JS."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from pose_db.scene import skeleton, transforms
from pose_db.scene.openpose_io import read_openpose, write_openpose
from ui import pose_editor
from ui.pose_editor import JS_DIR, JS_FILES, PoseEditor, editor_script, skeleton_config


def js_sources() -> dict[str, str]:
    return {name: (JS_DIR / name).read_text(encoding="utf-8") for name in JS_FILES}


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_component_ships_the_files_concatenated_in_order():
    assert sorted(p.name for p in JS_DIR.glob("*.js")) == sorted(JS_FILES)   # none forgotten
    assert JS_FILES[-1] == "main.js"                                        # the one that starts
    expected = "\n".join(f"// ==== {name} ====\n{text}" for name, text in js_sources().items())
    assert editor_script() == expected
    editor = PoseEditor(render=False)
    assert editor.js_on_load == expected
    positions = [editor.js_on_load.index(f"// ==== {name} ====") for name in JS_FILES]
    assert positions == sorted(positions)
    assert not (pose_editor.STATIC / "pose_editor.js").exists()             # no stale copy
    assert not re.search(r"https?://|import\(|fetch\(|<script", editor.js_on_load)   # offline


def test_no_js_file_repeats_the_pose_model():
    names = set(skeleton.KEYPOINT_NAMES) | set(skeleton.COCO17_NAMES)
    config = skeleton_config()
    for name, text in js_sources().items():
        quoted = {m for m in re.findall(r"""["'`]([a-z_]+)["'`]""", text) if m in names}
        assert not quoted, f"{name} names keypoints itself: {sorted(quoted)}"
        flat = squeeze(text)
        for key in ("names", "limbs", "colors", "mirror", "coco17", "subject_colors"):
            for seq in (config[key], config[key][:4]):
                assert squeeze(json.dumps(seq)).strip("[]") not in flat, f"{name} repeats {key}"
        assert not re.search(r"\b255\s*,\s*(0|85|170)\s*,", text), f"{name} repeats the colours"
        assert "hand_left" not in text and "hand_right" not in text and "face_keypoints" not in text


def test_the_config_carries_the_skeleton_from_pose_db():
    config = PoseEditor(render=False).props["editor_config"]
    assert config["names"] == list(skeleton.KEYPOINT_NAMES)
    assert config["limbs"] == [list(l) for l in skeleton.LIMBS]
    assert config["colors"] == [list(c) for c in skeleton.COLORS]
    assert config["mirror"] == list(skeleton.MIRROR_INDEX)
    assert config["subject_colors"] == list(skeleton.SUBJECT_COLORS)
    assert [config["names"][i] for i in config["coco17"]] == list(skeleton.COCO17_NAMES)
    assert [config["names"][i] for i in config["coco_neck"]] == ["neck", "r_shoulder", "l_shoulder"]
    assert config["mirror_extras"] == transforms._MIRRORED_EXTRAS   # as pose_db mirrors hands


def test_state_lives_in_one_object_and_only_main_touches_gradio():
    sources = js_sources()
    declared: dict[str, str] = {}
    for name, text in sources.items():
        assert not re.search(r"^(let|var)\s", text, re.M), f"{name} has a mutable global"
        for ident in re.findall(r"^(?:function|const)\s+([A-Za-z_$][\w$]*)", text, re.M):
            assert ident not in declared, f"{ident} is declared in {declared[ident]} and {name}"
            declared[ident] = name
        code = re.sub(r"//.*", "", text)
        if name != "main.js":    # js_on_load's arguments reach the others only through `st`
            assert not re.search(r"\b(props|trigger|watch|element)\b", code), name
    assert {"createState", "startEditor", "fromOpenPose", "draw", "hit", "buildToolbar"} <= set(declared)


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_script_parses_and_the_model_reads_coco17_like_pose_db(tmp_path):
    config = PoseEditor(render=False).props["editor_config"]
    coco = []
    for k in range(17):
        coco += [100 + 10 * k, 200 + 5 * k, 0 if k == 3 else 2]      # one unlabelled point
    frame = {"canvas_width": 640, "canvas_height": 480, "people": [{"pose_keypoints_2d": coco}]}
    script = tmp_path / "check.js"
    script.write_text(
        "const fs = require('fs');\n"
        f"new Function('element', 'trigger', 'props', 'server', 'upload', 'watch', "
        f"fs.readFileSync({json.dumps(str(tmp_path / 'editor.js'))}, 'utf8'));\n"
        f"eval(fs.readFileSync({json.dumps(str(JS_DIR / 'model.js'))}, 'utf8'));\n"
        f"const cfg = {json.dumps(config)};\n"
        f"const scene = fromOpenPose(cfg, {json.dumps(json.dumps(frame))}, null);\n"
        "const twin = clone(scene); mirrorPerson(cfg, twin.people[0]); mirrorPerson(cfg, twin.people[0]);\n"
        "console.log(JSON.stringify([toOpenPose(scene), signature(twin) === signature(scene)]));\n")
    (tmp_path / "editor.js").write_text(editor_script())
    out = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    value, mirror_twice_is_identity = json.loads(out.stdout)
    assert value == write_openpose(read_openpose(frame)) and mirror_twice_is_identity
