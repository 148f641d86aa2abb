"""The library's contact-sheet review (issue 14): is each entry a readable, plausible pose?

    python benchmarks/library_review.py sheets --out DIR [--random 100] [--seed 1]
    python benchmarks/library_review.py score benchmarks/data/library_review.json

`sheets` draws two reviews as numbered contact sheets (36 tiles each, the pose map with
per-person halos, as `python -m pose_db.contact_sheet` draws them) and writes `DIR/review.json`
listing every tile: `random` = `--random` entries from distinct random actions (seeded), and
`multi` = one entry (seeded) of every action with two or more people. A person then looks at each
sheet and sets each tile's `"ok"` to true (reads as its prompt's action and is physically
plausible) or false with a short `"why"`. `score` counts the verdicts per review, per people
count and per category; the target is >= 95 % ok in each review.

Only a person can judge these; nothing here scores a pose by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_db.library.contact_sheet import contact_sheet, sample_entries
from pose_db.library.generate import generate_library
from pose_db.library.specs import load_actions
from pose_db.library.variations import action_rng

PER_SHEET = 36


def _sheets(name: str, entries: list, out: Path) -> list[dict]:
    tiles = []
    for start in range(0, len(entries), PER_SHEET):
        chunk = entries[start:start + PER_SHEET]
        path = out / f"{name}_{start // PER_SHEET + 1}.png"
        contact_sheet(chunk, columns=6).save(path)
        tiles += [{"sheet": path.name, "tile": k + 1, "id": e.id, "action": e.action, "people": len(e.scene.people),
                   "view": e.view, "prompt": e.prompt, "ok": None, "why": ""} for k, e in enumerate(chunk)]
    return tiles


def make_sheets(out: Path, random: int, seed: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    multi = []
    for action in (a for a in load_actions() if len(a.people) >= 2):
        entries = list(generate_library(seed=0, actions=[action.id]))
        if entries:  # each action's pick depends on that action alone: editing one re-draws one tile
            multi.append(entries[int(action_rng(f"library-review:{action.id}", seed).integers(len(entries)))])
    review = {"seed": seed, "command": f"python benchmarks/library_review.py sheets --out {out} --random {random} "
                                       f"--seed {seed}",
              "random": _sheets("random", sample_entries(random, seed=seed), out),
              "multi": _sheets("multi", multi, out)}
    path = out / "review.json"
    path.write_text(json.dumps(review, indent=1))
    return path


def score(path: Path) -> dict:
    review = json.loads(path.read_text())
    summary = {}
    for name in ("random", "multi"):
        tiles = review.get(name, [])
        judged = [t for t in tiles if t["ok"] is not None]
        ok = sum(bool(t["ok"]) for t in judged)
        summary[name] = {"tiles": len(tiles), "judged": len(judged), "ok": ok,
                         "ok_pct": round(100 * ok / len(judged), 1) if judged else None,
                         "failures_by_people": dict(Counter(t["people"] for t in judged if not t["ok"])),
                         "failures": [f"{t['id']}: {t['why']}" for t in judged if not t["ok"]]}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sheets = sub.add_parser("sheets", help="draw the review's contact sheets and its review.json")
    sheets.add_argument("--out", type=Path, required=True)
    sheets.add_argument("--random", type=int, default=100, help="entries from distinct random actions")
    sheets.add_argument("--seed", type=int, default=1)
    scored = sub.add_parser("score", help="count the verdicts of a filled review.json")
    scored.add_argument("review", type=Path)
    args = parser.parse_args(argv)
    if args.command == "sheets":
        print(f"wrote {make_sheets(args.out, args.random, args.seed)}")
    else:
        print(json.dumps(score(args.review), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
