"""Contact sheets: grids of rendered library entries, for reviewing the library by eye.

The gate checks geometry; only a person can tell whether a skeleton looks like someone
waving. Each tile is the entry's pose map (as the engine sees it) with its id, view and prompt.

    python -m pose_db.contact_sheet --action hug --out hug.png
    python -m pose_db.contact_sheet --category gestures --out gestures.png
    python -m pose_db.contact_sheet --sample 48 --seed 3 --out sample.png
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pose_db.scene.entry import LibraryEntry
from pose_db.scene.render import render_pose_map, render_preview

from .generate import generate_library, select_actions
from .specs import SpecError, load_actions
from .variations import action_rng

TILE = 240
_LABEL_LINES = 4
_LINE_H = 12
_WRAP = 40


def contact_sheet(entries: list[LibraryEntry], columns: int = 6, tile: int = TILE, halos: bool = True) -> Image.Image:
    """One PNG-ready image: a grid of ``entries``, each pose map above its label."""
    if not entries:
        raise ValueError("no entries to draw; check the action ids or the sample size")
    columns = max(1, min(columns, len(entries)))
    rows = -(-len(entries) // columns)
    label_h = _LABEL_LINES * _LINE_H + 6
    sheet = Image.new("RGB", (columns * tile, rows * (tile + label_h)), (40, 40, 44))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for n, entry in enumerate(entries):
        x, y = (n % columns) * tile, (n // columns) * (tile + label_h)
        sheet.paste(Image.fromarray(_tile_image(entry, tile, halos)), (x, y))
        draw.rectangle((x, y, x + tile - 1, y + tile - 1), outline=(90, 90, 96))
        lines = [f"{entry.id}  {entry.view}  {'/'.join(entry.profiles)}"]
        lines += textwrap.wrap(entry.prompt, _WRAP)[: _LABEL_LINES - 1]
        for i, line in enumerate(lines):
            draw.text((x + 4, y + tile + 3 + i * _LINE_H), line, fill=(230, 230, 230) if i else (255, 210, 120), font=font)
    return sheet


def _tile_image(entry: LibraryEntry, tile: int, halos: bool = True) -> np.ndarray:
    """The pose map, scaled to fit a square tile; with ``halos`` each person is outlined in
    their own subject colour, so who is who stays readable where people overlap."""
    scene = entry.scene
    if halos:
        scene = scene.copy()
        for i, person in enumerate(scene.people):
            person.subject = i
        image = render_preview(scene)
    else:
        image = render_pose_map(scene)
    pil = Image.fromarray(image)
    pil.thumbnail((tile, tile))
    out = Image.new("RGB", (tile, tile))
    out.paste(pil, ((tile - pil.width) // 2, (tile - pil.height) // 2))
    return np.asarray(out)


def sample_entries(n: int, seed: int = 0, specs_dir: str | None = None, category: str | None = None) -> list[LibraryEntry]:
    """``n`` entries from distinct random actions (one each), optionally of one category."""
    specs = load_actions(specs_dir)
    if category:
        specs = [a for a in specs if a.category == category]
        if not specs:
            raise SpecError(f"no actions in category {category!r}")
    rng = action_rng("contact-sheet", seed)
    chosen = [specs[i] for i in rng.permutation(len(specs))[:n]]
    picked = []
    for action in chosen:
        entries = list(generate_library(specs_dir, seed=0, actions=[action.id]))
        if entries:
            picked.append(entries[int(rng.integers(len(entries)))])
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_db.contact_sheet", description="Render library entries to a grid PNG.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--action", action="append", help="action id (repeatable): all its entries")
    what.add_argument("--sample", type=int, help="this many entries from random actions")
    what.add_argument("--category", help="one entry from each action of this category")
    parser.add_argument("--seed", type=int, default=0, help="which random sample")
    parser.add_argument("--limit", type=int, default=30, help="entries per action with --action")
    parser.add_argument("--columns", type=int, default=6)
    parser.add_argument("--tile", type=int, default=TILE, help="tile size in pixels")
    parser.add_argument("--pose-map", action="store_true", help="plain pose maps (no per-person halos)")
    parser.add_argument("--specs", help="folder of action spec files (default: pose_db/actions)")
    parser.add_argument("--out", required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        if args.action:
            select_actions(load_actions(args.specs), args.action)
            entries = list(generate_library(args.specs, variations=args.limit, actions=args.action))
        elif args.category:
            entries = sample_entries(10_000, seed=args.seed, specs_dir=args.specs, category=args.category)
        else:
            entries = sample_entries(args.sample, seed=args.seed, specs_dir=args.specs)
        sheet = contact_sheet(entries, columns=args.columns, tile=args.tile, halos=not args.pose_map)
    except (SpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(out)  # never leave a half-written sheet behind
    print(f"wrote {out} ({len(entries)} entries)")
    return 0
