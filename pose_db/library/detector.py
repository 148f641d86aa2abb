"""Pose from a photo: one detector interface for every caller, three interchangeable backends.

The studio's "Pose from a photo", the image importer and the evaluation's OKS metric all call
`PoseDetector.detect(image, min_keypoints) -> PoseScene` (the `Detector` protocol: anything with
``available``, ``reason``, ``name`` and that ``detect`` fits). Backends, chosen by ``kind``:

- ``"blazepose"`` (the default): MediaPipe BlazePose on LiteRT (`pose_db.library.blazepose`),
  CPU only, no torch, model files committed under ``assets/blazepose`` (Apache-2.0): it works on
  a fresh install with no download. Several people per photo (one detection each).
- ``"openpose"``: the CMU body network ControlNet was trained with, through controlnet_aux; its
  skeletons are BODY-18 already. Its weights (``body_pose_model.pth``, ~200 MB, from
  ``lllyasviel/Annotators``; CMU's licence: non-commercial use only) are used only when present.
- ``"dwpose"``: controlnet_aux's DWPose, which needs OpenMMLab packages not installed by default.

A detector that cannot load is `available=False` with a `reason` that says what to get; torch
and controlnet_aux are imported only for the OpenPose/DWPose kinds, and only when weights exist.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pose_db import env
from pose_db.scene.model import (
    CANVAS_MAX,
    CANVAS_MIN,
    MAX_PEOPLE,
    Person,
    PoseError,
    PoseScene,
)
from pose_db.scene.openpose_io import write_openpose
from pose_db.scene.skeleton import NUM_KEYPOINTS

ANNOTATORS_REPO = "lllyasviel/Annotators"
BODY_WEIGHTS = "body_pose_model.pth"
DWPOSE_WEIGHTS = ("dw-ll_ucoco_384.pth", "yolox_l_8x8_300e_coco.pth")
KINDS = ("blazepose", "openpose", "dwpose")
DEFAULT_KIND = "blazepose"
MAX_PHOTO_PIXELS = 100_000_000  # larger decodes are refused before they fill the memory


@runtime_checkable
class Detector(Protocol):
    """What a caller (studio, importer, evaluation) needs of a pose detector."""

    available: bool
    reason: str
    name: str

    def detect(self, image: Any, min_keypoints: int = 1) -> PoseScene: ...


class DetectorMissing(PoseError):
    """The pose detector's weights (or its packages) are not here; the message says what to get."""


def default_weights_dir() -> Path:
    """``ASTRA_ANNOTATORS``, else ``~/.cache/astra-studio/annotators``."""
    configured = env.get("ASTRA_ANNOTATORS")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "astra-studio" / "annotators"


@dataclass
class PoseDetector:
    """Finds BODY-18 skeletons in a photo (implements `Detector`).

    Attributes:
        available: False when the weights (or controlnet_aux) are missing.
        reason: for an unavailable detector, the sentence telling the user what to do.
        name: what is loaded, for the UI.
        kind: "blazepose", "openpose" or "dwpose" ("" for a hand-built one).
    """

    available: bool
    reason: str = ""
    name: str = ""
    _model: Any = None  # controlnet_aux-style: ``detect_poses(rgb)`` -> poses with normalised keypoints
    kind: str = ""
    _backend: Callable[[np.ndarray], list[Person]] | None = None  # rgb -> people in photo pixels
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, source: str | os.PathLike | None = None, *, kind: str = DEFAULT_KIND, device: str = "cpu",
             local_files_only: bool = True, model: str = "full", refine: bool = True,
             tiles: int = 1) -> PoseDetector:
        """The detector of `kind`, else an unavailable one that says why.

        Args:
            source: blazepose: a folder holding the .tflite files (default ``assets/blazepose``);
                openpose/dwpose: a folder holding the weights, or a hub repo (OpenPose only); default
                ``ASTRA_ANNOTATORS`` or the cache folder (`default_weights_dir`), then
                ``lllyasviel/Annotators`` in the hub cache.
            kind: "blazepose" (default), "openpose" or "dwpose".
            device: torch device for OpenPose/DWPose ("cuda" on a GPU machine); BlazePose runs on the CPU.
            local_files_only: only look in the local Hugging Face cache (no download).
            model: BlazePose landmark model, "full" (default) or "lite" (faster, less accurate).
            refine: BlazePose runs its landmark model a second time on the region its first
                landmarks give (MediaPipe's tracking step); False: one pass, faster.
            tiles: BlazePose's detection windows besides the whole photo: 0, 1 (default) or 2 (more
                people found in groups, more false ones, slower; see `blazepose.BlazePose`).
        """
        if kind not in KINDS:
            raise PoseError(f"Unknown detector {kind!r}: use blazepose (built in, the default), "
                            f"openpose or dwpose (controlnet_aux, weights needed).")
        if kind == "blazepose":
            return _load_blazepose(source, model, refine, tiles)
        if kind == "dwpose":
            return _load_dwpose(Path(source).expanduser() if source else default_weights_dir(), device)
        weights = _find_openpose_weights(source, local_files_only)
        if weights is None:
            folder = source if source and Path(source).is_dir() else default_weights_dir()
            return cls.unavailable(
                f"Pose-from-photo with OpenPose needs controlnet_aux's weights ({BODY_WEIGHTS}, ~200 MB): run "
                f"`huggingface-cli download {ANNOTATORS_REPO} {BODY_WEIGHTS} --local-dir {folder}`, or "
                f"pass a folder holding that file; or use the built-in blazepose detector. Note: the CMU "
                f"OpenPose weights are for non-commercial use only.", kind="openpose")
        try:
            from controlnet_aux.open_pose import Body, OpenposeDetector
        except ImportError as err:  # controlnet_aux or its torchvision pairing is broken
            return cls.unavailable(f"Pose-from-photo needs controlnet_aux, which failed to import ({err}). "
                                   f"Reinstall requirements.txt.", kind="openpose")
        body = Body(str(weights))  # body only: hands and face are not needed
        body.to(device)
        return cls(True, name=f"OpenPose body ({weights.name}, {device})", _model=OpenposeDetector(body),
                   kind="openpose")

    @classmethod
    def unavailable(cls, reason: str, kind: str = "") -> PoseDetector:
        return cls(False, reason=reason, kind=kind)

    def require(self) -> PoseDetector:
        """This detector, or `DetectorMissing` with its reason."""
        if not self.available:
            raise DetectorMissing(self.reason)
        return self

    def detect(self, image: Any, min_keypoints: int = 1) -> PoseScene:
        """The people in `image` as a scene the size of the photo.

        `image` is a PIL image (any mode: grey, RGBA, palette are converted), an RGB/RGBA/grey
        uint8 array, or a path to an image file. People with fewer than `min_keypoints` visible
        points are dropped; the rest are ordered left to right (at most `MAX_PEOPLE`). Photos
        beyond the canvas limit are scaled down with their skeletons. Raises `PoseError` with a
        sentence for what cannot be a photo (too small, not an image, empty).
        """
        self.require()
        rgb = photo_array(image)
        height, width = rgb.shape[:2]
        with self._lock:  # one network call at a time: interpreters are not re-entrant
            if self._backend is not None:
                found = self._backend(rgb)
            else:
                found = [person_from_keypoints(pose.body.keypoints, width, height)
                         for pose in self._model.detect_poses(rgb)]
        people = [p for p in found if p.visible.sum() >= max(1, min_keypoints)]
        people.sort(key=lambda p: p.bbox()[0])
        return _within_canvas(width, height, people[:MAX_PEOPLE])


def photo_array(image: Any) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from a PIL image, an array or a file path; `PoseError` otherwise."""
    if isinstance(image, (str, os.PathLike)):
        image = _open_photo(Path(image))
    if hasattr(image, "convert"):
        if image.width * image.height > MAX_PHOTO_PIXELS:
            raise PoseError(f"The photo is {image.width}x{image.height}; give one under "
                            f"{MAX_PHOTO_PIXELS // 1_000_000} megapixels.")
        image = image.convert("RGB")
    try:
        rgb = np.asarray(image)
    except Exception as err:  # numpy cannot make anything of it
        raise PoseError(f"Pose-from-photo needs an image, got {type(image).__name__}.") from err
    if rgb.dtype == object or rgb.dtype.kind in "USV":
        raise PoseError(f"Pose-from-photo needs an image, got an array of {rgb.dtype} values.")
    if rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (1, 3, 4)):
        raise PoseError(f"Pose-from-photo needs an RGB image (height x width x 3), got an array of shape {rgb.shape}.")
    if rgb.dtype != np.uint8:
        if not np.issubdtype(rgb.dtype, np.number) or not np.isfinite(rgb).all():
            raise PoseError("Pose-from-photo needs an image of numbers 0-255 (uint8).")
        rgb = np.clip(rgb * 255.0 if rgb.max(initial=0) <= 1.0 else rgb, 0, 255).astype(np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    elif rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    elif rgb.shape[2] == 4:
        rgb = rgb[..., :3]
    height, width = rgb.shape[:2]
    if min(width, height) < CANVAS_MIN:
        raise PoseError(f"The photo is {width}x{height}; give one at least {CANVAS_MIN} pixels on each side.")
    return np.ascontiguousarray(rgb)


def _open_photo(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise PoseError(f"No photo at {path}: give the path of an image file.")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PHOTO_PIXELS:
                raise PoseError(f"{path.name} is {image.width}x{image.height}; give a photo under "
                                f"{MAX_PHOTO_PIXELS // 1_000_000} megapixels.")
            image.load()
            return image.copy()
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise PoseError(f"{path.name} is not an image Pillow can read (PNG, JPEG, WebP...): {err}") from err
    except OSError as err:  # truncated or corrupt data
        raise PoseError(f"{path.name} could not be read as an image ({err}); it may be truncated or corrupt.") from err


def _load_blazepose(source: str | os.PathLike | None, model: str, refine: bool, tiles: int) -> PoseDetector:
    from .blazepose import BlazePose, BlazePoseError, to_body18

    try:
        network = BlazePose(source, model=model, refine=refine, tiles=tiles)
    except BlazePoseError as err:
        return PoseDetector.unavailable(str(err), kind="blazepose")

    def backend(rgb: np.ndarray) -> list[Person]:
        height, width = rgb.shape[:2]
        return [to_body18(found, width, height) for found in network(rgb)]

    extras = ("" if refine else ", one pass") + ("" if tiles == 1 else f", tiles {tiles}")
    return PoseDetector(True, name=f"BlazePose {model} (MediaPipe, LiteRT on CPU{extras})",
                        kind="blazepose",
                        _backend=backend, _model=network)


def person_from_keypoints(keypoints: list, width: int, height: int) -> Person:
    """controlnet_aux keypoints (BODY-18 order, normalised to the image, None = not found) → Person."""
    xy, visible = np.zeros((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS, dtype=bool)
    for i, point in enumerate(keypoints[:NUM_KEYPOINTS]):
        if point is not None:
            xy[i], visible[i] = (point.x * width, point.y * height), True
    return Person(xy=xy, visible=visible)


def _find_openpose_weights(source: str | os.PathLike | None, local_files_only: bool) -> Path | None:
    folder = Path(source).expanduser() if source else default_weights_dir()
    if folder.is_dir() or source is not None and not _looks_like_repo(str(source)):
        path = folder / BODY_WEIGHTS
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(str(source or ANNOTATORS_REPO), BODY_WEIGHTS, local_files_only=local_files_only))
    except Exception:  # not cached, offline, or no such repo: all mean "not available"
        return None


def _looks_like_repo(text: str) -> bool:
    return text.count("/") == 1 and not text.startswith((".", "/", "~"))


def _load_dwpose(folder: Path, device: str) -> PoseDetector:
    try:
        import mmdet  # noqa: F401  (controlnet_aux's DWPose runs on OpenMMLab)
        import mmpose  # noqa: F401
    except ImportError:
        return PoseDetector.unavailable("controlnet_aux's DWPose needs mmcv, mmdet and mmpose (`mim install mmcv "
                                        "mmdet mmpose`), which are not installed; use the blazepose detector "
                                        "instead.", kind="dwpose")
    pose_ckpt, det_ckpt = (folder / name for name in DWPOSE_WEIGHTS)
    missing = [p.name for p in (pose_ckpt, det_ckpt) if not p.is_file()]
    if missing:
        return PoseDetector.unavailable(f"DWPose needs {', '.join(missing)} in {folder} (dw-ll_ucoco_384.pth from "
                                        f"huggingface.co/yzd-v/DWPose, the YOLOX-L COCO checkpoint from OpenMMLab).",
                                        kind="dwpose")
    from controlnet_aux.dwpose import DWposeDetector

    model = DWposeDetector(det_ckpt=str(det_ckpt), pose_ckpt=str(pose_ckpt), device=device)
    return PoseDetector(True, name=f"DWPose ({device})", _model=model, kind="dwpose")


def _within_canvas(width: int, height: int, people: list[Person]) -> PoseScene:
    """The scene of a photo; one larger than the canvas limit is scaled down, skeletons with it."""
    scale = min(1.0, CANVAS_MAX / max(width, height))
    if scale == 1.0:
        return PoseScene(width, height, people)
    people = [Person(p.xy * scale, p.visible.copy()) for p in people]
    return PoseScene(max(CANVAS_MIN, int(width * scale)), max(CANVAS_MIN, int(height * scale)), people)


def main(argv: list[str] | None = None) -> int:
    """``python -m pose_db.detect PHOTO [--out POSE.json]``: the OpenPose JSON of the people in a photo."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m pose_db.detect",
                                     description="Print the OpenPose JSON (BODY-18, photo pixels) of the people in a photo.")
    parser.add_argument("photo", help="an image file (PNG, JPEG, WebP, ...)")
    parser.add_argument("--out", default=None, help="write the JSON to this file instead of printing it")
    parser.add_argument("--detector", choices=KINDS, default=DEFAULT_KIND)
    parser.add_argument("--model", choices=("full", "lite"), default="full", help="BlazePose landmark model")
    parser.add_argument("--weights", default=None, help="model folder (default: assets/blazepose, or $ASTRA_ANNOTATORS)")
    parser.add_argument("--min-keypoints", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        photo = photo_array(args.photo)  # a bad photo is reported before any model loads
        detector = PoseDetector.load(args.weights, kind=args.detector, model=args.model).require()
        scene = detector.detect(photo, min_keypoints=args.min_keypoints)
        text = json.dumps(write_openpose(scene))
        if args.out:
            Path(args.out).write_text(text + "\n")
        else:
            print(text)
    except PoseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # --out not writable
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(scene.people)} {'person' if len(scene.people) == 1 else 'people'} found by {detector.name}",
          file=sys.stderr)
    return 0
