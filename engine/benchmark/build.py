"""Benchmark builders: the COCO complex-pose benchmark and DreamBench's single/multi-subject sets.

A benchmark is a training-dataset folder (``train.jsonl``, see ``engine.train.dataset``) plus
``bench.json``: ``{"kind", "samples": [...]}`` with one metadata record per line (COCO: image
id, per-person COCO ``area``, complexity; DreamBench: subjects and prompt index).

**COCO complex-pose selection** (deterministic): an image qualifies when it has no crowd
annotation, 1 to ``max_people`` person annotations, every one with at least ``min_keypoints``
labelled keypoints, a caption, and a size the pose model accepts. Its *complexity* is the mean,
over its people and their labelled limbs (upper arms, forearms, thighs, shins), of the angle in
radians between the limb and straight down (a standing pose with arms hanging scores 0).
Images are ranked by complexity (ties by image id) and the top ``n`` are kept. The caption is
the image's caption chosen by ``random.Random(seed * 1_000_003 + image_id)``.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import EngineError
from pose_db.scene.model import CANVAS_MAX, CANVAS_MIN, Person, PoseScene
from pose_db.scene.openpose_io import dumps_openpose, person_from_coco17
from pose_db.scene.skeleton import KEYPOINT_INDEX

META_FILE = "bench.json"
# Limbs scored for complexity: (from, to) BODY-18 names; straight down is the standing direction.
_LIMBS = [("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
          ("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle")]


def pose_complexity(person: Person) -> float:
    """Mean angle (radians, 0..pi) of the labelled limbs from straight down; 0 with no limb."""
    angles = []
    for a, b in _LIMBS:
        i, j = KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]
        if person.visible[i] and person.visible[j]:
            v = person.xy[j] - person.xy[i]
            norm = float(np.hypot(*v))
            if norm > 0:
                angles.append(float(np.arccos(np.clip(v[1] / norm, -1.0, 1.0))))
    return float(np.mean(angles)) if angles else 0.0


def _read(path: str | Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise EngineError(f"{what} file {path} does not exist.") from error
    except json.JSONDecodeError as error:
        raise EngineError(f"{what} file {path} is not JSON ({error}).") from error


def build_coco(keypoints: str | Path, captions: str | Path, images: str | Path, out: str | Path, *,
               n: int = 1000, max_people: int = 3, min_keypoints: int = 8, seed: int = 0) -> dict:
    """Write the COCO complex-pose benchmark to ``out``; returns a summary dict."""
    kp, caps = _read(keypoints, "COCO keypoints"), _read(captions, "COCO captions")
    images, out = Path(images), Path(out)
    try:
        by_id = {img["id"]: img for img in kp["images"]}
        people: dict[int, list[dict]] = {}
        for a in kp["annotations"]:
            people.setdefault(a["image_id"], []).append(a)
        captions_of: dict[int, list[tuple[int, str]]] = {}
        for c in caps["annotations"]:
            captions_of.setdefault(c["image_id"], []).append((c["id"], str(c["caption"]).strip()))
    except (KeyError, TypeError) as error:
        raise EngineError(f"{keypoints} / {captions}: not COCO's annotation format ({error!r}).") from error
    candidates, skipped = [], 0
    for image_id in sorted(people):
        found, img = sorted(people[image_id], key=lambda a: a["id"]), by_id.get(image_id)
        ok = (img is not None and captions_of.get(image_id) and 1 <= len(found) <= max_people
              and not any(a.get("iscrowd") for a in found)
              and all(a.get("num_keypoints", 0) >= min_keypoints for a in found)
              and CANVAS_MIN <= img["width"] <= CANVAS_MAX and CANVAS_MIN <= img["height"] <= CANVAS_MAX)
        if not ok:
            skipped += 1
            continue
        persons = [person_from_coco17(a["keypoints"], subject=k) for k, a in enumerate(found)]
        score = float(np.mean([pose_complexity(p) for p in persons]))
        candidates.append((-score, image_id, found, persons))
    candidates.sort(key=lambda c: (c[0], c[1]))
    chosen = candidates[:n]
    if not chosen:
        raise EngineError(f"No COCO image qualifies (1-{max_people} people, each >= {min_keypoints} keypoints, "
                          f"no crowd, a caption); {skipped} skipped.")
    for sub in ("images", "refs", "poses"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    lines, meta = [], []
    for neg, image_id, found, persons in chosen:
        img = by_id[image_id]
        src = images / img["file_name"]
        if not src.is_file():
            raise EngineError(f"COCO image {image_id}: {src} does not exist; --images must be the folder of "
                              f"the split's pictures (e.g. val2017/).")
        target = f"images/{Path(img['file_name']).name}"
        shutil.copyfile(src, out / target)
        photo = Image.open(src).convert("RGB")
        refs = []
        for k, a in enumerate(found):
            ref = f"refs/{image_id}_{k}.png"
            photo.crop(crop_box(a["bbox"], photo.size)).save(out / ref)
            refs.append({"image": ref})
        pose = f"poses/{image_id}.json"
        (out / pose).write_text(dumps_openpose(PoseScene(img["width"], img["height"], persons)))
        options = sorted(captions_of[image_id])
        prompt = options[random.Random(seed * 1_000_003 + image_id).randrange(len(options))][1]
        lines.append({"prompt": prompt, "target": target, "references": refs, "pose": pose})
        meta.append({"image_id": image_id, "areas": [float(a.get("area") or 0.0) or None for a in found],
                     "complexity": -neg})
    _write(out, lines, {"kind": "coco", "samples": meta, "max_people": max_people,
                        "min_keypoints": min_keypoints, "seed": seed})
    return {"samples": len(lines), "candidates": len(candidates), "skipped": skipped, "out": str(out)}


def crop_box(bbox: list[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """COCO ``[x, y, w, h]`` as a PIL crop box: outward to whole pixels, clipped to the image."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + w)), size[0]), min(int(np.ceil(y + h)), size[1])
    if x1 <= x0 or y1 <= y0:
        raise EngineError(f"COCO box {bbox} is empty inside a {size[0]}x{size[1]} image.")
    return x0, y0, x1, y1


def _write(out: Path, lines: list[dict], meta: dict) -> None:
    (out / "train.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (out / META_FILE).write_text(json.dumps(meta, indent=1))


# ---- DreamBench -------------------------------------------------------------------------------

_LIVE = {"dog", "cat"}
_PROMPT = re.compile(r"""['"](.*?)['"]\s*\.format\(\s*unique_token\s*,\s*class_token\s*\)""")


def read_dreambench(root: Path) -> tuple[dict[str, str], list[str], list[str]]:
    """(subject -> class, object prompts, live-subject prompts) from google/dreambooth's
    ``dataset/prompts_and_classes.txt`` (``{0} {1}`` placeholders kept)."""
    text_path = next((p for p in (root / "dataset" / "prompts_and_classes.txt", root / "prompts_and_classes.txt")
                      if p.is_file()), None)
    if text_path is None:
        raise EngineError(f"{root} is not a copy of google/dreambooth: no dataset/prompts_and_classes.txt.")
    text = text_path.read_text()
    classes = {}
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) == 2 and parts[0] != "subject_name" and (text_path.parent / parts[0]).is_dir():
            classes[parts[0]] = parts[1]
    live_at = text.lower().find("live subject prompts")
    object_prompts = _PROMPT.findall(text[:live_at] if live_at >= 0 else text)
    live_prompts = _PROMPT.findall(text[live_at:]) if live_at >= 0 else []
    if not classes or not object_prompts:
        raise EngineError(f"{text_path}: found {len(classes)} subject folders and {len(object_prompts)} prompts; "
                          "expected the dreambooth layout (subject_name,class lines and prompt_list entries).")
    return classes, object_prompts, live_prompts or object_prompts


def build_dreambench(root: str | Path, out: str | Path | None = None, *, combinations: int = 30,
                     prompts: int = 25, seed: int = 0, multi_json: str | Path | None = None) -> dict:
    """``out/single`` (every subject x its 25 prompts, first image as reference) and ``out/multi``.

    ``multi``: with ``multi_json`` (UNO's ``dreambench_multiip.json``: entries with ``prompt``,
    ``img_path1``, ``img_path2``, ``comb_idx``), exactly its groups, each path resolved by its
    ``<subject>/<file>`` tail in this copy; without it, ``combinations`` subject pairs drawn with
    ``seed`` x ``prompts`` prompts ("a {class1} and a {class2} <scene>", the first subject's list).
    The ``target`` of a DreamBench line is the first subject's first image (no ground truth exists).
    """
    root = Path(root)
    out = Path(out) if out else root / "benchmark"
    classes, object_prompts, live_prompts = read_dreambench(root)
    data = next(p for p in (root / "dataset", root) if (p / "prompts_and_classes.txt").is_file())

    def first_image(subject: str) -> Path:
        files = sorted(p for p in (data / subject).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            raise EngineError(f"{data / subject} has no images.")
        return files[0]

    def phrase(template: str, text: str) -> str:
        return " ".join(template.replace("{0} {1}", text).replace("{0}", "").replace("{1}", text).split())

    single, single_meta = [], []
    for subject in sorted(classes):
        plist = live_prompts if classes[subject] in _LIVE else object_prompts
        for k, template in enumerate(plist[:prompts]):
            single.append({"prompt": phrase(template, classes[subject]), "target": _rel(first_image(subject), data),
                           "references": [{"image": _rel(first_image(subject), data), "name": classes[subject]}]})
            single_meta.append({"subjects": [subject], "prompt_index": k})
    subjects = sorted(classes)
    pairs = [(a, b) for i, a in enumerate(subjects) for b in subjects[i + 1:]]
    random.Random(seed).shuffle(pairs)
    multi, multi_meta = [], []
    if multi_json is not None:
        multi, multi_meta = _uno_multi(Path(multi_json), data, classes)
        pairs = []
    for a, b in pairs[:combinations]:
        plist = live_prompts if classes[a] in _LIVE else object_prompts
        for k, template in enumerate(plist[:prompts]):
            multi.append({"prompt": phrase(template, f"{classes[a]} and a {classes[b]}"),
                          "target": _rel(first_image(a), data),
                          "references": [{"image": _rel(first_image(a), data), "name": classes[a]},
                                         {"image": _rel(first_image(b), data), "name": classes[b]}]})
            multi_meta.append({"subjects": [a, b], "prompt_index": k})
    for name, lines, meta in (("single", single, single_meta), ("multi", multi, multi_meta)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for line in lines:  # paths relative to the bench folder: link the dataset in
            for ref in line["references"]:
                ref["image"] = f"dataset/{ref['image']}"
            line["target"] = f"dataset/{line['target']}"
        link = folder / "dataset"
        if not link.exists():
            link.symlink_to(data.resolve(), target_is_directory=True)
        _write(folder, lines, {"kind": f"dreambench-{name}", "samples": meta, "seed": seed})
    return {"single": len(single), "multi": len(multi), "out": str(out)}


def _uno_multi(path: Path, data: Path, classes: dict[str, str]) -> tuple[list[dict], list[dict]]:
    entries = _read(path, "UNO dreambench_multiip")
    if not isinstance(entries, list):
        raise EngineError(f"{path}: expected a JSON list of groups (UNO's dreambench_multiip.json layout).")
    lines, meta = [], []
    for k, e in enumerate(entries):
        try:
            paths = [Path(str(e["img_path1"])), Path(str(e["img_path2"]))]
            prompt = str(e["prompt"])
        except (KeyError, TypeError) as error:
            raise EngineError(f"{path}: group {k} lacks {error}; expected prompt, img_path1, img_path2.") from error
        refs = []
        for p in paths:
            local = data / p.parent.name / p.name
            if not local.is_file():
                raise EngineError(f"{path}: group {k} names {p}, but {local} does not exist in this copy.")
            refs.append({"image": _rel(local, data), "name": classes.get(p.parent.name, p.parent.name)})
        lines.append({"prompt": prompt, "target": refs[0]["image"], "references": refs})
        meta.append({"subjects": [p.parent.name for p in paths], "comb_idx": e.get("comb_idx"),
                     "index": e.get("index")})
    return lines, meta


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()
