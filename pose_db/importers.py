"""Grow the RAG-Pose library with real data: COCO, OpenPose JSON folders, images via a detector.

    python -m pose_db.importers coco KEYPOINTS.json CAPTIONS.json [--index DIR | --chroma-url URL]
    python -m pose_db.importers openpose FOLDER [--index DIR | --chroma-url URL]
    python -m pose_db.importers images FOLDER [--detector openpose|dwpose] [--weights DIR] [...]

Each importer yields `LibraryEntry`s (one per caption; every caption of a picture links to the
same skeletons) with ``source`` set to "coco", "openpose" or "detector"; `import_entries` embeds
them into the existing index. Ids are stable (``coco-<image>-<caption>``, ``openpose-<file>-<k>``),
so importing the same data again replaces rather than duplicates. An embedded index is updated
in a copy that is swapped in when complete, like a build.

Captions for a folder: a ``"caption"``/``"prompt"`` (or ``"captions"`` list) key inside the JSON,
or a text file next to it with the same stem (one caption per line). Files without a caption,
without a person, or that do not parse are skipped and listed in the report, never half-added.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .entry import LibraryEntry
from .openpose_io import load_openpose, person_from_coco17
from .scene import CANVAS_MAX, CANVAS_MIN, MAX_PEOPLE, Person, PoseError, PoseScene
from .skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
ANNOTATORS_REPO = "https://huggingface.co/lllyasviel/Annotators"
_DETECT_SIZE = 768  # long side the detector sees; OpenPose itself works at 368 px


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


class DetectorMissing(PoseError):
    """The pose detector's weights (or its packages) are not here; the message says what to get."""


def default_weights_dir() -> Path:
    """``ASTRA_ANNOTATORS``, else ``~/.cache/astra-studio/annotators``."""
    configured = os.environ.get("ASTRA_ANNOTATORS")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "astra-studio" / "annotators"


def load_detector(kind: str = "openpose", weights: str | Path | None = None, device: str = "cpu") -> Any:
    """controlnet_aux's body detector from a local weights folder; `DetectorMissing` says what to download.

    openpose: ``body_pose_model.pth`` from lllyasviel/Annotators (CMU OpenPose weights are licensed
    for non-commercial use only). dwpose: controlnet_aux's DWPose needs mmpose/mmdet/mmcv and
    ``dw-ll_ucoco_384.pth`` + ``yolox_l_8x8_300e_coco.pth`` in the folder.
    """
    folder = Path(weights).expanduser() if weights else default_weights_dir()
    if kind == "openpose":
        body = folder / "body_pose_model.pth"
        if not body.is_file():
            raise DetectorMissing(
                f"The OpenPose detector needs its weights: download body_pose_model.pth from {ANNOTATORS_REPO} "
                f"(e.g. `huggingface-cli download lllyasviel/Annotators body_pose_model.pth --local-dir {folder}`) "
                f"and put it at {body}, or pass --weights FOLDER. Note: the CMU OpenPose weights are for "
                f"non-commercial use only.")
        from controlnet_aux.open_pose import OpenposeDetector
        from controlnet_aux.open_pose.body import Body

        return OpenposeDetector(Body(str(body))).to(device)  # body only: hands and face are not needed
    if kind == "dwpose":
        return _load_dwpose(folder, device)
    raise PoseError(f"Unknown detector {kind!r}: use openpose or dwpose.")


def _load_dwpose(folder: Path, device: str) -> Any:
    pose_ckpt, det_ckpt = folder / "dw-ll_ucoco_384.pth", folder / "yolox_l_8x8_300e_coco.pth"
    try:
        import mmdet  # noqa: F401  (controlnet_aux's DWPose runs on OpenMMLab)
        import mmpose  # noqa: F401
    except ImportError as error:
        raise DetectorMissing("controlnet_aux's DWPose needs mmcv, mmdet and mmpose (`mim install mmcv mmdet "
                              "mmpose`), which are not installed; use --detector openpose instead.") from error
    missing = [p.name for p in (pose_ckpt, det_ckpt) if not p.is_file()]
    if missing:
        raise DetectorMissing(f"DWPose needs {', '.join(missing)} in {folder} (dw-ll_ucoco_384.pth from "
                              f"huggingface.co/yzd-v/DWPose, the YOLOX-L COCO checkpoint from OpenMMLab).")
    from controlnet_aux.dwpose import DWposeDetector

    return DWposeDetector(det_ckpt=str(det_ckpt), pose_ckpt=str(pose_ckpt), device=device)


def import_image_folder(folder: str | Path, detector: Any, *, category: str = "imported") -> ImportReport:
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
        scene = detect_scene(detector, rgb)
        if not scene.people:
            report.skipped.append((name, "the detector found no person"))
            continue
        stem = _slug(path.relative_to(root).with_suffix("").as_posix())
        for k, prompt in enumerate(prompts):
            report.entries.append(_entry(f"detector-{stem}-{k}", prompt, f"detector-{stem}", stem, category,
                                         scene, "detector"))
    return report


def detect_scene(detector: Any, rgb: np.ndarray, min_keypoints: int = 6) -> PoseScene:
    """The people a controlnet_aux detector finds in an RGB uint8 image, as a pose scene."""
    height, width = rgb.shape[:2]
    people = []
    for pose in detector.detect_poses(rgb):
        xy, visible = np.zeros((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS, bool)
        for i, point in enumerate(pose.body.keypoints[:NUM_KEYPOINTS]):
            if point is not None:  # detect_poses gives BODY-18 points normalised to the image
                xy[i], visible[i] = (point.x * width, point.y * height), True
        if visible.sum() >= min_keypoints:
            people.append(Person(xy, visible))
    people.sort(key=lambda p: p.bbox()[0])
    return PoseScene(width, height, people[:MAX_PEOPLE])


def _detector_input(image: Any) -> np.ndarray:
    scale = min(1.0, _DETECT_SIZE / max(image.size))
    if scale < 1.0:
        image = image.resize((max(CANVAS_MIN, round(image.width * scale)), max(CANVAS_MIN, round(image.height * scale))))
    if min(image.size) < CANVAS_MIN:
        raise OSError(f"image is {image.width}x{image.height}; at least {CANVAS_MIN} px per side are needed")
    return np.asarray(image, dtype=np.uint8)


# -- into the index ---------------------------------------------------------------------------


def import_entries(entries: Iterable[LibraryEntry], path: str | Path | None = None, *, url: str | None = None,
                   name: str | None = None, embedder: Any = None, progress: bool = True) -> int:
    """Embed `entries` into the existing index (folder `path` or server `url`); returns how many.

    An embedded index is copied, updated and swapped in, so an interrupted import changes nothing.
    """
    from .build import fill
    from .index_swap import build_lock, index_folder, publish_folder, staged_folder
    from .embed import Embedder
    from .index import PoseIndex, resolve_url

    entries = list(entries)
    embedder = embedder or Embedder()
    url = resolve_url(path, url)
    with build_lock(url, name, path, wait=False):
        if url:
            index = PoseIndex.open(url=url, name=name)
            added = fill(index, entries, embedder, total=len(entries), progress=progress, desc="Importing")
            index.publish()
            return added
        out = index_folder(path)
        PoseIndex.open(out, url="", name=name).close()  # IndexMissing: build the library first
        with staged_folder(out, copy_current=True) as staging:
            index = PoseIndex.open(staging, url="", name=name)
            added = fill(index, entries, embedder, total=len(entries), progress=progress, desc="Importing")
            publish_folder(index, staging)
    return added


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
                        people=len(scene.people), view=str(view or estimate_view(scene)), scene=scene,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_db.importers", description="Import real poses into the index.")
    parser.add_argument("--index", default=None, help="index folder (default: $ASTRA_POSE_INDEX or the cache folder)")
    parser.add_argument("--chroma-url", default=None, help="a Chroma server instead (default: $ASTRA_CHROMA_URL)")
    parser.add_argument("--category", default=None, help="category recorded for the entries")
    parser.add_argument("--dry-run", action="store_true", help="read and report, import nothing")
    kinds = parser.add_subparsers(dest="kind", required=True)
    coco = kinds.add_parser("coco", help="COCO person keypoints + captions")
    coco.add_argument("keypoints", type=Path, help="person_keypoints_*.json")
    coco.add_argument("captions", type=Path, help="captions_*.json of the same split")
    coco.add_argument("--min-keypoints", type=int, default=8)
    coco.add_argument("--max-people", type=int, default=4)
    openpose = kinds.add_parser("openpose", help="a folder of OpenPose JSON files with captions")
    openpose.add_argument("folder", type=Path)
    images = kinds.add_parser("images", help="a folder of images with .txt captions, through a pose detector")
    images.add_argument("folder", type=Path)
    images.add_argument("--detector", choices=["openpose", "dwpose"], default="openpose")
    images.add_argument("--weights", type=Path, default=None, help="detector weights folder (default: $ASTRA_ANNOTATORS)")
    args = parser.parse_args(argv)
    extra = {"category": args.category} if args.category else {}
    try:
        if args.kind == "coco":
            report = import_coco(args.keypoints, args.captions, min_keypoints=args.min_keypoints,
                                 max_people=args.max_people, **extra)
        elif args.kind == "openpose":
            report = import_openpose_folder(args.folder, **extra)
        else:
            report = import_image_folder(args.folder, load_detector(args.detector, args.weights), **extra)
        print(report.summary(), file=sys.stderr)
        if not args.dry_run and report.entries:
            added = import_entries(report.entries, args.index, url=args.chroma_url)
            print(f"imported {added} entries", file=sys.stderr)
    except PoseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
