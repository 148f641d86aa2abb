"""The training dataset: format, up-front validation, aspect buckets, UNO-style references.

A dataset is a folder with ``train.jsonl``, one sample a line (paths relative to the folder)::

    {"prompt": "Mia and Leo shaking hands at a station",
     "target": "images/0001.jpg",
     "references": [{"image": "refs/0001_mia.png", "name": "Mia"}, {"image": "refs/0001_leo.png", "name": "Leo"}],
     "pose": "poses/0001.json"}

``references`` (0 to 4) and ``pose`` are optional; ``name`` is optional. The pose is OpenPose
JSON (``canvas_width``/``canvas_height`` and ``people``, as ``pose_db`` writes it, with an
optional per-person ``"subject"``: the index of the reference that person is) drawn on the
target's canvas: its aspect must match the target's.

:func:`validate_dataset` checks every line before training (files exist, images open, poses
parse, at most 4 references, subject indices in range) and reports every bad sample by line
number in one :class:`DatasetError`, so a run never dies at step 40,000 on sample 31,337.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.conditioning import pose_map_image, resize_reference
from engine.errors import EngineError
from pose_db.scene.model import CANVAS_MIN, MAX_SUBJECTS, PoseError, PoseScene
from pose_db.scene.openpose_io import read_openpose
from pose_db.scene.transforms import affine

DATA_FILE = "train.jsonl"
MAX_REFERENCES = MAX_SUBJECTS  # the engine's (and the pose model's) subject limit: 4
ASPECT_TOLERANCE = 0.02  # a pose canvas may differ from its target's aspect by 2% (rounding)
# Bucket aspect ratios (w / h), SDXL-style: from 1:2 to 2:1 at about the training area.
BUCKET_ASPECTS = (0.5, 0.5625, 0.625, 0.75, 0.8, 1.0, 1.25, 1.333, 1.6, 1.778, 2.0)


@dataclass(frozen=True)
class SampleProblem:
    """One bad sample: its line in ``train.jsonl`` (1-based) and what is wrong."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"{DATA_FILE}:{self.line}: {self.message}"


class DatasetError(EngineError):
    """The dataset has bad samples; ``problems`` lists each with its line number."""

    def __init__(self, folder: Path, problems: list[SampleProblem], total: int) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} of {total} samples in {folder / DATA_FILE} are invalid; fix or remove "
                         f"them (or pass --skip-invalid to train on the rest):\n{shown}{more}")


@dataclass(frozen=True)
class Reference:
    image: Path
    name: str | None = None


@dataclass(frozen=True)
class SampleRecord:
    """A validated sample: resolved paths, the target's size and its aspect bucket (w, h)."""

    line: int
    prompt: str
    target: Path
    target_size: tuple[int, int]
    references: tuple[Reference, ...] = ()
    pose: Path | None = None
    bucket: tuple[int, int] = (512, 512)

    @property
    def signature(self) -> tuple:
        """Samples sharing it can share a batch (one position-id layout per batch)."""
        return (self.bucket, len(self.references), self.pose is not None)


@dataclass
class TrainSample:
    """One sample ready for the encoders (PIL images at their final sizes).

    Attributes:
        prompt: the caption.
        target: the target resized and centre-cropped to its bucket.
        references: the original reference images (DSM's CLIP reads these, as the pipeline does).
        reference_images: the references resized UNO-style (for the VAE).
        pose_map: the rendered pose map on the bucket canvas (1/pose_scale), or None.
        names: subject names (None where unnamed).
        line: the sample's line in ``train.jsonl``.
    """

    prompt: str
    target: Image.Image
    references: list[Image.Image] = field(default_factory=list)
    reference_images: list[Image.Image] = field(default_factory=list)
    pose_map: Image.Image | None = None
    names: list[str | None] = field(default_factory=list)
    line: int = 0


def buckets(resolution: int, multiple: int = 16) -> list[tuple[int, int]]:
    """(w, h) buckets of about ``resolution``^2 pixels, sides multiples of ``multiple``."""
    out = []
    for aspect in BUCKET_ASPECTS:
        w = max(multiple, round(resolution * math.sqrt(aspect) / multiple) * multiple)
        h = max(multiple, round(resolution / math.sqrt(aspect) / multiple) * multiple)
        if (w, h) not in out:
            out.append((w, h))
    return out


def nearest_bucket(size: tuple[int, int], choices: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect is closest to ``size``'s (in log space)."""
    aspect = math.log(size[0] / size[1])
    return min(choices, key=lambda b: abs(math.log(b[0] / b[1]) - aspect))


def validate_dataset(folder: str | Path, *, resolution: int = 512, multiple: int = 16,
                     skip_invalid: bool = False) -> tuple[list[SampleRecord], list[SampleProblem]]:
    """Check every sample of ``folder/train.jsonl``.

    Args:
        folder: the dataset folder.
        resolution: training side; each sample gets the nearest-aspect bucket of that area.
        multiple: bucket sides are multiples of it (16 px, one packed token; 32 with half-size pose).
        skip_invalid: return the valid samples and the problems instead of raising.

    Returns:
        ``(records, problems)``: the valid samples in file order and every problem found.

    Raises:
        DatasetError: some sample is invalid (and ``skip_invalid`` is False), or none is valid.
    """
    folder = Path(folder)
    path = folder / DATA_FILE
    if not path.is_file():
        raise EngineError(f"{folder} has no {DATA_FILE}; a dataset folder holds one JSON sample per line.")
    choices = buckets(resolution, multiple)
    records, problems, total = [], [], 0
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            total += 1
            try:
                records.append(_check_line(folder, number, text, choices))
            except _Bad as bad:
                problems.append(SampleProblem(number, str(bad)))
    if total == 0:
        raise EngineError(f"{path} holds no samples.")
    if problems and (not skip_invalid or not records):
        raise DatasetError(folder, problems, total)
    return records, problems


class _Bad(Exception):
    """A sample problem (message only; the caller adds the line)."""


def _check_line(folder: Path, number: int, text: str, choices: list[tuple[int, int]]) -> SampleRecord:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Bad(f"not valid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise _Bad("a sample must be a JSON object")
    unknown = sorted(set(data) - {"prompt", "target", "references", "pose"})
    if unknown:
        raise _Bad(f"unknown field(s) {', '.join(unknown)}")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _Bad("prompt must be a non-empty string")
    if not isinstance(data.get("target"), str):
        raise _Bad("target must be the path of the target image")
    target = folder / data["target"]
    target_size = _image_size(target, "target")
    refs = data.get("references", [])
    if not isinstance(refs, list):
        raise _Bad("references must be a list of {\"image\": ..., \"name\": ...}")
    if len(refs) > MAX_REFERENCES:
        raise _Bad(f"{len(refs)} references; at most {MAX_REFERENCES} are supported")
    references = []
    for k, ref in enumerate(refs, start=1):
        if not isinstance(ref, dict) or not isinstance(ref.get("image"), str):
            raise _Bad(f"reference {k} must be an object with an \"image\" path")
        name = ref.get("name")
        if name is not None and not isinstance(name, str):
            raise _Bad(f"reference {k}: name must be a string")
        image = folder / ref["image"]
        _image_size(image, f"reference {k}")
        references.append(Reference(image, name))
    pose = None
    if data.get("pose") is not None:
        if not isinstance(data["pose"], str):
            raise _Bad("pose must be the path of an OpenPose JSON file")
        pose = folder / data["pose"]
        scene = _read_pose(pose)
        for i, person in enumerate(scene.people, start=1):
            if person.subject is not None and person.subject >= len(references):
                raise _Bad(f"pose person {i} is subject {person.subject} but the sample has "
                           f"{len(references)} reference(s) (subjects count from 0)")
        canvas, image = scene.width / scene.height, target_size[0] / target_size[1]
        if abs(math.log(canvas / image)) > ASPECT_TOLERANCE:
            raise _Bad(f"pose canvas {scene.width}x{scene.height} does not match the target's aspect "
                       f"({target_size[0]}x{target_size[1]})")
    return SampleRecord(number, prompt, target, target_size, tuple(references), pose,
                        nearest_bucket(target_size, choices))


def _image_size(path: Path, what: str) -> tuple[int, int]:
    if not path.is_file():
        raise _Bad(f"{what} image {path} does not exist")
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()  # integrity check without decoding every pixel
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise _Bad(f"{what} image {path} cannot be read ({error})") from None
    if min(size) < 16:
        raise _Bad(f"{what} image {path} is only {size[0]}x{size[1]} pixels")
    return size


def _read_pose(path: Path) -> PoseScene:
    if not path.is_file():
        raise _Bad(f"pose file {path} does not exist")
    try:
        return read_openpose(path.read_text(encoding="utf-8"))
    except (PoseError, OSError, UnicodeDecodeError) as error:
        raise _Bad(f"pose {path} is not valid OpenPose JSON ({error})") from None


def load_sample(record: SampleRecord, *, pose_scale: int = 1, reference_long_side: int = 512,
                reference_long_side_multi: int = 320, token_px: int = 16) -> TrainSample:
    """Read and size one validated sample: target to its bucket (cover, centre crop), references
    UNO-style (``engine.conditioning.resize_reference``), the pose moved exactly as the target was
    and rendered as the pipeline renders it."""
    with Image.open(record.target) as image:
        target, transform = _cover(image.convert("RGB"), record.bucket)
    originals = []
    for ref in record.references:
        with Image.open(ref.image) as image:
            originals.append(image.convert("RGB"))
    long_side = reference_long_side if len(originals) <= 1 else reference_long_side_multi
    resized = [resize_reference(image, long_side, token_px) for image in originals]
    pose_map = None
    if record.pose is not None:
        scene = read_openpose(record.pose.read_text(encoding="utf-8"))
        w, h = record.bucket
        # Drawn on a canvas up-scaled by an integer `up` when the bucket is below the pose
        # model's 64 px minimum (tiny runs); pose_map_image area-downsamples it to the grid.
        up = max(1, math.ceil(CANVAS_MIN / min(w, h)))
        sx = record.target_size[0] / scene.width * transform[0] * up
        sy = record.target_size[1] / scene.height * transform[0] * up
        people = [affine(p, np.diag([sx, sy]), (-transform[1] * up, -transform[2] * up)) for p in scene.people]
        latent_hw = (h // token_px, w // token_px)
        pose_map = pose_map_image(PoseScene(w * up, h * up, people), latent_hw, pose_scale, token_px)
    return TrainSample(record.prompt, target, originals, resized, pose_map,
                       [ref.name for ref in record.references], record.line)


def _cover(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, tuple[float, float, float]]:
    """Scale to cover ``size`` and centre-crop; returns the image and (scale, left, top)."""
    w, h = size
    scale = max(w / image.width, h / image.height)
    new_w, new_h = max(w, round(image.width * scale)), max(h, round(image.height * scale))
    image = image.resize((new_w, new_h), resample=Image.LANCZOS)
    left, top = (new_w - w) // 2, (new_h - h) // 2
    return image.crop((left, top, left + w, top + h)), (scale, float(left), float(top))


class TrainDataset:
    """Map-style dataset over validated records (a torch ``Dataset`` by protocol: ``__len__`` and
    ``__getitem__``); items are :class:`TrainSample`, batches are lists of them."""

    def __init__(self, records: list[SampleRecord], *, pose_scale: int = 1, reference_long_side: int = 512,
                 reference_long_side_multi: int = 320, token_px: int = 16) -> None:
        self.records = records
        self.options = dict(pose_scale=pose_scale, reference_long_side=reference_long_side,
                            reference_long_side_multi=reference_long_side_multi, token_px=token_px)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> TrainSample:
        return load_sample(self.records[index], **self.options)


class BucketBatchSampler:
    """Infinite, deterministic batches of one signature (bucket, reference count, pose or not).

    Each epoch shuffles the samples within signatures with ``seed + epoch``, cuts batches,
    shuffles the batches, and gives process ``rank`` every ``world``-th batch (a remainder that
    does not divide evenly is dropped, so every process takes the same number of steps). Batch k
    of a process depends only on (seed, rank, world, k): resuming at batch k is exact.
    """

    def __init__(self, records: list[SampleRecord], batch_size: int, *, seed: int, rank: int = 0,
                 world: int = 1, start: int = 0) -> None:
        self.groups: dict[tuple, list[int]] = {}
        for i, record in enumerate(records):
            self.groups.setdefault(record.signature, []).append(i)
        self.batch_size, self.seed, self.rank, self.world, self.start = batch_size, seed, rank, world, start
        per_epoch = sum(len(g) // batch_size for g in self.groups.values()) // world
        if per_epoch == 0:
            raise EngineError(f"Too few samples for batch size {batch_size} on {world} process(es): every "
                              "(bucket, reference count, pose) group needs at least batch_size x processes samples.")
        self.per_epoch = per_epoch

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed + epoch)
        batches = []
        for key in sorted(self.groups, key=repr):
            members = list(self.groups[key])
            rng.shuffle(members)
            batches += [members[i:i + self.batch_size] for i in range(0, len(members) - self.batch_size + 1,
                                                                        self.batch_size)]
        rng.shuffle(batches)
        return batches[self.rank:self.per_epoch * self.world:self.world]

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            epoch, position = divmod(k, self.per_epoch)
            batches = self.epoch_batches(epoch)
            for batch in batches[position:]:
                yield batch
                k += 1
