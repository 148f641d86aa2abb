"""engine.benchmark: the COCO builder on a synthetic COCO fixture, standard OKS and matching,
CLIP/DINO scoring on tiny random models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from engine.benchmark.build import build_coco, build_dreambench, crop_box, pose_complexity
from engine.benchmark.metrics import SIGMAS, ClipScorer, DinoScorer, keypoint_area, match_oks, oks
from engine.errors import EngineError
from engine.train.dataset import validate_dataset
from pose_db.scene.model import PoseScene
from pose_db.scene.openpose_io import load_openpose, person_from_coco17
from pose_db.scene.skeleton import KEYPOINT_INDEX
from tests.helpers.benchmark import ACTIVE, STAND, coco_person, save_tiny_clip, save_tiny_dino, write_coco


@pytest.fixture
def coco(tmp_path):
    return write_coco(tmp_path / "coco")


def test_build_coco_selects_ranks_and_writes_exact_crops_and_poses(coco, tmp_path):
    kp, cap, images = coco
    out = tmp_path / "bench"
    summary = build_coco(kp, cap, images, out, n=3, max_people=3)
    assert summary["samples"] == 3 and summary["skipped"] == 2  # crowd and 4 people are out
    lines = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    meta = json.loads((out / "bench.json").read_text())
    ids = [m["image_id"] for m in meta["samples"]]
    assert ids == [3, 2, 1]  # one active person > half active > standing
    assert meta["samples"][0]["complexity"] > meta["samples"][1]["complexity"] > meta["samples"][2]["complexity"]
    annotations = json.loads(kp.read_text())["annotations"]
    for line, m in zip(lines, meta["samples"], strict=True):
        found = sorted((a for a in annotations if a["image_id"] == m["image_id"]), key=lambda a: a["id"])
        photo = Image.open(images / f"{m['image_id']:012d}.jpg").convert("RGB")
        assert len(line["references"]) == len(found)
        for ref, a in zip(line["references"], found, strict=True):
            crop = Image.open(out / ref["image"])
            x, y, w, h = a["bbox"]
            box = (math.floor(x), math.floor(y), math.ceil(x + w), math.ceil(y + h))
            assert crop.size == (box[2] - box[0], box[3] - box[1])
            assert np.array_equal(np.asarray(crop), np.asarray(photo.crop(box)))
        scene = load_openpose(out / line["pose"])
        assert (scene.width, scene.height) == (128, 96)
        assert len(scene.people) == len(found)
        for k, (person, a) in enumerate(zip(scene.people, found, strict=True)):
            assert person.subject == k
            for c, name in enumerate(("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder")):
                x, y, v = a["keypoints"][3 * c: 3 * c + 3]
                i = KEYPOINT_INDEX[name]
                assert bool(person.visible[i]) == (v > 0)
                if v:
                    assert tuple(person.xy[i]) == (x, y)
        assert m["areas"] == [a["area"] for a in found]
        assert line["prompt"].startswith("caption ") and line["prompt"].endswith(f"of image {m['image_id']}")
        assert np.array_equal(np.asarray(Image.open(out / line["target"])), np.asarray(Image.open(
            images / f"{m['image_id']:012d}.jpg")))
    records, problems = validate_dataset(out, resolution=64)
    assert len(records) == 3 and not problems
    # deterministic: a rebuild gives the same files
    build_coco(kp, cap, images, tmp_path / "again", n=3)
    assert (tmp_path / "again" / "train.jsonl").read_text() == (out / "train.jsonl").read_text()
    assert build_coco(kp, cap, images, tmp_path / "one", n=1)["samples"] == 1


def test_build_coco_errors_name_the_problem(coco, tmp_path):
    kp, cap, images = coco
    with pytest.raises(EngineError, match="does not exist"):
        build_coco(tmp_path / "nope.json", cap, images, tmp_path / "b")
    with pytest.raises(EngineError, match="No COCO image qualifies"):
        build_coco(kp, cap, images, tmp_path / "b", min_keypoints=18)
    with pytest.raises(EngineError, match="val2017"):
        build_coco(kp, cap, tmp_path, tmp_path / "b")


def test_crop_box_rounds_outward_and_clips():
    assert crop_box([10.4, 5.6, 20.2, 30.1], (128, 96)) == (10, 5, 31, 36)
    assert crop_box([-3, -2, 200, 200], (128, 96)) == (0, 0, 128, 96)


def test_pose_complexity_zero_for_standing_and_grows():
    stand = person_from_coco17([v for dx, dy in STAND for v in (50 + 0 * dx, 10 + dy, 2)])  # vertical limbs
    assert pose_complexity(stand) == pytest.approx(0.0)
    a = person_from_coco17([v for dx, dy in ACTIVE for v in (50 + dx, 10 + dy, 2)])
    assert pose_complexity(a) > 0.5


# ---- OKS ----------------------------------------------------------------------------------------


def _scene(*people):
    return PoseScene(128, 96, list(people))


def _p(points, cx=64, top=20, hidden=()):
    return person_from_coco17(coco_person(points, cx, top, 0, 0, hidden)["keypoints"])


def test_oks_of_a_pose_with_itself_is_one_and_drops_as_joints_move():
    gt = _p(STAND)
    assert oks(gt, gt.copy()) == pytest.approx(1.0)
    assert oks(gt, gt.copy(), area=500.0) == pytest.approx(1.0)
    last = 1.0
    for shift in (1, 2, 4, 8, 16):
        moved = gt.copy()
        moved.xy[KEYPOINT_INDEX["r_wrist"]] += (shift, 0)
        moved.xy[KEYPOINT_INDEX["l_knee"]] += (0, shift)
        value = oks(gt, moved)
        assert value < last
        last = value
    # one joint, the COCO formula by hand: 16 labelled points average, that one exp(-d^2/(2 s^2 k^2))
    moved = gt.copy()
    moved.xy[KEYPOINT_INDEX["r_wrist"]] += (3, 4)
    area = keypoint_area(gt)
    expected = (16 + math.exp(-25 / (2 * area * (2 * 0.062) ** 2))) / 17
    assert oks(gt, moved) == pytest.approx(expected)
    assert not np.isnan(SIGMAS).sum() - 1  # only the neck has no sigma


def test_oks_counts_undetected_labelled_points_and_ignores_unlabelled_ones():
    gt = _p(STAND, hidden=(3,))  # l_ear not labelled
    dt = gt.copy()
    dt.visible[KEYPOINT_INDEX["l_ear"]] = True  # detected where gt has no label: ignored
    assert oks(gt, dt) == pytest.approx(1.0)
    dt.visible[KEYPOINT_INDEX["nose"]] = False  # labelled, not detected: 0 for that point
    assert oks(gt, dt) == pytest.approx(15 / 16)


def test_matching_is_hungarian_and_counts_missing_and_extra_people():
    a, b, c = _p(STAND, cx=20), _p(ACTIVE, cx=64), _p(STAND, cx=105)
    gt = _scene(a, b, c)
    shuffled = _scene(c.copy(), a.copy(), b.copy())
    match = match_oks(gt, shuffled)
    assert match.score == pytest.approx(1.0) and match.missing == match.extra == 0
    assert sorted((i, j) for i, j, _ in match.pairs) == [(0, 1), (1, 2), (2, 0)]
    missing = match_oks(gt, _scene(b.copy(), a.copy()))
    assert missing.score == pytest.approx(2 / 3) and missing.missing == 1 and missing.extra == 0
    extra = match_oks(_scene(a, b), shuffled)
    assert extra.score == pytest.approx(2 / 3) and extra.extra == 1 and extra.missing == 0
    assert match_oks(gt, _scene()).score == 0.0 and match_oks(gt, _scene()).missing == 3
    assert match_oks(_scene(), _scene()).score == 1.0
    with pytest.raises(EngineError, match="one canvas"):
        match_oks(gt, PoseScene(64, 64, []))


def test_matching_beats_greedy_on_a_crossed_case():
    # gt0's nearest detection is d0, but gt1 needs d0 far more: greedy (gt0 first) loses.
    g0, g1 = _p(STAND, cx=60), _p(STAND, cx=66)
    d0, d1 = _p(STAND, cx=63), _p(STAND, cx=56)
    assert oks(g0, d0) > oks(g0, d1)
    greedy = (oks(g0, d0) + oks(g1, d1)) / 2
    hungarian = match_oks(_scene(g0, g1), _scene(d0, d1))
    assert sorted((i, j) for i, j, _ in hungarian.pairs) == [(0, 1), (1, 0)]
    assert hungarian.score == pytest.approx((oks(g0, d1) + oks(g1, d0)) / 2)
    assert hungarian.score > greedy + 0.05


# ---- CLIP / DINO on tiny random models --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return save_tiny_clip(root / "clip"), save_tiny_dino(root / "dino")


def test_clip_and_dino_score_on_tiny_random_models(tiny_models):
    clip_dir, dino_dir = tiny_models
    clip, dino = ClipScorer.load(clip_dir), DinoScorer.load(dino_dir)
    rng = np.random.default_rng(1)
    a = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    b = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    assert clip.clip_i(a, [a.copy()]) == pytest.approx(1.0, abs=1e-5)
    assert dino.dino(a, [a.copy()]) == pytest.approx(1.0, abs=1e-5)
    two = clip.clip_i(a, [a.copy(), b])
    assert two == pytest.approx((1.0 + clip.clip_i(a, [b])) / 2, abs=1e-5) and two < 1.0 - 1e-6
    t1, t2 = clip.clip_t(a, "a dog in the snow"), clip.clip_t(a, "two people 99")
    assert -1.0 <= t1 <= 1.0 and t1 != t2
    assert clip.clip_i(a, []) is None and dino.dino(a, []) is None


def test_missing_models_get_an_error_naming_them(tmp_path, tiny_models):
    with pytest.raises(EngineError, match=r"CLIP model folder .*nope does not exist"):
        ClipScorer.load(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(EngineError, match="DINO model from folder .*broken"):
        DinoScorer.load(broken)
    with pytest.raises(EngineError, match="not in the local hub cache"):
        DinoScorer.load("nobody/not-a-model-xyz")


# ---- DreamBench layout --------------------------------------------------------------------------


def test_build_dreambench_single_and_multi(tmp_path):
    data = tmp_path / "dreambooth" / "dataset"
    for subject in ("backpack", "dog", "teapot"):
        (data / subject).mkdir(parents=True)
        Image.new("RGB", (64, 64), "red").save(data / subject / "00.jpg")
        Image.new("RGB", (64, 64), "blue").save(data / subject / "01.jpg")
    (data / "prompts_and_classes.txt").write_text(
        "Classes\nsubject_name,class\nbackpack,backpack\ndog,dog\nteapot,teapot\n\nPrompts\nObject Prompts\n"
        "prompt_list = [\n'a {0} {1} in the jungle'.format(unique_token, class_token),\n"
        "'a {0} {1} on a table'.format(unique_token, class_token),\n]\nLive Subject Prompts\nprompt_list = [\n"
        "'a {0} {1} swimming'.format(unique_token, class_token),\n]\n")
    summary = build_dreambench(tmp_path / "dreambooth", combinations=2, prompts=25)
    assert summary == {"single": 2 + 1 + 2, "multi": summary["multi"], "out": summary["out"]}
    single = [json.loads(x) for x in (tmp_path / "dreambooth/benchmark/single/train.jsonl").read_text().splitlines()]
    assert [s["prompt"] for s in single] == ["a backpack in the jungle", "a backpack on a table", "a dog swimming",
                                             "a teapot in the jungle", "a teapot on a table"]
    assert single[0]["references"] == [{"image": "dataset/backpack/00.jpg", "name": "backpack"}]
    multi = [json.loads(x) for x in (tmp_path / "dreambooth/benchmark/multi/train.jsonl").read_text().splitlines()]
    assert all(len(m["references"]) == 2 and " and a " in m["prompt"] for m in multi)
    for name in ("single", "multi"):
        records, problems = validate_dataset(tmp_path / "dreambooth/benchmark" / name, resolution=64)
        assert records and not problems
    with pytest.raises(EngineError, match="google/dreambooth"):
        build_dreambench(tmp_path)


def test_build_dreambench_takes_unos_multi_subject_groups(tmp_path):
    data = tmp_path / "db" / "dataset"
    for subject in ("can", "dog"):
        (data / subject).mkdir(parents=True)
        Image.new("RGB", (64, 64), "red").save(data / subject / "00.jpg")
    (data / "prompts_and_classes.txt").write_text(
        "subject_name,class\ncan,can\ndog,dog\nObject Prompts\n'a {0} {1} on a table'.format(unique_token, class_token)\n")
    uno = tmp_path / "dreambench_multiip.json"
    uno.write_text(json.dumps([{"comb_idx": 0, "index": 0, "prompt": "a can and a dog on the beach",
                                "img_path1": "datasets/dreambooth/dataset/can/00.jpg",
                                "img_path2": "datasets/dreambooth/dataset/dog/00.jpg"}]))
    build_dreambench(tmp_path / "db", tmp_path / "out", multi_json=uno)
    multi = [json.loads(x) for x in (tmp_path / "out/multi/train.jsonl").read_text().splitlines()]
    assert multi == [{"prompt": "a can and a dog on the beach", "target": "dataset/can/00.jpg",
                      "references": [{"image": "dataset/can/00.jpg", "name": "can"},
                                     {"image": "dataset/dog/00.jpg", "name": "dog"}]}]
    uno.write_text(json.dumps([{"prompt": "x", "img_path1": "a/cat/01.jpg", "img_path2": "a/dog/00.jpg"}]))
    with pytest.raises(EngineError, match="cat/01.jpg does not exist"):
        build_dreambench(tmp_path / "db", tmp_path / "out2", multi_json=uno)


def _random_coco_people(rng, n, hide=0.2):
    """n random COCO-17 people ([x, y, v] * 17) on a 640x480 image, with an area each."""
    people = []
    for _ in range(n):
        cx, cy, size = rng.uniform(100, 540), rng.uniform(100, 380), rng.uniform(40, 160)
        xy = np.stack([cx + rng.normal(0, size / 3, 17), cy + rng.normal(0, size / 2, 17)], 1)
        v = np.where(rng.random(17) < hide, 0, 2)
        v[5] = 2  # at least one labelled point (COCOeval scores unlabelled people differently)
        people.append((np.concatenate([xy, v[:, None]], 1), float(size * size * rng.uniform(0.5, 1.5))))
    return people


def test_keypoint_ap_matches_pycocotools_cocoeval():
    """Our COCO keypoint AP@[.5:.95] against pycocotools' COCOeval on the same random detections."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from engine.benchmark.metrics import keypoint_ap, oks_matrix

    rng = np.random.default_rng(7)
    gts, dts, images, ours = [], [], [], []
    for image_id in range(1, 25):
        truth = _random_coco_people(rng, int(rng.integers(0, 4)))
        found = [(kp.copy(), None) for kp, _ in truth if rng.random() < 0.8]
        for kp, _ in found:  # detections near the truth, each with its own error scale
            kp[:, :2] += rng.normal(0, rng.choice([1, 4, 12, 30]), (17, 2))
            kp[:, 2] = 1
        found += [(kp, None) for kp, _ in _random_coco_people(rng, int(rng.integers(0, 2)), hide=0)]
        scores = rng.random(len(found)).tolist()
        images.append({"id": image_id, "width": 640, "height": 480})
        for kp, area in truth:
            x, y = kp[kp[:, 2] > 0, 0], kp[kp[:, 2] > 0, 1]
            gts.append({"id": len(gts) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": area,
                        "bbox": [x.min(), y.min(), x.max() - x.min() + 1, y.max() - y.min() + 1],
                        "keypoints": kp.ravel().tolist(), "num_keypoints": int((kp[:, 2] > 0).sum())})
        for (kp, _), score in zip(found, scores, strict=True):
            dts.append({"image_id": image_id, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": score})
        gt_people = [person_from_coco17(kp.ravel().tolist()) for kp, _ in truth]
        dt_people = [person_from_coco17(kp.ravel().tolist()) for kp, _ in found]
        ours.append((oks_matrix(gt_people, dt_people, [a for _, a in truth]).tolist(), scores))
    coco_gt = COCO()
    coco_gt.dataset = {"info": {}, "images": images, "annotations": gts, "categories": [{"id": 1, "name": "person"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        evaluation = COCOeval(coco_gt, coco_gt.loadRes(dts), "keypoints")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    reference = evaluation.stats[0]
    assert 0.05 < reference < 0.95  # the fixture exercises both hits and misses
    assert keypoint_ap(ours) == pytest.approx(reference, abs=1e-9)


def test_keypoint_ap_edge_cases():
    from engine.benchmark.metrics import keypoint_ap

    assert keypoint_ap([]) is None
    assert keypoint_ap([([[1.0]], [0.9])]) == pytest.approx(1.0)  # one perfect detection
    assert keypoint_ap([([[]], [])]) == 0.0  # a person nobody detected
    # a false detection ranked above the true one halves precision at full recall
    assert keypoint_ap([([[0.0, 1.0]], [0.9, 0.5])]) == pytest.approx(0.5)
