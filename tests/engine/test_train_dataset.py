"""The training dataset format: every malformed sample reported by line number, nothing trained on it."""

import json

import pytest
from PIL import Image

from engine.train.dataset import (
    BucketBatchSampler,
    DatasetError,
    buckets,
    load_sample,
    nearest_bucket,
    validate_dataset,
)


def _pose(people=1, subjects=(0,), size=(64, 96)):
    def person(x, subject):
        points = [[x + (i % 3), 10 + 4 * i, 1] for i in range(18)]
        return {"pose_keypoints_2d": sum(points, []), "subject": subject}
    return {"canvas_width": size[0], "canvas_height": size[1],
            "people": [person(10 + 20 * k, subjects[k]) for k in range(people)]}


@pytest.fixture()
def folder(tmp_path):
    for sub in ("images", "refs", "poses"):
        (tmp_path / sub).mkdir()
    Image.new("RGB", (64, 96), (100, 50, 20)).save(tmp_path / "images/ok.png")
    Image.new("RGB", (40, 40), (0, 200, 0)).save(tmp_path / "refs/a.png")
    (tmp_path / "images/broken.png").write_bytes(b"not a png at all")
    (tmp_path / "poses/ok.json").write_text(json.dumps(_pose()))
    (tmp_path / "poses/two.json").write_text(json.dumps(_pose(2, (0, 1))))
    (tmp_path / "poses/bad.json").write_text('{"people": "nobody"}')
    (tmp_path / "poses/wide.json").write_text(json.dumps(_pose(size=(200, 100))))
    return tmp_path


def _write(folder, lines):
    (folder / "train.jsonl").write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                                                for line in lines))


GOOD = {"prompt": "a green thing", "target": "images/ok.png",
        "references": [{"image": "refs/a.png", "name": "Gus"}], "pose": "poses/ok.json"}


def test_each_malformed_kind_is_reported_with_its_line(folder):
    _write(folder, [
        GOOD,                                                                      # 1 ok
        {**GOOD, "target": "images/missing.png"},                                  # 2 missing file
        {**GOOD, "target": "images/broken.png"},                                   # 3 unreadable image
        {**GOOD, "pose": "poses/bad.json"},                                        # 4 bad pose
        {**GOOD, "references": [{"image": "refs/a.png"}] * 5},                     # 5 more than 4 references
        {**GOOD, "pose": "poses/two.json"},                                        # 6 subject index out of range
        "{not json",                                                               # 7 bad JSON
        {**GOOD, "prompt": ""},                                                    # 8 empty prompt
        {**GOOD, "pose": "poses/wide.json"},                                       # 9 pose canvas aspect
        {"prompt": "text only", "target": "images/ok.png"},                        # 10 ok (no refs, no pose)
    ])
    with pytest.raises(DatasetError) as caught:
        validate_dataset(folder, resolution=64)
    found = {p.line: p.message for p in caught.value.problems}
    assert sorted(found) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert "does not exist" in found[2]
    assert "cannot be read" in found[3]
    assert "OpenPose" in found[4]
    assert "at most 4" in found[5]
    assert "subject 1" in found[6] and "1 reference" in found[6]
    assert "JSON" in found[7]
    assert "prompt" in found[8]
    assert "aspect" in found[9]
    assert "train.jsonl:6:" in str(caught.value)


def test_skip_invalid_trains_on_the_valid_lines_only(folder):
    _write(folder, [GOOD, {**GOOD, "target": "images/missing.png"}, {"prompt": "x", "target": "images/ok.png"}])
    records, problems = validate_dataset(folder, resolution=64, skip_invalid=True)
    assert [r.line for r in records] == [1, 3]
    assert [p.line for p in problems] == [2]
    # every batch the sampler ever gives comes from the valid records
    sampler = iter(BucketBatchSampler(records, 1, seed=0))
    assert {records[next(sampler)[0]].line for _ in range(10)} == {1, 3}


def test_a_dataset_with_only_bad_samples_is_refused_even_when_skipping(folder):
    _write(folder, [{**GOOD, "target": "images/missing.png"}])
    with pytest.raises(DatasetError):
        validate_dataset(folder, resolution=64, skip_invalid=True)


def test_buckets_keep_the_area_and_follow_the_aspect():
    choices = buckets(512)
    assert (512, 512) in choices
    assert all(w % 16 == 0 and h % 16 == 0 and 0.8 < w * h / 512 ** 2 < 1.2 for w, h in choices)
    assert nearest_bucket((1000, 500), choices)[0] > nearest_bucket((1000, 500), choices)[1]
    assert nearest_bucket((500, 1000), choices)[0] < nearest_bucket((500, 1000), choices)[1]


def test_loaded_sample_has_bucket_sized_target_and_pose_map(folder):
    _write(folder, [GOOD])
    (record,), _ = validate_dataset(folder, resolution=64)
    sample = load_sample(record, reference_long_side=64)
    assert sample.target.size == record.bucket
    assert sample.pose_map.size == record.bucket
    assert sample.reference_images[0].size == (64, 64)  # UNO-style: long side, whole tokens
    assert sample.names == ["Gus"]


def test_sampler_shards_processes_and_resumes_exactly(folder):
    _write(folder, [GOOD] * 6)
    records, _ = validate_dataset(folder, resolution=64)
    one = iter(BucketBatchSampler(records, 1, seed=3, rank=0, world=2))
    other = iter(BucketBatchSampler(records, 1, seed=3, rank=1, world=2))
    first = [next(one)[0] for _ in range(3)]
    second = [next(other)[0] for _ in range(3)]
    assert not set(first) & set(second)  # one epoch: the two processes see different samples
    straight = iter(BucketBatchSampler(records, 2, seed=5))
    batches = [next(straight) for _ in range(7)]
    resumed = iter(BucketBatchSampler(records, 2, seed=5, start=4))
    assert [next(resumed) for _ in range(3)] == batches[4:]
