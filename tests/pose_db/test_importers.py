"""Importers: COCO keypoints + captions, OpenPose JSON folders, images through a detector, into the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from pose_db.index.build import build_index
from pose_db.index.grow import import_entries, main
from pose_db.index.stats import index_stats
from pose_db.index.store import IndexMissing, PoseIndex
from pose_db.library.detector import DetectorMissing, PoseDetector
from pose_db.library.importers import import_coco, import_image_folder, import_openpose_folder
from pose_db.scene.model import PoseError, PoseScene
from pose_db.scene.openpose_io import write_openpose
from pose_db.scene.skeleton import COCO17_NAMES, KEYPOINT_INDEX
from tests.helpers.entries import tiny_entries
from tests.helpers.poses import standing_person


def coco17(person, labelled=None) -> list[float]:
    """A COCO-17 ``[x, y, v] * 17`` list of a BODY-18 person (v=2: labelled and visible)."""
    flat = []
    for name in COCO17_NAMES:
        x, y = person.xy[KEYPOINT_INDEX[name]]
        on = labelled is None or name in labelled
        flat += [float(x), float(y), 2 if on else 0] if on else [0.0, 0.0, 0]
    return flat


@pytest.fixture()
def coco_files(tmp_path):
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i:012d}.jpg"} for i in (1, 2, 3, 4, 5)]
    people = [
        (10, 1, coco17(standing_person(200, 60, 380, wave=True)), 0),
        (20, 2, coco17(standing_person(180, 80, 340)), 0),
        (21, 2, coco17(standing_person(420, 80, 340)), 0),
        (22, 2, coco17(standing_person(600, 300, 100), labelled={"nose", "l_eye"}), 0),  # a background face
        (30, 3, coco17(standing_person(300, 80, 340)), 1),  # a crowd region beside a person: skipped
        (31, 3, coco17(standing_person(100, 80, 340)), 0),
        (40, 4, coco17(standing_person(300, 80, 340)), 0),  # no caption: skipped
        (50, 5, coco17(standing_person(100, 80, 100)), 0),
    ]
    annotations = [{"id": a, "image_id": i, "keypoints": k, "iscrowd": c, "category_id": 1,
                    "num_keypoints": sum(1 for v in k[2::3] if v > 0)} for a, i, k, c in people]
    annotations += [{"id": 60 + n, "image_id": 5, "keypoints": coco17(standing_person(100 + 90 * n, 80, 100)),
                     "iscrowd": 0, "num_keypoints": 17} for n in range(5)]  # 6 people: too many
    captions = [
        {"id": 101, "image_id": 1, "caption": "A man waving hello at the camera."},
        {"id": 102, "image_id": 1, "caption": " a person raising his right hand to greet someone "},
        {"id": 201, "image_id": 2, "caption": "Two people standing next to each other on a street."},
        {"id": 301, "image_id": 3, "caption": "A crowd at a concert."},
        {"id": 501, "image_id": 5, "caption": "Many kids in a line."},
    ]
    keypoints = tmp_path / "person_keypoints_val2017.json"
    keypoints.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1}]}))
    caption_file = tmp_path / "captions_val2017.json"
    caption_file.write_text(json.dumps({"images": images, "annotations": captions}))
    return keypoints, caption_file


def test_coco_gives_one_entry_per_caption_with_body18_people(coco_files):
    report = import_coco(*coco_files)
    assert [e.id for e in report.entries] == ["coco-1-101", "coco-1-102", "coco-2-201"]
    wave, _, pair = report.entries
    assert wave.prompt == "A man waving hello at the camera." and report.entries[1].prompt.startswith("a person")
    assert (wave.people, pair.people, wave.source, wave.action) == (1, 2, "coco", "coco-1")
    assert wave.scene is report.entries[1].scene and (wave.scene.width, wave.scene.height) == (640, 480)
    person = wave.scene.people[0]
    neck, rs, ls = (KEYPOINT_INDEX[k] for k in ("neck", "r_shoulder", "l_shoulder"))
    assert person.visible[neck] and np.allclose(person.xy[neck], (person.xy[rs] + person.xy[ls]) / 2)
    assert wave.view == "front" and wave.profiles == []
    skipped = dict(report.skipped)
    assert "crowd" in skipped["COCO image 3"] and "no caption" in skipped["COCO image 4"]
    assert "more than --max-people" in skipped["COCO image 5"]
    assert "COCO image 2" not in skipped and pair.scene.people[0].bbox()[0] < pair.scene.people[1].bbox()[0]


def test_imported_entries_are_searchable_and_counted(tmp_path, coco_files, minilm_embedder):
    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
    report = import_coco(*coco_files)
    assert import_entries(report.entries, out, embedder=minilm_embedder, progress=False) == 3
    assert import_entries(report.entries, out, embedder=minilm_embedder, progress=False) == 3  # replaces
    index = PoseIndex.open(out, url="")
    stats = index_stats(index.records())
    assert stats["sources"] == {"coco": 3, "synthetic": 6} and stats["entries"] == 9
    hit = index.search(minilm_embedder.encode(["a man waving hello at the camera"])[0], 1, people=1)[0]
    assert (hit.entry.id, hit.entry.source, len(hit.entry.scene.people)) == ("coco-1-101", "coco", 1)
    index.close()


def test_import_needs_an_index_and_an_interrupted_import_changes_nothing(tmp_path, coco_files, minilm_embedder):
    entries = import_coco(*coco_files).entries
    with pytest.raises(IndexMissing, match="python -m pose_db.build"):
        import_entries(entries, tmp_path / "none", embedder=minilm_embedder, progress=False)
    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()

    class Interrupted:
        name, dimension = minilm_embedder.name, minilm_embedder.dimension

        def encode(self, texts):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_entries(entries, out, embedder=Interrupted(), progress=False)
    assert not list(tmp_path.glob(".index.*-*"))  # the half-updated copy is gone
    index = PoseIndex.open(out, url="")
    assert index_stats(index.records())["sources"] == {"synthetic": 6}
    index.close()


@pytest.mark.parametrize("content, message", [
    (None, "Cannot read the COCO keypoints file"),
    ("{not json", "is not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"images": []}', "no 'annotations' list"),
    ('{"images": [{"id": 1}], "annotations": [{"image_id": 1, "num_keypoints": 17}]}', "not in COCO's format"),
])
def test_bad_coco_files_are_refused_with_advice(tmp_path, coco_files, content, message):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    with pytest.raises(PoseError, match=message):
        import_coco(bad, coco_files[1])


def write_pose(path: Path, scene: PoseScene, **extra) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(write_openpose(scene) | extra))


def test_openpose_folder_with_captions_in_json_or_text(tmp_path):
    folder = tmp_path / "poses"
    pair = PoseScene(512, 512, [standing_person(150, 80, 320), standing_person(360, 80, 320)])
    write_pose(folder / "hello.json", PoseScene(512, 512, [standing_person(256, 80, 330, wave=True)]),
               caption="a woman waving hello", action="wave", category="gesture", view="front")
    write_pose(folder / "sub" / "pair.json", pair)
    (folder / "sub" / "pair.txt").write_text("two friends standing together\n\nbest friends side by side\n")
    write_pose(folder / "many.json", pair, captions=["a couple", "", 3])
    write_pose(folder / "silent.json", pair)  # no caption anywhere
    write_pose(folder / "empty.json", PoseScene(512, 512, []), caption="nobody here")
    (folder / "broken.json").write_text("{oops")
    report = import_openpose_folder(folder)
    ids = {e.id: e for e in report.entries}
    assert sorted(ids) == ["openpose-hello-0", "openpose-many-0", "openpose-sub_pair-0", "openpose-sub_pair-1"]
    hello = ids["openpose-hello-0"]
    assert (hello.prompt, hello.action, hello.category, hello.view, hello.source) == (
        "a woman waving hello", "wave", "gesture", "front", "openpose")
    assert ids["openpose-sub_pair-1"].prompt == "best friends side by side" and ids["openpose-sub_pair-0"].people == 2
    assert ids["openpose-many-0"].category == "imported"
    skipped = dict(report.skipped)
    assert "no caption" in skipped["silent.json"] and "no person" in skipped["empty.json"]
    assert "broken.json" in skipped and len(report.skipped) == 3
    with pytest.raises(PoseError, match="is not a folder"):
        import_openpose_folder(tmp_path / "nowhere")


class _Keypoint(NamedTuple):  # the shapes controlnet_aux's detect_poses returns (open_pose/body.py)
    x: float
    y: float


class _Body(NamedTuple):
    keypoints: list


class _Pose(NamedTuple):
    body: _Body


class FakeNetwork:
    """Stands in for controlnet_aux's network (whose weights are not here): one person, or nobody."""

    def __init__(self):
        self.sizes = []

    def detect_poses(self, rgb):
        self.sizes.append(rgb.shape)
        if rgb.mean() > 128:  # a white picture: nobody
            return []
        person = standing_person(0.5, 0.1, 0.8)  # normalised coordinates, as detect_poses gives
        points = [_Keypoint(*person.xy[i]) if i != KEYPOINT_INDEX["l_ear"] else None for i in range(18)]
        return [_Pose(_Body(points))]


def test_image_folder_through_a_detector(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (1536, 1024), "black").save(folder / "dancer.jpg")
    (folder / "dancer.txt").write_text("a dancer in the studio\n")
    Image.new("RGB", (300, 300), "white").save(folder / "wall.png")
    (folder / "wall.txt").write_text("a white wall")
    Image.new("RGB", (300, 300), "black").save(folder / "uncaptioned.png")
    (folder / "fake.jpg").write_bytes(b"not an image")
    (folder / "fake.txt").write_text("a broken file")
    network = FakeNetwork()
    report = import_image_folder(folder, PoseDetector(True, name="fake", _model=network))
    assert [e.id for e in report.entries] == ["detector-dancer-0"]
    entry = report.entries[0]
    assert (entry.source, entry.people, entry.prompt) == ("detector", 1, "a dancer in the studio")
    assert (entry.scene.width, entry.scene.height) == (768, 512)  # long side scaled to 768 for the detector
    assert not entry.scene.people[0].visible[KEYPOINT_INDEX["l_ear"]]
    skipped = dict(report.skipped)
    assert "no person" in skipped["wall.png"] and "no caption" in skipped["uncaptioned.png"]
    assert "not a readable image" in skipped["fake.jpg"]


def test_missing_detector_weights_say_what_to_download(tmp_path):
    with pytest.raises(DetectorMissing, match="body_pose_model.pth") as error:
        PoseDetector.load(tmp_path, kind="openpose").require()
    assert "lllyasviel/Annotators" in str(error.value) and "non-commercial" in str(error.value)
    with pytest.raises(PoseError, match="use blazepose .*openpose or dwpose"):
        PoseDetector.load(tmp_path, kind="yolo")


def test_cli_reports_and_refuses_bad_input(tmp_path, coco_files, capsys):
    assert main(["--dry-run", "coco", str(coco_files[0]), str(coco_files[1])]) == 0
    assert "3 entries to import, 3 items skipped" in capsys.readouterr().err
    assert main(["--index", str(tmp_path / "none"), "coco", str(coco_files[0]), str(coco_files[1])]) == 2
    assert "python -m pose_db.build" in capsys.readouterr().err
    assert main(["images", str(tmp_path), "--weights", str(tmp_path / "w")]) == 2
    assert "pose_detection.tflite" in capsys.readouterr().err  # BlazePose, the default, without its files
    assert main(["images", str(tmp_path), "--detector", "openpose", "--weights", str(tmp_path / "w")]) == 2
    assert "body_pose_model.pth" in capsys.readouterr().err
    assert main(["openpose", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
