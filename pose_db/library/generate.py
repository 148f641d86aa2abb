"""The pose library generator: action specs -> ~30 gated, prompt-linked skeletons per action.

This is our offline stand-in for the RAG-Pose database build (ASTRA section 3): where the
paper renders prompts with FLUX.1-pro and filters them with GPT-4o, we pose an articulated
body rig (``rig/``) from data specs (``actions/``), vary each action along the paper's
descriptive axes (``variations``) and keep what passes the quality gate (``gate``).

CLI::

    python -m pose_db.library --check        # validate every spec, print counts
    python -m pose_db.library --stats        # generate everything, print gate counts and time
    python -m pose_db.library --jsonl OUT    # also write entries (prompt + OpenPose JSON)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from pose_db.scene.entry import LibraryEntry
from pose_db.scene.openpose_io import write_openpose

from .gate import (
    QualityGate,
    floor_problems,
    interpenetrating_pairs,
    joint_limit_problems,
)
from .rig.skeleton3d import body_model
from .specs import ACTIONS_DIR, ActionSpec, SpecError, load_actions, load_axes
from .staging import photograph, stage_action
from .variations import variations as variation_stream

# Candidates tried per action, as a multiple of the entries wanted: the gate rejects some, and
# for actions that read from few views (sitting, kneeling, hugs) the readability rule most.
_CANDIDATE_FACTOR = 4.0
_CONTACT_TOLERANCE = 0.04


def generate_library(specs_dir: str | Path | None = None, seed: int = 0, variations: int = 30,
                     actions: list[str] | None = None, gate: QualityGate | None = None) -> Iterator[LibraryEntry]:
    """Generate library entries, deterministically.

    Args:
        specs_dir: folder of action spec files (default: the package's ``pose_db/actions``).
        seed: the same specs and seed give identical entries.
        variations: entries wanted per action (fewer if the gate rejects too many candidates;
            ``gate.report.short_actions`` lists those).
        actions: only these action ids (default: all).
        gate: the quality gate to judge with; pass one to read its ``report`` afterwards.

    Raises:
        SpecError: a spec file is malformed, or an action's own (un-jittered) pose is not
            plausible; the message names the file and the action.
    """
    specs = select_actions(load_actions(specs_dir), actions)
    axes = load_axes(_axes_path(specs_dir))
    gate = gate if gate is not None else QualityGate()
    for action in specs:
        check_action(action)
        yield from _action_entries(action, axes, seed, variations, gate)


def select_actions(specs: list[ActionSpec], ids: list[str] | None) -> list[ActionSpec]:
    if ids is None:
        return specs
    known = {a.id for a in specs}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise SpecError(f"unknown action id(s) {unknown}; list them with `python -m pose_db.library --check`.")
    wanted = set(ids)
    return [a for a in specs if a.id in wanted]


def check_action(action: ActionSpec) -> None:
    """Pose the action as written (first cast entry, no jitter) and raise SpecError if it is not
    a plausible human pose: angles past their limits, contacts out of reach, feet off the floor,
    people inside each other."""
    cast = load_axes(_axes_path(Path(action.source).parent)).casts[action.cast][0]
    profiles = [body_model().profiles[p] for p in cast.profiles]
    staged = stage_action(action, profiles)
    problems = []
    for i, body in enumerate(staged.bodies):
        problems += [f"person {i}: {p}" for p in joint_limit_problems(body)]
    for k, (miss, contact) in enumerate(zip(staged.contact_miss, action.contacts)):
        if miss > _CONTACT_TOLERANCE:
            problems.append(f"contact {k} (who {contact.who}, {'hand' if contact.limb == 'arm' else 'foot'} "
                            f"{contact.side}) misses its target by {miss:.2f} m; move the people closer")
    problems += floor_problems(staged, tolerance=0.08)
    problems += [f"people {i} and {j} overlap ({what}); move them apart" for i, j, what in interpenetrating_pairs(staged.bodies)]
    if problems:
        raise SpecError(f"{action.source}: action {action.id!r}: " + "; ".join(problems))


def _action_entries(action: ActionSpec, axes, seed: int, wanted: int, gate: QualityGate) -> Iterator[LibraryEntry]:
    kept = 0
    for var in islice(variation_stream(action, axes, seed), int(_CANDIDATE_FACTOR * wanted) + 10):
        staged, scene = _stage_variation(action, var)
        if gate.judge(action.id, staged, scene, var.framing):
            continue
        yield LibraryEntry(
            id=f"{action.id}-{kept:03d}", prompt=var.prompt, action=action.id, action_name=action.name,
            category=action.category, people=action.n_people, view=var.view, pose=scene,
            profiles=var.cast.profiles, source="synthetic", preferred_view=action.preferred_view,
        )
        kept += 1
        if kept == wanted:
            break
    if kept < wanted:
        gate.report.short_actions[action.id] = kept


def explain_action(action_id: str, specs_dir: str | None = None, seed: int = 0, wanted: int = 30) -> int:
    """Print, per candidate of one action, its cast, view and the rule it breaks (for authors)."""
    action = select_actions(load_actions(specs_dir), [action_id])[0]
    axes = load_axes(_axes_path(specs_dir))
    gate = QualityGate()
    for var in islice(variation_stream(action, axes, seed), int(_CANDIDATE_FACTOR * wanted) + 10):
        staged, scene = _stage_variation(action, var)
        found = gate.explain(staged, scene, var.framing)
        verdict = "ok" if found is None else f"{found[0]}: {'; '.join(found[1][:3])}"
        print(f"{var.k:3d} {'/'.join(var.cast.profiles):<20} {var.view:<14} mirror={int(var.mirror)}  {verdict}")
    return 0


def _stage_variation(action: ActionSpec, var):
    profiles_by_name = body_model().profiles
    profiles = [profiles_by_name[m.profile].scaled(var.bone_scale[i]) for i, m in enumerate(var.cast.members)]
    staged = stage_action(action, profiles, var.jitter, mirror=var.mirror)
    scene = photograph(staged, var.view, side=var.side, view_jitter=var.view_jitter, framing=var.framing)
    return staged, scene


def _axes_path(specs_dir: str | Path | None) -> Path:
    root = Path(specs_dir) if specs_dir is not None else ACTIONS_DIR
    own = root / "_axes.yaml"
    return own if own.exists() else ACTIONS_DIR / "_axes.yaml"


def coverage(specs: list[ActionSpec]) -> dict[str, Counter]:
    """Actions counted by people and by category."""
    return {"people": Counter(a.n_people for a in specs), "category": Counter(a.category for a in specs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_db.library", description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", help="folder of action spec files (default: pose_db/actions)")
    parser.add_argument("--check", action="store_true", help="validate specs and pose each action once")
    parser.add_argument("--stats", action="store_true", help="generate the whole library and report")
    parser.add_argument("--jsonl", help="write generated entries to this JSON-lines file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variations", type=int, default=30)
    parser.add_argument("--action", action="append", help="only this action id (repeatable)")
    parser.add_argument("--explain", metavar="ACTION", help="say why the gate rejects candidates of an action")
    parser.add_argument("--worst", type=int, default=15, metavar="N",
                        help="with --stats: list the N actions whose candidates the gate rejected most")
    args = parser.parse_args(argv)
    try:
        if args.explain:
            return explain_action(args.explain, args.specs, args.seed, args.variations)
        specs = select_actions(load_actions(args.specs), args.action)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for action in specs:  # report every implausible action, not just the first
        try:
            check_action(action)
        except SpecError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
    if failures:
        print(f"{failures} action(s) to fix", file=sys.stderr)
        return 2
    cov = coverage(specs)
    print(f"{len(specs)} actions; by people: {dict(sorted(cov['people'].items()))}")
    print("by category: " + ", ".join(f"{c} {n}" for c, n in sorted(cov["category"].items())))
    if not (args.stats or args.jsonl):
        return 0
    gate = QualityGate()
    start = time.perf_counter()
    out = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None  # noqa: SIM115
    n = 0
    people = Counter()
    try:
        for entry in generate_library(args.specs, seed=args.seed, variations=args.variations,
                                      actions=args.action, gate=gate):
            n += 1
            people[entry.people] += 1
            if out:
                out.write(json.dumps({"id": entry.id, "prompt": entry.prompt, "action": entry.action,
                                      "view": entry.view, "profiles": entry.profiles,
                                      "pose": write_openpose(entry.scene)}) + "\n")
    finally:
        if out:
            out.close()
    elapsed = time.perf_counter() - start
    print(f"{n} entries in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.0f} entries/s); by people: {dict(sorted(people.items()))}")
    print(gate.report.summary(worst=args.worst))
    return 0
