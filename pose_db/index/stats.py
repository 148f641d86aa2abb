"""What the pose index in use holds: entries, actions, people counts, categories, sources.

    python -m pose_db.stats [--index DIR | --chroma-url URL] [--json]

The JSON form is ``{"entries", "actions", "actions_by_people": {"1": n, "2": n, "3": n},
"categories", "multi_person_entries", "max_people", "sources": {source: entries}}``; it is
counted from the stored records, so entries added by importers are included.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable

from pose_db.scene.model import PoseError

from .store import PoseIndex


def index_stats(records: Iterable[dict]) -> dict:
    """The counts of `PoseIndex.records()` (metadata only is needed)."""
    entries, people_of_action = 0, defaultdict(set)
    categories, sources, people = set(), Counter(), Counter()
    for record in records:
        meta = record["metadata"]
        entries += 1
        people[int(meta["people"])] += 1
        people_of_action[int(meta["people"])].add(meta["action"])
        categories.add(meta["category"])
        sources[meta["source"]] += 1
    by_people = {str(n): 0 for n in (1, 2, 3)} | {str(n): len(a) for n, a in sorted(people_of_action.items())}
    return {
        "entries": entries,
        "actions": len(set().union(*people_of_action.values())),
        "actions_by_people": by_people,
        "categories": len(categories),
        "multi_person_entries": sum(c for n, c in people.items() if n > 1),
        "max_people": max(people, default=0),
        "sources": dict(sorted(sources.items())),
    }


def format_stats(stats: dict, location: str) -> str:
    share = stats["multi_person_entries"] / max(stats["entries"], 1)
    by_people = ", ".join(f"{n} people: {a}" for n, a in stats["actions_by_people"].items())
    sources = ", ".join(f"{s}: {n}" for s, n in stats["sources"].items()) or "none"
    return "\n".join([
        f"index:      {location}",
        f"entries:    {stats['entries']} ({share:.0%} with several people, at most {stats['max_people']})",
        f"actions:    {stats['actions']} ({by_people})",
        f"categories: {stats['categories']}",
        f"sources:    {sources}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_db.stats", description="Count what the pose index holds.")
    parser.add_argument("--index", default=None, help="index folder (default: $ASTRA_POSE_INDEX or the cache folder)")
    parser.add_argument("--chroma-url", default=None, help="a Chroma server instead (default: $ASTRA_CHROMA_URL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        index = PoseIndex.open(args.index, args.chroma_url)
        stats = index_stats(index.records())
    except PoseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(stats) if args.json else format_stats(stats, index.location))
    return 0
