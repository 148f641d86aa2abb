"""The paper's metrics in one place: standard COCO OKS (Hungarian-matched), CLIP-I, CLIP-T, DINO.

**OKS** is the COCO keypoint-challenge definition (``pycocotools`` ``computeOks``): for a
ground-truth person g and a detected person d,

    OKS(g, d) = mean over the keypoints i labelled in g of exp(-d_i^2 / (2 * s^2 * k_i^2))

with d_i the pixel distance between the two points, s^2 the ground-truth object's area (COCO's
segment area; we take the annotation's ``area`` when the benchmark stores it, else the box of
its labelled keypoints) and k_i = 2 * sigma_i with the COCO sigmas of DESIGN section 3. The
neck of BODY-18 has no sigma and is skipped. A keypoint labelled in g but not detected in d
scores 0; points detected but not labelled in g are ignored (as COCO does). One perfect match
is 1.0.

Per image, people are matched one-to-one by the Hungarian algorithm on the OKS matrix
(``scipy.optimize.linear_sum_assignment``); the image's score is the sum of matched OKS
divided by ``max(#ground truth, #detected)``, so a missing person and an extra person both
count as 0. ``missing`` and ``extra`` are reported alongside.

**Keypoint AP** (``keypoint_ap``) is COCO's keypoint-challenge summary, as ``COCOeval``
computes it: per OKS threshold t in 0.50, 0.55, ..., 0.95, detections of all images ranked by
score are greedily matched to unmatched ground truth with OKS >= t, and the precision at 101
recall points is averaged; AP is the mean over the ten thresholds. It is reported as one
candidate reading of the paper's 0.0452 (see README). Our detectors give no per-person score,
so a detection's score is the fraction of the COCO keypoints it found.

**CLIP-I** is the cosine similarity of CLIP image embeddings (generated vs each reference, mean
over references), **CLIP-T** that of the generated image and the prompt, **DINO** the cosine of
DINO ViT [CLS] features (generated vs each reference). Defaults follow DreamBooth's paper:
``openai/clip-vit-base-patch32`` and ``facebook/dino-vits16``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from engine.errors import EngineError
from pose_db.scene.model import Person, PoseScene
from pose_db.scene.skeleton import KEYPOINT_NAMES, OKS_SIGMAS

CLIP_DEFAULT = "openai/clip-vit-base-patch32"
DINO_DEFAULT = "facebook/dino-vits16"
# (18,) COCO sigma per BODY-18 keypoint; NaN for the neck (not a COCO keypoint).
SIGMAS = np.array([OKS_SIGMAS.get(name, np.nan) for name in KEYPOINT_NAMES])
_COCO = ~np.isnan(SIGMAS)


def keypoint_area(person: Person) -> float:
    """The box area of the person's labelled COCO keypoints (the stand-in for COCO's segment area)."""
    pts = person.xy[person.visible & _COCO]
    if len(pts) == 0:
        return 0.0
    span = pts.max(axis=0) - pts.min(axis=0)
    return float(span[0] * span[1])


def oks(gt: Person, dt: Person, area: float | None = None) -> float:
    """Standard COCO OKS of detection ``dt`` against ground truth ``gt`` (same pixel frame).

    ``area``: the ground-truth object's area in pixels (COCO's ``area``); None: the box of
    ``gt``'s labelled keypoints. Returns 0 when ``gt`` has no labelled COCO keypoint.
    """
    labelled = gt.visible & _COCO
    if not labelled.any():
        return 0.0
    area = keypoint_area(gt) if area is None else float(area)
    area = max(area, np.spacing(1))
    k2 = (2 * SIGMAS[labelled]) ** 2
    d2 = ((gt.xy[labelled] - dt.xy[labelled]) ** 2).sum(axis=1)
    sim = np.exp(-d2 / (2 * area * k2))
    sim = np.where(dt.visible[labelled], sim, 0.0)
    return float(sim.mean())


@dataclass
class PoseMatch:
    """One image's pose score: ``score`` (matched OKS sum / max(#gt, #detected)), the matched
    pairs ``(gt index, detected index, oks)``, and how many people were missing or extra."""

    score: float
    pairs: list[tuple[int, int, float]] = field(default_factory=list)
    missing: int = 0
    extra: int = 0
    matrix: list[list[float]] = field(default_factory=list)  # OKS of every (gt, detected) pair

    def as_dict(self) -> dict:
        return {"oks": self.score, "pairs": [list(p) for p in self.pairs], "missing": self.missing,
                "extra": self.extra, "oks_matrix": self.matrix}


def match_oks(gt: PoseScene, dt: PoseScene, areas: list[float] | None = None) -> PoseMatch:
    """Hungarian-match detected people to ground-truth people by OKS (both on the same canvas).

    ``areas``: per ground-truth person, its COCO area (None entries or None: keypoint boxes).
    """
    if (gt.width, gt.height) != (dt.width, dt.height):
        raise EngineError(f"OKS compares poses on one canvas: ground truth {gt.width}x{gt.height}, "
                          f"detection {dt.width}x{dt.height}; rescale one first.")
    return match_people(gt.people, dt.people, areas)


def match_people(gt: list[Person], dt: list[Person], areas: list[float | None] | None = None) -> PoseMatch:
    """``match_oks`` on two lists of people whose coordinates are compared as they are (no
    canvas check: the caller says they share a frame, or measures what happens when not)."""
    n, m = len(gt), len(dt)
    if n == 0:
        return PoseMatch(1.0 if m == 0 else 0.0, extra=m)
    areas = list(areas) if areas is not None else [None] * n
    if len(areas) != n:
        raise EngineError(f"{len(areas)} areas for {n} ground-truth people.")
    if m == 0:
        return PoseMatch(0.0, missing=n, matrix=[[] for _ in range(n)])
    sims = oks_matrix(gt, dt, areas)
    rows, cols = linear_sum_assignment(sims, maximize=True)
    pairs = [(int(i), int(j), float(sims[i, j])) for i, j in zip(rows, cols, strict=True)]
    return PoseMatch(sum(p[2] for p in pairs) / max(n, m), pairs, missing=n - len(pairs), extra=m - len(pairs),
                     matrix=sims.tolist())


def oks_matrix(gt: list[Person], dt: list[Person], areas: list[float | None]) -> np.ndarray:
    """(#gt, #detected) OKS of every pair, coordinates taken as they are (no frame check)."""
    return np.array([[oks(g, d, a) for d in dt] for g, a in zip(gt, areas, strict=True)]).reshape(len(gt), len(dt))


def detection_score(person: Person) -> float:
    """A detection's confidence for ``keypoint_ap``: the fraction of COCO keypoints found."""
    return float((person.visible & _COCO).sum() / _COCO.sum())


AP_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCOeval's iouThrs
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval's recThrs


def keypoint_ap(images: list[tuple[list[list[float]], list[float]]]) -> float | None:
    """COCO keypoint AP@[.50:.95] over a dataset, from each image's OKS matrix (#gt rows x
    #detected columns) and detection scores. None when no image has ground-truth people.

    Follows ``COCOeval.evaluateImg``/``accumulate``: per threshold, each image's detections in
    score order take the best still-unmatched ground truth with OKS >= t; all detections are then
    ranked by score across images, precision is made monotone, and sampled at 101 recall points.
    """
    total_gt = sum(len(matrix) for matrix, _ in images)
    if total_gt == 0:
        return None
    per_threshold = []
    for t in AP_THRESHOLDS:
        scores, hits = [], []
        for matrix, det_scores in images:
            sims = np.asarray(matrix, dtype=float).reshape(len(matrix), len(det_scores))
            taken = np.zeros(len(matrix), dtype=bool)
            for j in np.argsort(-np.asarray(det_scores, dtype=float), kind="mergesort"):
                candidates = np.where(~taken & (sims[:, j] >= min(t, 1 - 1e-10)), sims[:, j], -1.0)
                best = int(np.argmax(candidates)) if len(candidates) else -1
                hit = best >= 0 and candidates[best] >= 0
                if hit:
                    taken[best] = True
                scores.append(det_scores[j])
                hits.append(hit)
        if not scores:  # nothing detected anywhere: precision 0 at every recall
            per_threshold.append(0.0)
            continue
        order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
        tp = np.cumsum(np.asarray(hits, dtype=float)[order])
        fp = np.cumsum(1.0 - np.asarray(hits, dtype=float)[order])
        recall = tp / total_gt
        precision = np.maximum.accumulate((tp / np.maximum(tp + fp, np.spacing(1)))[::-1])[::-1]
        at = np.searchsorted(recall, _RECALL_POINTS, side="left")
        sampled = np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
        per_threshold.append(sampled.mean())
    return float(np.mean(per_threshold))


# ---- embedding models --------------------------------------------------------------------------


def _load_model(source: str | os.PathLike, what: str, loader, local_files_only: bool):
    folder = Path(source).expanduser()
    looks_local = folder.exists() or str(source).startswith((".", "/", "~"))
    if looks_local and not folder.is_dir():
        raise EngineError(f"{what} folder {folder} does not exist; give a saved {what} folder or a hub id.")
    try:
        return loader(str(folder) if looks_local else str(source), local_files_only)
    except (OSError, ValueError) as error:
        where = f"folder {folder}" if looks_local else f"hub id {source!r}"
        hint = ("it needs the model's config.json and weights plus its preprocessor (and, for CLIP, the "
                "tokenizer) files" if looks_local else
                f"it is not in the local hub cache (offline); download it with `huggingface-cli download {source}` "
                "or give a folder")
        raise EngineError(f"Cannot load the {what} from {where}: {hint}. ({type(error).__name__}: {error})") from error


class ClipScorer:
    """CLIP-I (image-image) and CLIP-T (image-text) cosine similarities."""

    def __init__(self, model, processor, tokenizer, device: str = "cpu") -> None:
        self.model, self.processor, self.tokenizer, self.device = model.eval().to(device), processor, tokenizer, device

    @classmethod
    def load(cls, source: str | os.PathLike = CLIP_DEFAULT, *, device: str = "cpu",
             local_files_only: bool = True) -> ClipScorer:
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        def loader(src: str, offline: bool):
            return (CLIPModel.from_pretrained(src, local_files_only=offline),
                    CLIPImageProcessor.from_pretrained(src, local_files_only=offline),
                    AutoTokenizer.from_pretrained(src, local_files_only=offline))

        return cls(*_load_model(source, "CLIP model", loader, local_files_only), device=device)

    @torch.no_grad()
    def image_features(self, images: list[Any]) -> torch.Tensor:
        pixels = self.processor(images=[_rgb(i) for i in images], return_tensors="pt")["pixel_values"]
        out = self.model.get_image_features(pixel_values=pixels.to(self.device))
        return torch.nn.functional.normalize(_tensor(out, "image_embeds").float(), dim=-1)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        max_len = getattr(self.model.config.text_config, "max_position_embeddings", 77)
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        out = self.model.get_text_features(input_ids=tokens["input_ids"].to(self.device),
                                           attention_mask=tokens["attention_mask"].to(self.device))
        return torch.nn.functional.normalize(_tensor(out, "text_embeds").float(), dim=-1)

    def clip_i(self, image: Any, references: list[Any]) -> float | None:
        """Mean cosine of ``image`` to each reference; None without references."""
        if not references:
            return None
        feats = self.image_features([image, *references])
        return float((feats[1:] @ feats[0]).mean())

    def clip_t(self, image: Any, prompt: str) -> float:
        return float(self.image_features([image])[0] @ self.text_features([prompt])[0])


class DinoScorer:
    """DINO: cosine of ViT [CLS] features (``facebook/dino-vits16`` by default)."""

    def __init__(self, model, processor, device: str = "cpu") -> None:
        self.model, self.processor, self.device = model.eval().to(device), processor, device

    @classmethod
    def load(cls, source: str | os.PathLike = DINO_DEFAULT, *, device: str = "cpu",
             local_files_only: bool = True) -> DinoScorer:
        from transformers import AutoImageProcessor, ViTModel

        def loader(src: str, offline: bool):
            return (ViTModel.from_pretrained(src, add_pooling_layer=False, local_files_only=offline),
                    AutoImageProcessor.from_pretrained(src, local_files_only=offline))

        return cls(*_load_model(source, "DINO model", loader, local_files_only), device=device)

    @torch.no_grad()
    def features(self, images: list[Any]) -> torch.Tensor:
        pixels = self.processor(images=[_rgb(i) for i in images], return_tensors="pt")["pixel_values"]
        cls_token = self.model(pixel_values=pixels.to(self.device)).last_hidden_state[:, 0]
        return torch.nn.functional.normalize(cls_token.float(), dim=-1)

    def dino(self, image: Any, references: list[Any]) -> float | None:
        if not references:
            return None
        feats = self.features([image, *references])
        return float((feats[1:] @ feats[0]).mean())


def _rgb(image: Any) -> Any:
    return image.convert("RGB") if hasattr(image, "convert") else image


def _tensor(out: Any, name: str) -> torch.Tensor:
    """transformers 5 may return a model output where 4 returned the tensor."""
    if isinstance(out, torch.Tensor):
        return out
    value = getattr(out, name, None)
    return value if value is not None else out.pooler_output
