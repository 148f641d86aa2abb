"""BlazePose on LiteRT: people in a photo, offline, on a CPU, as BODY-18 skeletons.

The models are MediaPipe's (Apache-2.0, ``assets/blazepose/``, re-derived from the npm package
``@mediapipe/pose`` by ``scripts/fetch_blazepose.py``). This module reproduces the parts of
MediaPipe's pose graph (``pose_detection_cpu``, ``pose_detection_to_roi``,
``pose_landmark_by_roi_cpu``) that a still photo needs, in numpy + OpenCV, and runs the two
networks with ``ai-edge-litert``; no torch, no mediapipe package:

1. **Detector** (``pose_detection.tflite``, 1x224x224x3 in [-1, 1], the photo letterboxed):
   2254 SSD anchors (`ssd_anchors`) x 12 values = a box (centre, size; it is the *face* box) and
   4 alignment keypoints (0 mid-hip, 1 a point on the full-body circle, 2 mid-shoulder, 3 a
   point on the upper-body circle), plus one logit per anchor. Decoded (`decode_detections`),
   sigmoid score >= 0.5, then MediaPipe's weighted non-maximum suppression (IoU 0.3, `weighted_nms`).
2. **Region of interest** per detection (`detection_roi`): centred on the mid-hip, side
   2 x |mid-hip -> full-body point| x 1.25, rotated so the hip->body-circle vector points up
   (the body upright in the crop).
3. **Landmarks** (``pose_landmark_{lite,full}.tflite``, 1x256x256x3 in [0, 1] of the rotated
   crop): 39 x (x, y, z, visibility logit, presence logit) in crop pixels, plus a pose-presence
   score; the first 33 are BlazePose's body landmarks, 33/34 give a refined region (used for a
   second pass, as MediaPipe does between video frames). Projected back to photo pixels.
4. **BODY-18** (`to_body18`, table `BODY18_FROM_BLAZEPOSE`): a point is visible when its
   visibility and presence are >= `VISIBILITY_THRESHOLD` and it lies inside the photo; the neck
   is the mid-shoulder, visible when both shoulders are.

Known limits (measured in ``benchmarks/detector_quality.py``): the detector is face-anchored,
so people whose face is hidden (seen from behind, head cut off) are often missed; people much
smaller than ~1/10 of the photo's longer side are not found; overlapping people in a crowd
can yield one skeleton for two; one landmark pass per person (no temporal smoothing).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_db.scene.model import Person, PoseError
from pose_db.scene.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "blazepose"
DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILES = {"lite": "pose_landmark_lite.tflite", "full": "pose_landmark_full.tflite"}

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
MIN_DETECTION_SCORE = 0.5  # pose_detection_cpu.pbtxt: min_score_thresh
TILE_FRACTION = 2 / 3  # side of the smaller detection windows / the photo's short side
CROP_MIN_SIDE = 48  # no windows for photos under 2x this on their short side
NMS_IOU = 0.3  # pose_detection_cpu.pbtxt: min_suppression_threshold
ROI_SCALE = 1.25  # pose_detection_to_roi.pbtxt: scale_x / scale_y
MIN_PRESENCE = 0.5  # pose_landmark_by_roi_cpu.pbtxt: pose presence threshold
VISIBILITY_THRESHOLD = 0.5  # MediaPipe's drawing utilities hide points below this
MAX_DETECTIONS = 10
HEAD_PER_TORSO = 0.45  # suppression box side / torso length (a head is ~0.4 of the neck-hip distance)
SAME_NOSE, SAME_BODY = 0.2, 0.3  # `_same_person`: one person found twice, in torso lengths

# BlazePose's 33 body landmarks (MediaPipe's PoseLandmark enum). "left" is the person's own left.
BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
_BP = {name: i for i, name in enumerate(BLAZEPOSE_NAMES)}

# BODY-18 joint <- BlazePose landmark, joint by joint. The neck (BODY-18 index 1) has no
# BlazePose twin: it is the mean of the two shoulders (11, 12), as OpenPose's neck sits there.
# Eyes are BlazePose's eye centres (2, 5), not the inner/outer corners. BlazePose's hips are
# the hip joints, as OpenPose's are (COCO's hips sit a little higher and wider, within the
# hip's OKS sigma). Hands (17-22), heels (29, 30), toes (31, 32) and the mouth (9, 10) have no
# BODY-18 place and are dropped.
BODY18_FROM_BLAZEPOSE: dict[str, str] = {
    "nose": "nose",                 # 0  <- 0
    "r_shoulder": "right_shoulder",  # 2  <- 12
    "r_elbow": "right_elbow",        # 3  <- 14
    "r_wrist": "right_wrist",        # 4  <- 16
    "l_shoulder": "left_shoulder",   # 5  <- 11
    "l_elbow": "left_elbow",         # 6  <- 13
    "l_wrist": "left_wrist",         # 7  <- 15
    "r_hip": "right_hip",            # 8  <- 24
    "r_knee": "right_knee",          # 9  <- 26
    "r_ankle": "right_ankle",        # 10 <- 28
    "l_hip": "left_hip",             # 11 <- 23
    "l_knee": "left_knee",           # 12 <- 25
    "l_ankle": "left_ankle",         # 13 <- 27
    "r_eye": "right_eye",            # 14 <- 5
    "l_eye": "left_eye",             # 15 <- 2
    "r_ear": "right_ear",            # 16 <- 8
    "l_ear": "left_ear",             # 17 <- 7
}
BODY18_SOURCE: tuple[int, ...] = tuple(
    -1 if name == "neck" else _BP[BODY18_FROM_BLAZEPOSE[name]]
    for name in sorted(KEYPOINT_INDEX, key=KEYPOINT_INDEX.get))  # -1: the neck, derived


class BlazePoseError(PoseError):
    """The BlazePose model files are missing or broken; the message says how to get them."""


@dataclass
class Roi:
    """A square region of the photo in pixels, rotated by `rotation` radians (clockwise on screen)."""

    cx: float
    cy: float
    size: float
    rotation: float

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Points in the region's unit square ((0, 0) top-left, (1, 1) bottom-right) -> photo pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        d = (np.asarray(uv, np.float64) - 0.5) * self.size
        return np.stack([c * d[..., 0] - s * d[..., 1] + self.cx, s * d[..., 0] + c * d[..., 1] + self.cy], -1)

    def crop_matrix(self, side: int) -> np.ndarray:
        """The 2x3 affine matrix that maps photo pixels to a side x side crop of this region."""
        src = self.to_image(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).astype(np.float32)
        dst = np.array([[0, 0], [side, 0], [0, side]], np.float32)
        import cv2

        return cv2.getAffineTransform(src, dst)


@dataclass
class Detection:
    """One detector hit: score, face box (x0, y0, x1, y1) and 4 alignment keypoints, in photo pixels."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray  # (4, 2)


@dataclass
class Landmarks:
    """BlazePose's 33 body landmarks of one person, in photo pixels."""

    xy: np.ndarray  # (33, 2)
    visibility: np.ndarray  # (33,) probability the point is in view and not occluded
    presence: np.ndarray  # (33,) probability the point is inside the photo
    score: float  # pose presence
    roi: Roi


# -- the detector ----------------------------------------------------------------------------


def ssd_anchors(size: int = DETECTOR_SIZE) -> np.ndarray:
    """BlazePose detector's anchor centres, (2254, 2) in [0, 1], in the network's output order.

    MediaPipe's SsdAnchorsCalculator with pose_detection_cpu.pbtxt's options: 5 layers, strides
    8, 16, 32, 32, 32, offset 0.5, aspect ratio 1 plus one interpolated scale, fixed anchor size
    (every anchor 1x1): layers of the same stride share a grid, 2 anchors per layer and cell.
    """
    strides = [8, 16, 32, 32, 32]
    centres, layer = [], 0
    while layer < len(strides):
        same = 0
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        cells = math.ceil(size / strides[layer])
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], -1)
        centres.append(np.repeat(grid, 2 * same, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


_ANCHORS = ssd_anchors()


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float = MIN_DETECTION_SCORE,
                      anchors: np.ndarray = _ANCHORS, size: int = DETECTOR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N,) and boxes+keypoints (N, 12) in [0, 1] of the network's input, for scores >= `min_score`.

    TensorsToDetectionsCalculator: values are (x_centre, y_centre, w, h, kx0, ky0, ... kx3, ky3)
    in input pixels relative to the anchor; scores are logits clipped to +-100 then a sigmoid.
    Rows: (x0, y0, x1, y1, kx0, ky0, ..., kx3, ky3).

    The model's own box has a fixed size (44.7/224 of the input for every anchor and photo,
    checked): only its centre (near the face) says anything. The box written here is a square
    around that centre, as wide as `HEAD_PER_TORSO` x the detection's torso (mid-hip keypoint 0 to
    mid-shoulder keypoint 2), so that suppression can tell apart people who stand close together.
    """
    raw_boxes = raw_boxes.reshape(-1, 12).astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0)))
    keep = scores >= min_score
    raw, anc, scores = raw_boxes[keep], anchors[keep].astype(np.float64), scores[keep]
    cx, cy = raw[:, 0] / size + anc[:, 0], raw[:, 1] / size + anc[:, 1]
    points = raw[:, 4:].reshape(-1, 4, 2) / size + anc[:, None, :]
    half = HEAD_PER_TORSO / 2 * np.hypot(*(points[:, 2] - points[:, 0]).T)
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half], -1)
    return scores, np.concatenate([boxes, points.reshape(-1, 8)], -1)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(scores: np.ndarray, rows: np.ndarray, iou: float = NMS_IOU,
                 limit: int = MAX_DETECTIONS) -> list[tuple[float, np.ndarray]]:
    """MediaPipe's WEIGHTED non-maximum suppression: each kept detection is the score-weighted
    mean of the candidates overlapping the best one by more than `iou`, with the best one's score."""
    order = np.argsort(-scores, kind="stable")
    scores, rows = scores[order], rows[order]
    out: list[tuple[float, np.ndarray]] = []
    alive = np.ones(len(scores), dtype=bool)
    while alive.any() and len(out) < limit:
        best = int(np.flatnonzero(alive)[0])
        group = alive & (_iou(rows[best, :4], rows[:, :4]) > iou)
        group[best] = True
        weights = scores[group][:, None]
        out.append((float(scores[best]), (rows[group] * weights).sum(0) / weights.sum()))
        alive &= ~group
    return out


def detection_roi(keypoints: np.ndarray) -> Roi:
    """The landmark model's region from a detection's alignment keypoints (photo pixels).

    AlignmentPointsRectsCalculator (start keypoint 0, end 1, target angle 90 degrees) then
    RectTransformationCalculator (scale 1.25, square long side): centre = mid-hip, side = twice
    the mid-hip -> body-circle distance, rotated so that vector points straight up.
    """
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    size = 2.0 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE
    return Roi(float(x0), float(y0), float(size), _rotation(x0, y0, x1, y1))


def _rotation(x0: float, y0: float, x1: float, y1: float) -> float:
    angle = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    return float(angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi)))


# -- the runtime -----------------------------------------------------------------------------


def _interpreter(path: Path, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise BlazePoseError(f"BlazePose needs the LiteRT runtime: `pip install ai-edge-litert` ({err}).") from err
    try:
        with _quiet_stderr():
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise BlazePoseError(f"{path.name} is not a valid model ({err}); run `python scripts/fetch_blazepose.py` "
                             f"to restore the BlazePose files.") from err
    return interpreter


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 while LiteRT starts: its C++ core prints "INFO: Created TensorFlow
    Lite XNNPACK delegate for CPU." there, which no setting turns off and which would sit in front
    of a CLI's one-line answer."""
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters, some test runners)
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class BlazePose:
    """MediaPipe BlazePose (detector + landmark model) for still photos, several people each.

    Args:
        folder: where the .tflite files are (default ``assets/blazepose``).
        model: "full" (default: more accurate) or "lite" (about twice as fast).
        threads: CPU threads for LiteRT (default: all cores, at most 4).
        refine: run the landmark model a second time on the region its own landmarks give
            (MediaPipe's tracking step), which tightens badly aligned detections.
        tiles: detection windows besides the whole photo (`detection_windows`): 0 none (MediaPipe's
            single pass), 1 (default) squares of the short side, 2 also smaller squares. The
            whole-photo pass misses most people of a group (it was trained on photos of one
            person); on the library figures, 3-person scenes: 24 % found with 0, 31 % with 1,
            44 % with 2, at ~1x / 1.5x / 5x the time and with more false or duplicate people.
    """

    def __init__(self, folder: str | os.PathLike | None = None, model: str = "full", threads: int | None = None,
                 refine: bool = True, tiles: int = 1):
        if model not in LANDMARK_FILES:
            raise BlazePoseError(f"Unknown BlazePose model {model!r}: use {' or '.join(LANDMARK_FILES)}.")
        self.folder = Path(folder).expanduser() if folder else ASSETS_DIR
        missing = [n for n in (DETECTOR_FILE, LANDMARK_FILES[model]) if not (self.folder / n).is_file()]
        if missing:
            raise BlazePoseError(f"BlazePose's {', '.join(missing)} are missing from {self.folder}: run "
                                 f"`python scripts/fetch_blazepose.py` (it needs npm) or restore assets/blazepose.")
        threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.model, self.refine, self.tiles = model, refine, tiles
        self._detector = _interpreter(self.folder / DETECTOR_FILE, threads)
        self._landmarker = _interpreter(self.folder / LANDMARK_FILES[model], threads)
        self._check_shapes()

    def _check_shapes(self) -> None:
        det_in = tuple(self._detector.get_input_details()[0]["shape"])
        lm_in = tuple(self._landmarker.get_input_details()[0]["shape"])
        det_out = sorted(tuple(d["shape"]) for d in self._detector.get_output_details())
        if det_in != (1, DETECTOR_SIZE, DETECTOR_SIZE, 3) or det_out != [(1, 2254, 1), (1, 2254, 12)]:
            raise BlazePoseError(f"{DETECTOR_FILE} is not BlazePose's pose detector (input {det_in}).")
        if lm_in != (1, LANDMARK_SIZE, LANDMARK_SIZE, 3):
            raise BlazePoseError(f"{LANDMARK_FILES[self.model]} is not a BlazePose landmark model (input {lm_in}).")
        outs = {d["name"]: d for d in self._landmarker.get_output_details()}
        self._lm_index = outs["Identity"]["index"]
        self._flag_index = outs["Identity_1"]["index"]
        det_outs = {tuple(d["shape"])[-1]: d["index"] for d in self._detector.get_output_details()}
        self._box_index, self._score_index = det_outs[12], det_outs[1]

    # the two stages ---------------------------------------------------------------------------

    def detect_people(self, rgb: np.ndarray, min_score: float = MIN_DETECTION_SCORE) -> list[Detection]:
        """Detector + weighted NMS on an RGB uint8 photo: at most `MAX_DETECTIONS`, best first.

        The detector sees the whole photo, then (with ``tiles``) overlapping square windows
        (`detection_windows`): on the whole photo alone it misses most people of a group.
        Hits from all windows are suppressed together.
        """
        height, width = rgb.shape[:2]
        windows = detection_windows(width, height, self.tiles)
        scores, rows = [], []
        for x0, y0, x1, y1 in windows:
            s, r = self._detect_window(rgb[y0:y1, x0:x1], min_score)
            r[:, 0::2] += x0
            r[:, 1::2] += y0
            scores.append(s)
            rows.append(r)
        return [Detection(score, row[:4], row[4:].reshape(4, 2))
                for score, row in weighted_nms(np.concatenate(scores), np.concatenate(rows))]

    def _detect_window(self, rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and rows (N, 12) in pixels of `rgb`, for every anchor scoring `min_score` or more."""
        import cv2

        height, width = rgb.shape[:2]
        scale = DETECTOR_SIZE / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad_x, pad_y = (DETECTOR_SIZE - size[0]) // 2, (DETECTOR_SIZE - size[1]) // 2
        tensor = np.full((DETECTOR_SIZE, DETECTOR_SIZE, 3), -1.0, np.float32)  # black letterbox, as MediaPipe's
        tensor[pad_y:pad_y + size[1], pad_x:pad_x + size[0]] = small.astype(np.float32) / 127.5 - 1.0
        self._detector.set_tensor(self._detector.get_input_details()[0]["index"], tensor[None])
        self._detector.invoke()
        scores, rows = decode_detections(self._detector.get_tensor(self._box_index),
                                         self._detector.get_tensor(self._score_index), min_score)
        rows = rows * DETECTOR_SIZE
        rows[:, 0::2] = (rows[:, 0::2] - pad_x) * (width / size[0])
        rows[:, 1::2] = (rows[:, 1::2] - pad_y) * (height / size[1])
        return scores, rows

    def landmarks(self, rgb: np.ndarray, roi: Roi) -> Landmarks:
        """The landmark model on one region of the photo."""
        import cv2

        source, shrink = rgb, roi.size / (1.5 * LANDMARK_SIZE)
        if shrink > 1.0:  # average the photo down first: a bilinear crop of a large region aliases
            small = (max(1, round(rgb.shape[1] / shrink)), max(1, round(rgb.shape[0] / shrink)))
            source = cv2.resize(rgb, small, interpolation=cv2.INTER_AREA)
            sx, sy = small[0] / rgb.shape[1], small[1] / rgb.shape[0]
            matrix = roi.crop_matrix(LANDMARK_SIZE) @ np.diag([1 / sx, 1 / sy, 1.0])
        else:
            matrix = roi.crop_matrix(LANDMARK_SIZE)
        crop = cv2.warpAffine(source, matrix, (LANDMARK_SIZE, LANDMARK_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._landmarker.set_tensor(self._landmarker.get_input_details()[0]["index"],
                                    (crop.astype(np.float32) / 255.0)[None])
        self._landmarker.invoke()
        raw = self._landmarker.get_tensor(self._lm_index).reshape(39, 5).astype(np.float64)
        flag = float(np.asarray(self._landmarker.get_tensor(self._flag_index)).ravel()[0])
        xy = roi.to_image(raw[:, :2] / LANDMARK_SIZE)
        sig = lambda v: 1.0 / (1.0 + np.exp(-np.clip(v, -60, 60)))  # noqa: E731
        return Landmarks(xy=xy, visibility=sig(raw[:, 3]), presence=sig(raw[:, 4]), score=flag, roi=roi)

    def __call__(self, rgb: np.ndarray, min_score: float = MIN_DETECTION_SCORE) -> list[Landmarks]:
        """Every person found in an RGB uint8 photo (H, W, 3): their 33 landmarks each, best first."""
        candidates: list[tuple[float, Landmarks]] = []
        for det in self.detect_people(rgb, min_score):
            found = self.landmarks(rgb, detection_roi(det.keypoints))
            if found.score < MIN_PRESENCE:
                continue
            if self.refine:
                again = self.landmarks(rgb, landmarks_roi(found))
                if again.score >= MIN_PRESENCE:
                    found = again
            candidates.append((det.score * found.score, found))
        people: list[Landmarks] = []
        for _, found in sorted(candidates, key=lambda c: -c[0]):
            if not any(_same_person(found, other) for other in people):
                people.append(found)
        return people


def detection_windows(width: int, height: int, levels: int = 1) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) windows the detector looks at: the whole photo; with `levels` >= 1 squares
    of its short side along the long side; with 2 also squares of `TILE_FRACTION` of the short
    side, overlapping by half in both directions."""
    windows = [(0, 0, width, height)]
    for side in (min(width, height), round(TILE_FRACTION * min(width, height)))[:levels]:
        if side < 2 * CROP_MIN_SIDE:
            continue
        xs, ys = _starts(width, side), _starts(height, side)
        windows += [(x, y, x + side, y + side) for y in ys for x in xs if (x, y, x + side, y + side) not in windows]
    return windows


def _starts(length: int, side: int) -> list[int]:
    if length <= side:
        return [0]
    n = math.ceil((length - side) / (side / 2)) + 1
    return sorted({round(k * (length - side) / (n - 1)) for k in range(n)})


def landmarks_roi(found: Landmarks) -> Roi:
    """The region for the next pass from landmarks 33 (body centre) and 34 (body circle), as
    pose_landmarks_to_roi.pbtxt: the same construction as `detection_roi`."""
    return detection_roi(found.xy[33:35])


def _same_person(a: Landmarks, b: Landmarks) -> bool:
    """True when two landmark sets describe one person found twice (from two windows or two
    detections): their noses within `SAME_NOSE` torso lengths, or nose, shoulders and hips
    within `SAME_BODY` torso lengths on average. Two people's faces cannot share a place."""
    core = [_BP[n] for n in ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    torso = max(_torso(a), _torso(b), 1.0)
    d = np.hypot(*(a.xy[core] - b.xy[core]).T)
    return bool(d[0] < SAME_NOSE * torso or d.mean() < SAME_BODY * torso)


def _torso(found: Landmarks) -> float:
    xy = found.xy
    shoulders = (xy[_BP["left_shoulder"]] + xy[_BP["right_shoulder"]]) / 2
    hips = (xy[_BP["left_hip"]] + xy[_BP["right_hip"]]) / 2
    return float(np.hypot(*(shoulders - hips)))


# -- BlazePose-33 -> BODY-18 -----------------------------------------------------------------


def to_body18(found: Landmarks, width: int, height: int, threshold: float = VISIBILITY_THRESHOLD) -> Person:
    """One person's BlazePose landmarks as a BODY-18 `Person` in photo pixels.

    A joint is visible when its landmark's visibility and presence reach `threshold` and it lies
    inside the photo; the neck is the shoulders' midpoint, visible when both shoulders are.
    Hidden joints keep BlazePose's guess, clipped into the photo, so an editor can show them.
    """
    shown = (found.visibility >= threshold) & (found.presence >= threshold)
    shown &= (found.xy[:, 0] >= 0) & (found.xy[:, 0] <= width - 1) & (found.xy[:, 1] >= 0) & (found.xy[:, 1] <= height - 1)
    person = body18_from_33(found.xy[:33], shown[:33])
    person.xy = np.clip(person.xy, 0, [width - 1, height - 1])
    return person


def body18_from_33(xy33: np.ndarray, shown33: np.ndarray) -> Person:
    """BODY-18 points and visibility from 33 BlazePose points and their visibility (`BODY18_SOURCE`)."""
    xy, visible = np.zeros((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS, dtype=bool)
    for j, src in enumerate(BODY18_SOURCE):
        if src >= 0:
            xy[j], visible[j] = xy33[src], bool(shown33[src])
    ls, rs = _BP["left_shoulder"], _BP["right_shoulder"]
    neck = KEYPOINT_INDEX["neck"]
    xy[neck] = (xy33[ls] + xy33[rs]) / 2
    visible[neck] = bool(shown33[ls] and shown33[rs])
    return Person(xy=xy, visible=visible)
