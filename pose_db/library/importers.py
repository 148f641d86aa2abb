"""Real data for the RAG-Pose library: COCO, OpenPose JSON folders, images via a detector.

Each importer yields `LibraryEntry`s (one per caption; every caption of a picture links to the
same skeletons) with ``source`` set to "coco", "openpose" or "detector";
`pose_db.index.grow` embeds them into an existing index (``python -m pose_db.importers``).
Ids are stable (``coco-<image>-<caption>``, ``openpose-<file>-<k>``), so importing the same
data again replaces rather than duplicates.

Captions for a folder: a ``"caption"``/``"prompt"`` (or ``"captions"`` list) key inside the JSON,
or a text file next to it with the same stem (one caption per line). Files without a caption,
without a person, or that do not parse are skipped and listed in the report, never half-added.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import (
    CANVAS_MAX,
    CANVAS_MIN,
    Person,
    PoseError,
    PoseScene,
)
from pose_db.scene.openpose_io import load_openpose, person_from_coco17
from pose_db.scene.skeleton import KEYPOINT_INDEX

from .detector import PoseDetector

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_DETECT_SIZE = 768  # long side the detector sees; OpenPose itself works at 368 px
_MIN_DETECTED_KEYPOINTS = 6  # fewer points than this is a fragment, not a person to learn from


@dataclass
class ImportReport:
    """What an importer read: entries made and everything it skipped, with the reason."""

    entries: list[LibraryEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)

    def summary(self) -> str:
        lines = [f"{len(self.entries)} entries to import, {len(self.skipped)} items skipped"]
        lines += [f"  skipped {what}: {why}" for what, why in self.skipped[:20]]
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


# -- COCO -------------------------------------------------------------------------------------


def import_coco(keypoints_json: str | Path, captions_json: str | Path, *, min_keypoints: int = 8,
                max_people: int = 4, category: str = "photo") -> ImportReport:
    """Entries from COCO ``person_keypoints_*.json`` and ``captions_*.json`` of the same split.

    Args:
        min_keypoints: people with fewer labelled keypoints are left out (background people).
        max_people: pictures with more people (after that) are skipped: crowds are not poses.
        category: the category recorded for these entries.
    """
    people_file, caption_file = _read_json(keypoints_json, "COCO keypoints"), _read_json(captions_json, "COCO captions")
    try:
        return _coco_report(people_file, caption_file, keypoints_json, captions_json, min_keypoints, max_people, category)
    except (KeyError, TypeError, AttributeError) as error:
        raise PoseError(f"{keypoints_json} / {captions_json}: a record is not in COCO's format ({error!r} missing "
                        f"or mistyped); give the unmodified COCO annotation files.") from error


def _coco_report(people_file: dict, caption_file: dict, keypoints_json: str | Path, captions_json: str | Path,
                 min_keypoints: int, max_people: int, category: str) -> ImportReport:
    images = {img["id"]: img for img in _field(people_file, "images", keypoints_json)}
    captions: dict[int, list[tuple[int, str]]] = {}
    for c in _field(caption_file, "annotations", captions_json):
        captions.setdefault(c["image_id"], []).append((c["id"], str(c["caption"]).strip()))
    people: dict[int, list[dict]] = {}
    crowded = set()
    for a in _field(people_file, "annotations", keypoints_json):
        if a.get("iscrowd"):
            crowded.add(a["image_id"])
        elif a.get("num_keypoints", 0) >= min_keypoints:
            people.setdefault(a["image_id"], []).append(a)
    report = ImportReport()
    for image_id in sorted(people):
        image, found = images.get(image_id), sorted(people[image_id], key=lambda a: a["id"])
        why = _coco_problem(image, found, image_id in crowded, captions.get(image_id), max_people)
        if why:
            report.skipped.append((f"COCO image {image_id}", why))
            continue
        scene = PoseScene(image["width"], image["height"], [person_from_coco17(a["keypoints"]) for a in found])
        for caption_id, caption in sorted(captions[image_id]):
            report.entries.append(_entry(f"coco-{image_id}-{caption_id}", caption, f"coco-{image_id}",
                                         f"COCO image {image_id}", category, scene, "coco"))
    return report


def _coco_problem(image: dict | None, found: list[dict], crowd: bool, captions: list | None, max_people: int) -> str:
    if image is None:
        return "not in the keypoints file's image list"
    if crowd:
        return "has a crowd annotation"
    if not captions:
        return "has no caption (give the captions file of the same split)"
    if len(found) > max_people:
        return f"{len(found)} people, more than --max-people {max_people}"
    if not (CANVAS_MIN <= image["width"] <= CANVAS_MAX and CANVAS_MIN <= image["height"] <= CANVAS_MAX):
        return f"size {image['width']}x{image['height']} is outside {CANVAS_MIN}-{CANVAS_MAX} px"
    return ""


# -- OpenPose JSON folders --------------------------------------------------------------------


def import_openpose_folder(folder: str | Path, *, category: str = "imported") -> ImportReport:
    """Entries from every ``*.json`` under `folder` (OpenPose JSON with captions, see above).

    A JSON file may also carry ``"action"``, ``"action_name"``, ``"category"`` and ``"view"``.
    """
    root = _folder(folder)
    report = ImportReport()
    for path in sorted(root.rglob("*.json")):
        name = path.relative_to(root).as_posix()
        try:
            scene = load_openpose(path)
            extra = json.loads(path.read_text(encoding="utf-8"))
        except (PoseError, OSError, ValueError) as error:
            report.skipped.append((name, str(error)))
            continue
        extra = extra if isinstance(extra, dict) else {}
        prompts = _captions(path, extra)
        why = "no caption: add a \"caption\" key or a .txt file with the same name" if not prompts else (
            "no person in it" if not scene.people else "")
        if why:
            report.skipped.append((name, why))
            continue
        stem = _slug(path.relative_to(root).with_suffix("").as_posix())
        action = str(extra.get("action") or f"openpose-{stem}")
        for k, prompt in enumerate(prompts):
            report.entries.append(_entry(f"openpose-{stem}-{k}", prompt, action, str(extra.get("action_name") or stem),
                                         str(extra.get("category") or category), scene, "openpose",
                                         view=extra.get("view")))
    return report


# -- images through a pose detector -----------------------------------------------------------


def import_image_folder(folder: str | Path, detector: PoseDetector, *, category: str = "imported") -> ImportReport:
    """Entries from images under `folder`, each with a same-stem ``.txt`` caption file, posed by `detector`."""
    from PIL import Image, UnidentifiedImageError

    root = _folder(folder)
    report = ImportReport()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        name = path.relative_to(root).as_posix()
        prompts = _captions(path, {})
        if not prompts:
            report.skipped.append((name, "no caption: add a .txt file with the same name"))
            continue
        try:
            with Image.open(path) as image:
                rgb = _detector_input(image.convert("RGB"))
        except (OSError, UnidentifiedImageError) as error:
            report.skipped.append((name, f"not a readable image ({error})"))
            continue
        scene = detector.detect(rgb, min_keypoints=_MIN_DETECTED_KEYPOINTS)
        if not scene.people:
            report.skipped.append((name, "the detector found no person"))
            continue
        stem = _slug(path.relative_to(root).with_suffix("").as_posix())
        for k, prompt in enumerate(prompts):
            report.entries.append(_entry(f"detector-{stem}-{k}", prompt, f"detector-{stem}", stem, category,
                                         scene, "detector"))
    return report


def _detector_input(image: Any) -> np.ndarray:
    scale = min(1.0, _DETECT_SIZE / max(image.size))
    if scale < 1.0:
        image = image.resize((max(CANVAS_MIN, round(image.width * scale)), max(CANVAS_MIN, round(image.height * scale))))
    if min(image.size) < CANVAS_MIN:
        raise OSError(f"image is {image.width}x{image.height}; at least {CANVAS_MIN} px per side are needed")
    return np.asarray(image, dtype=np.uint8)


# -- shared helpers ---------------------------------------------------------------------------


def estimate_view(scene: PoseScene) -> str:
    """A camera view from the skeletons: back when the face is hidden, side/three-quarter by how
    narrow the shoulders are against the torso, "mixed" when people disagree."""
    views = {_person_view(p) for p in scene.people} - {None}
    return views.pop() if len(views) == 1 else ("mixed" if views else "front")


def _person_view(person: Person) -> str | None:
    k, v = KEYPOINT_INDEX, person.visible
    if not (v[k["r_shoulder"]] and v[k["l_shoulder"]]):
        return None
    if not (v[k["nose"]] or v[k["r_eye"]] or v[k["l_eye"]]):
        return "back"
    shoulders = np.linalg.norm(person.xy[k["r_shoulder"]] - person.xy[k["l_shoulder"]])
    hips = [person.xy[k[h]] for h in ("r_hip", "l_hip") if v[k[h]]]
    if not hips:
        return None
    torso = np.linalg.norm(np.mean(hips, axis=0) - (person.xy[k["r_shoulder"]] + person.xy[k["l_shoulder"]]) / 2)
    ratio = shoulders / max(torso, 1e-6)
    return "side" if ratio < 0.35 else "three_quarter" if ratio < 0.6 else "front"


def _entry(id_: str, prompt: str, action: str, action_name: str, category: str, scene: PoseScene, source: str,
           view: Any = None) -> LibraryEntry:
    return LibraryEntry(id=id_, prompt=prompt, action=action, action_name=action_name, category=category,
                        people=len(scene.people), view=str(view or estimate_view(scene)), pose=scene,
                        profiles=[], source=source)


def _captions(path: Path, data: dict) -> list[str]:
    found = data.get("captions") or [data.get("caption") or data.get("prompt") or ""]
    if not any(isinstance(c, str) and c.strip() for c in found) and path.with_suffix(".txt").is_file():
        found = path.with_suffix(".txt").read_text(encoding="utf-8").splitlines()
    return [c.strip() for c in found if isinstance(c, str) and c.strip()]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "item"


def _folder(folder: str | Path) -> Path:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise PoseError(f"{root} is not a folder; give the folder that holds the files to import.")
    return root


def _read_json(path: str | Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise PoseError(f"Cannot read the {what} file {path}: {error.strerror or error}. Give the JSON file "
                        f"from COCO's annotations_trainval2017.zip.") from error
    except ValueError as error:
        raise PoseError(f"The {what} file {path} is not JSON ({error}); give the file from COCO's annotations.") from error
    if not isinstance(data, dict):
        raise PoseError(f"The {what} file {path} is not a COCO annotation file (expected a JSON object).")
    return data


def _field(data: dict, key: str, path: str | Path) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise PoseError(f"{path} has no {key!r} list; is it a COCO annotation file (person_keypoints_*.json / "
                        f"captions_*.json)?")
    return value
