"""Pose-from-photo quality: BlazePose (the built-in detector) on real photos and on library figures.

    python benchmarks/detector_quality.py [--model full|lite] [--no-refine] [--tiles 0|1|2] [--runs 7]
        [--figures 390] [--seed 0] [--json OUT.json] [--sheet OUT.png]

1. **Real photographs** shipped in installed packages (skimage's astronaut and cameraman,
   matplotlib's Grace Hopper), against the hand annotations in ``tests/data/photo_keypoints.json``:
   per-joint pixel error (also as a fraction of the annotated shoulder width, or of the eye-to-
   shoulder distance for the profile), joints outside the photo wrongly shown, occluded joints
   shown, and ms per photo (median of ``--runs`` timed calls after one warm-up, the whole
   `PoseDetector.detect`: decode + detector + landmarks per person + mapping).
2. **Library skeletons drawn as simple figures** (`render_figure`: flat-coloured capsules for the
   limbs, a torso polygon, a head with eyes and hair, on a plain background; no texture, no
   lighting), one entry per action (``--figures`` actions, seed ``--seed``), 1-3 people each:
   detection rate (a source person counts as found when a detection matches it with OKS >= 0.5),
   standard COCO OKS against the source skeleton (only the source's visible joints, the neck
   skipped, area = the source's keypoint box), false detections, by people count and view.
   Figures are not photographs: this measures pose geometry (unusual poses, views, overlap), and
   the numbers are a lower bound for what a real photo of the same pose would give.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pose_db.scene.model import Person, PoseScene  # noqa: E402
from pose_db.scene.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, OKS_SIGMAS  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "photo_keypoints.json"
FOUND_OKS = 0.5
_SIGMAS = np.array([OKS_SIGMAS.get(n, np.nan) for n in KEYPOINT_NAMES])
_K = KEYPOINT_INDEX


# -- the fixture photos ------------------------------------------------------------------------


def fixture_photos() -> list[dict]:
    """The annotated photos, each with ``file`` resolved inside its installed package."""
    import importlib.util

    photos = json.loads(FIXTURE.read_text())["photos"]
    for photo in photos:
        spec = importlib.util.find_spec(photo["package"])
        photo["file"] = Path(spec.origin).parent / photo["path"] if spec and spec.origin else None
    return photos


def photo_scale(photo: dict) -> float:
    """Pixels of one "body unit" for relative errors: the shoulder width, or for a profile
    (one shoulder annotated) twice the eye-to-shoulder distance."""
    j = photo["joints"]
    if "r_shoulder" in j and "l_shoulder" in j:
        return float(np.hypot(*np.subtract(j["r_shoulder"], j["l_shoulder"])))
    eye = j.get("r_eye") or j.get("l_eye")
    shoulder = j.get("r_shoulder") or j.get("l_shoulder")
    return 2.0 * float(np.hypot(*np.subtract(eye, shoulder)))


def photo_errors(photo: dict, person: Person) -> dict:
    """Per annotated joint: pixel error and whether the detector shows it; and which absent or
    occluded joints it wrongly shows."""
    joints = {name: {"error_px": float(np.hypot(*(person.xy[_K[name]] - xy))),
                     "shown": bool(person.visible[_K[name]])} for name, xy in photo["joints"].items()}
    return {"joints": joints,
            "absent_shown": [n for n in photo["absent"] if person.visible[_K[n]]],
            "occluded_shown": [n for n in photo["occluded"] if person.visible[_K[n]]]}


def best_match(people: list[Person], photo: dict) -> Person | None:
    """The detected person nearest the annotated nose (None when nobody was found)."""
    if not people:
        return None
    nose = np.array(photo["joints"]["nose"], float)
    return min(people, key=lambda p: float(np.hypot(*(p.xy[_K["nose"]] - nose))))


def time_ms(fn, runs: int) -> float:
    fn()  # warm-up: first call allocates
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# -- figures ---------------------------------------------------------------------------------

_SKIN, _SHIRT, _TROUSERS, _HAIR, _SHOE = (224, 172, 138), (52, 92, 170), (48, 50, 64), (58, 40, 30), (30, 30, 30)
_SHIRTS = ((52, 92, 170), (170, 60, 52), (60, 140, 80))
_BACKGROUND = (214, 219, 224)


def render_figure(scene: PoseScene, background: tuple[int, int, int] = _BACKGROUND) -> np.ndarray:
    """(H, W, 3) uint8 RGB: each person of `scene` drawn as a flat-coloured mannequin.

    Limbs are capsules between visible joints (upper arms in the shirt colour, forearms and
    hands skin, legs in trousers), the torso a polygon over shoulders and hips, the head an
    ellipse around the visible face points with eyes and a nose when they are visible and hair
    on top (all hair when the face is hidden: a back view). Sizes follow each person's torso.
    People are drawn in list order (later ones in front).
    """
    import cv2

    canvas = np.empty((scene.height, scene.width, 3), np.uint8)
    canvas[:] = background
    for k, person in enumerate(scene.people):
        _draw_figure(canvas, person, _SHIRTS[k % len(_SHIRTS)], cv2)
    return canvas


def _unit(person: Person) -> float:
    xy, v = person.xy, person.visible
    hips = [xy[_K[n]] for n in ("r_hip", "l_hip") if v[_K[n]]]
    if v[_K["neck"]] and hips:
        torso = float(np.hypot(*(xy[_K["neck"]] - np.mean(hips, 0))))
        if torso > 8:
            return torso
    box = person.bbox()
    return max(8.0, 0.3 * max(box[2] - box[0], box[3] - box[1])) if box else 8.0


def _draw_figure(canvas: np.ndarray, person: Person, shirt: tuple, cv2) -> None:
    xy, v, unit = person.xy, person.visible, _unit(person)

    def pt(name):
        return tuple(int(round(c)) for c in xy[_K[name]])

    def limb(a, b, colour, width):
        if v[_K[a]] and v[_K[b]]:
            cv2.line(canvas, pt(a), pt(b), colour, max(2, int(width * unit)), cv2.LINE_AA)
            for end in (a, b):
                cv2.circle(canvas, pt(end), max(1, int(width * unit / 2)), colour, -1, cv2.LINE_AA)

    for side in ("r", "l"):
        limb(f"{side}_hip", f"{side}_knee", _TROUSERS, 0.36)
        limb(f"{side}_knee", f"{side}_ankle", _TROUSERS, 0.28)
        if v[_K[f"{side}_ankle"]]:
            cv2.ellipse(canvas, pt(f"{side}_ankle"), (int(0.16 * unit), int(0.09 * unit)), 0, 0, 360, _SHOE, -1,
                        cv2.LINE_AA)
    torso = [n for n in ("r_shoulder", "l_shoulder", "l_hip", "r_hip") if v[_K[n]]]
    if len(torso) >= 3:
        cv2.fillConvexPoly(canvas, np.array([pt(n) for n in torso], np.int32), shirt, cv2.LINE_AA)
    hips = [n for n in ("r_hip", "l_hip") if v[_K[n]]]
    if v[_K["neck"]] and hips:
        mid = tuple(int(c) for c in np.mean([xy[_K[n]] for n in hips], 0))
        cv2.line(canvas, pt("neck"), mid, shirt, max(2, int(0.5 * unit)), cv2.LINE_AA)
        for n in hips:
            cv2.line(canvas, mid, pt(n), _TROUSERS, max(2, int(0.36 * unit)), cv2.LINE_AA)
    for side in ("r", "l"):
        limb("neck", f"{side}_shoulder", shirt, 0.3)
        limb(f"{side}_shoulder", f"{side}_elbow", shirt, 0.24)
        limb(f"{side}_elbow", f"{side}_wrist", _SKIN, 0.18)
        if v[_K[f"{side}_wrist"]] and v[_K[f"{side}_elbow"]]:
            hand = xy[_K[f"{side}_wrist"]] + 0.12 * unit * _direction(xy[_K[f"{side}_elbow"]], xy[_K[f"{side}_wrist"]])
            cv2.circle(canvas, tuple(int(c) for c in hand), max(2, int(0.11 * unit)), _SKIN, -1, cv2.LINE_AA)
    _draw_head(canvas, person, unit, cv2)


def _direction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.asarray(b, float) - np.asarray(a, float)
    n = float(np.hypot(*d))
    return d / n if n > 1e-6 else np.array([0.0, -1.0])


def _draw_head(canvas: np.ndarray, person: Person, unit: float, cv2) -> None:
    xy, v = person.xy, person.visible
    face = [n for n in ("nose", "r_eye", "l_eye") if v[_K[n]]]
    ears = [n for n in ("r_ear", "l_ear") if v[_K[n]]]
    neck = xy[_K["neck"]] if v[_K["neck"]] else None
    if ears:
        centre = np.mean([xy[_K[n]] for n in ears + face], 0)
    elif face:
        centre = np.mean([xy[_K[n]] for n in face], 0)
    elif neck is not None:
        hips = [xy[_K[n]] for n in ("r_hip", "l_hip") if v[_K[n]]]
        up = _direction(np.mean(hips, 0), neck) if hips else np.array([0.0, -1.0])
        centre = neck + 0.42 * unit * up
    else:
        return
    up = _direction(neck, centre) if neck is not None else np.array([0.0, -1.0])
    angle = float(np.degrees(np.arctan2(up[1], up[0]))) + 90.0
    radii = (int(0.24 * unit), int(0.3 * unit))
    c = tuple(int(round(x)) for x in centre)
    if neck is not None:
        cv2.line(canvas, tuple(int(x) for x in neck), c, _SKIN, max(2, int(0.18 * unit)), cv2.LINE_AA)
    if not face:  # seen from behind: all hair
        cv2.ellipse(canvas, c, radii, angle, 0, 360, _HAIR, -1, cv2.LINE_AA)
        return
    hair = tuple(int(round(x)) for x in centre + 0.07 * unit * up)
    cv2.ellipse(canvas, hair, (radii[0] + 1, radii[1]), angle, 0, 360, _HAIR, -1, cv2.LINE_AA)
    chin = tuple(int(round(x)) for x in centre - 0.04 * unit * up)
    cv2.ellipse(canvas, chin, (int(0.22 * unit), int(0.26 * unit)), angle, 0, 360, _SKIN, -1, cv2.LINE_AA)
    for n in ("r_eye", "l_eye"):
        if v[_K[n]]:
            cv2.circle(canvas, tuple(int(x) for x in xy[_K[n]]), max(1, int(0.035 * unit)), (40, 30, 30), -1,
                       cv2.LINE_AA)
    if v[_K["nose"]]:
        cv2.circle(canvas, tuple(int(x) for x in xy[_K["nose"]]), max(1, int(0.03 * unit)), (190, 130, 105), -1,
                   cv2.LINE_AA)


# -- scoring ---------------------------------------------------------------------------------


def coco_oks(truth: Person, guess: Person, area: float | None = None) -> float:
    """Standard COCO OKS: over the truth's visible joints with a sigma (the neck has none); a
    joint the guess hides scores 0. `area` defaults to the truth's keypoint box area."""
    counted = truth.visible & ~np.isnan(_SIGMAS)
    if not counted.any():
        return 0.0
    if area is None:
        box = truth.bbox()
        area = (box[2] - box[0]) * (box[3] - box[1])
    area = max(float(area), 1.0)
    d2 = ((truth.xy - guess.xy) ** 2).sum(1)
    k2 = (2 * np.nan_to_num(_SIGMAS)) ** 2
    sim = np.where(guess.visible, np.exp(-d2 / (2 * area * np.maximum(k2, 1e-12))), 0.0)
    return float(sim[counted].mean())


def match_people(truth: list[Person], found: list[Person]) -> list[float]:
    """Per truth person, the OKS of the detection greedily matched to it (0 when none is left)."""
    pairs = sorted(((coco_oks(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    best, used_t, used_f = [0.0] * len(truth), set(), set()
    for score, i, j in pairs:
        if i not in used_t and j not in used_f:
            best[i] = score
            used_t.add(i)
            used_f.add(j)
    return best


def figure_entries(count: int, seed: int) -> list:
    """One library entry per action (the first variation), for `count` actions spread over the library."""
    from pose_db.library.generate import generate_library
    from pose_db.library.specs import load_actions

    actions = [a.id for a in load_actions()]
    step = max(1, len(actions) // max(1, count))
    chosen = actions[::step][:count]
    entries, seen = [], set()
    for entry in generate_library(seed=seed, variations=1, actions=chosen):
        if entry.action not in seen:
            seen.add(entry.action)
            entries.append(entry)
    return entries


# -- the run ---------------------------------------------------------------------------------


def run_photos(detector, runs: int) -> dict:
    from pose_db.library.detector import photo_array

    out = {}
    for photo in fixture_photos():
        if photo["file"] is None or not Path(photo["file"]).is_file():
            out[photo["name"]] = {"missing": f"{photo['package']} is not installed"}
            continue
        rgb = photo_array(photo["file"])
        scene = detector.detect(rgb)
        person = best_match(scene.people, photo)
        result = {"people_found": len(scene.people), "scale_px": photo_scale(photo),
                  "ms_median": time_ms(lambda rgb=rgb: detector.detect(rgb), runs)}
        if person is not None:
            result.update(photo_errors(photo, person))
        out[photo["name"]] = result
    return out


def run_figures(detector, count: int, seed: int, sheet: str | None) -> dict:
    entries = figure_entries(count, seed)
    rows, timings, frames = [], [], []
    for entry in entries:
        image = render_figure(entry.scene)
        start = time.perf_counter()
        found = detector.detect(image).people
        timings.append((time.perf_counter() - start) * 1000)
        scores = match_people(entry.scene.people, found)
        rows.append({"id": entry.id, "action": entry.action, "category": entry.category, "view": entry.view,
                     "people": len(entry.scene.people), "found": sum(s >= FOUND_OKS for s in scores),
                     "detections": len(found), "oks": scores})
        if sheet and len(frames) < 48:
            frames.append(_annotated(image, found))
    if sheet:
        _save_sheet(frames, sheet)
    return {"entries": len(rows), "ms_median": statistics.median(timings) if timings else None,
            "summary": summarise(rows), "rows": rows}


def summarise(rows: list[dict]) -> dict:
    def block(selected):
        people = sum(r["people"] for r in selected)
        scores = [s for r in selected for s in r["oks"]]
        matched = [s for s in scores if s >= FOUND_OKS]
        extra = sum(max(0, r["detections"] - r["found"]) for r in selected)
        return {"entries": len(selected), "people": people,
                "detection_rate": sum(r["found"] for r in selected) / people if people else None,
                "mean_oks": float(np.mean(scores)) if scores else None,
                "mean_oks_found": float(np.mean(matched)) if matched else None,
                "unmatched_detections": extra}

    by_people, by_view, by_category = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in rows:
        by_people[r["people"]].append(r)
        by_view[r["view"]].append(r)
        by_category[r["category"]].append(r)
    return {"all": block(rows), "by_people": {k: block(v) for k, v in sorted(by_people.items())},
            "by_view": {k: block(v) for k, v in sorted(by_view.items())},
            "by_category": {k: block(v) for k, v in sorted(by_category.items())}}


def _annotated(image: np.ndarray, people: list[Person]) -> np.ndarray:
    import cv2

    from pose_db.scene.skeleton import LIMBS

    out = image.copy()
    for p in people:
        for a, b in LIMBS:
            if p.visible[a] and p.visible[b]:
                cv2.line(out, tuple(int(c) for c in p.xy[a]), tuple(int(c) for c in p.xy[b]), (255, 0, 255), 2)
    return cv2.resize(out, (192, round(192 * out.shape[0] / out.shape[1])))


def _save_sheet(frames: list[np.ndarray], path: str) -> None:
    from PIL import Image

    if not frames:
        return
    h = max(f.shape[0] for f in frames)
    cols = 8
    rows = -(-len(frames) // cols)
    sheet = np.full((rows * h, cols * 192, 3), 255, np.uint8)
    for k, f in enumerate(frames):
        r, c = divmod(k, cols)
        sheet[r * h:r * h + f.shape[0], c * 192:(c + 1) * 192] = f
    Image.fromarray(sheet).save(path)


def _print_photos(photos: dict) -> None:
    print("Real photos (hand annotations, tests/data/photo_keypoints.json):")
    for name, r in photos.items():
        if "missing" in r:
            print(f"  {name}: skipped ({r['missing']})")
            continue
        if "joints" not in r:
            print(f"  {name}: nobody found ({r['ms_median']:.0f} ms)")
            continue
        errs = "  ".join(f"{j} {e['error_px']:.0f}px ({e['error_px'] / r['scale_px']:.2f}){'' if e['shown'] else ' HIDDEN'}"
                         for j, e in r["joints"].items())
        print(f"  {name}: {r['people_found']} found, {r['ms_median']:.0f} ms/photo (median)")
        print(f"    {errs}")
        print(f"    absent joints shown: {r['absent_shown'] or 'none'}; occluded joints shown: "
              f"{r['occluded_shown'] or 'none'}")
    all_err = [e["error_px"] for r in photos.values() for e in r.get("joints", {}).values()]
    rel = [e["error_px"] / r["scale_px"] for r in photos.values() for e in r.get("joints", {}).values()]
    if all_err:
        print(f"  all joints: median {np.median(all_err):.1f} px, mean {np.mean(all_err):.1f} px, "
              f"max {np.max(all_err):.1f} px; median {np.median(rel):.3f} of the body unit")


def _print_figures(figures: dict) -> None:
    def line(label, b):
        if not b["people"]:
            return
        print(f"  {label:<14} entries {b['entries']:>3}  people {b['people']:>3}  detection rate "
              f"{b['detection_rate']:.2f}  mean OKS {b['mean_oks']:.3f}  OKS of found "
              f"{(b['mean_oks_found'] or 0):.3f}  unmatched detections {b['unmatched_detections']}")

    s = figures["summary"]
    print(f"Library figures ({figures['entries']} entries, {figures['ms_median']:.0f} ms/figure median):")
    line("all", s["all"])
    for k, b in s["by_people"].items():
        line(f"{k} people", b)
    for k, b in s["by_view"].items():
        line(f"view {k}", b)
    for k, b in s["by_category"].items():
        line(k, b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("full", "lite"), default="full")
    parser.add_argument("--no-refine", action="store_true", help="one landmark pass per person")
    parser.add_argument("--tiles", type=int, choices=(0, 1, 2), default=1, help="BlazePose detection windows")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--figures", type=int, default=390, help="library actions drawn as figures (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--sheet", default=None, help="PNG contact sheet of the first 48 figures with detections")
    args = parser.parse_args(argv)

    from pose_db.library.detector import PoseDetector

    detector = PoseDetector.load(kind="blazepose", model=args.model, refine=not args.no_refine,
                                 tiles=args.tiles).require()
    print(f"Detector: {detector.name}, refine={not args.no_refine}, tiles={args.tiles}")
    report = {"detector": detector.name, "refine": not args.no_refine, "tiles": args.tiles,
              "photos": run_photos(detector, args.runs)}
    _print_photos(report["photos"])
    if args.figures:
        report["figures"] = run_figures(detector, args.figures, args.seed, args.sheet)
        _print_figures(report["figures"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
