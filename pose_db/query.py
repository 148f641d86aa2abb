"""Query the RAG-Pose database from the command line (the contract evaluations use).

    python -m pose_db.query "PROMPT" [--people N] [--top-k K] [--json]
    python -m pose_db.query --batch FILE.jsonl [--top-k K] --json

A batch file holds one `{"prompt": ..., "people": N?}` object per line; the answer is one JSON
object per input line, in order: `{"query", "canonical", "matched", "results": [{"id", "score",
"prompt", "action", "pose"}]}` with `pose` in OpenPose JSON. Every line is checked before any
query runs, so a bad file gives one clear error and no partial output. Without --json a
readable table is printed.

The index is `--index`, else `ASTRA_POSE_INDEX`, else the default cache folder (built when
missing). The normaliser is `--normalizer` or `ASTRA_NORMALIZER`: "rules" (default), or a hub id
or folder of an instruct LLM such as Qwen/Qwen2.5-1.5B-Instruct.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from .normalize import make_normalizer
from .retrieve import DEFAULT_THRESHOLD, PoseRetriever, Retrieval
from .scene import PoseError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pose_db.query",
        description="Retrieve skeletons for a prompt from the RAG-Pose database.",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt to retrieve poses for")
    parser.add_argument("--batch", type=Path, metavar="FILE.jsonl", help='one {"prompt": ..., "people": N} per line')
    parser.add_argument("--people", type=int, help="number of human subjects (default: inferred from the prompt)")
    parser.add_argument("--top-k", type=int, default=8, help="results per prompt (default 8)")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="confidence gate (default 0.55)")
    parser.add_argument("--index", help="index folder (default: $ASTRA_POSE_INDEX or the cache folder)")
    parser.add_argument(
        "--normalizer",
        default=os.environ.get("ASTRA_NORMALIZER", "rules"),
        help='"rules" or an LLM hub id / folder (default: $ASTRA_NORMALIZER or "rules")',
    )
    args = parser.parse_args(argv)
    if (args.prompt is None) == (args.batch is None):
        parser.error('give either a PROMPT or --batch FILE.jsonl, e.g. python -m pose_db.query "a man waving"')
    if args.batch is not None and args.people is not None:
        parser.error("--people applies to a single prompt; in a batch give \"people\" on each line")
    return args


def read_batch(path: Path) -> list[tuple[str, int | None]]:
    """(prompt, people) per non-blank line; a PoseError naming the line when one is malformed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise PoseError(f"Cannot read the batch file {path}: {error.strerror}. Give a readable .jsonl file.") from error
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise PoseError(f"{path}:{number}: not JSON ({error.msg}); write one object per line.") from error
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            raise PoseError(f'{path}:{number}: expected {{"prompt": "...", "people": N}}, got {line.strip()[:80]}')
        queries.append((item["prompt"], item.get("people")))
    return queries


def format_table(retrieval: Retrieval, threshold: float) -> str:
    """A human-readable answer: the canonical query, then one row per result."""
    people = "any" if retrieval.people is None else str(retrieval.people)
    lines = [f"query:     {retrieval.query}", f"canonical: {retrieval.canonical}", f"people:    {people}"]
    if not retrieval.matched:
        lines.append(f"no match (no entry scores >= {threshold:.2f}): the pose will follow the text alone.")
        return "\n".join(lines)
    lines.append(f"{'#':>2}  {'score':>5}  {'id':<24} {'action':<20} {'view':<13} prompt")
    for rank, r in enumerate(retrieval.results, start=1):
        lines.append(f"{rank:>2}  {r.score:5.3f}  {r.id:<24} {r.action:<20} {r.view:<13} {r.prompt}")
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO, retriever: PoseRetriever | None = None) -> None:
    """Answer the query or the batch on `out`; `retriever` defaults to the configured one."""
    queries = read_batch(args.batch) if args.batch else [(args.prompt, args.people)]
    for number, (prompt, people) in enumerate(queries, start=1):  # all checked before any answer
        try:
            PoseRetriever.check_inputs(prompt, people, args.top_k)
        except PoseError as error:
            raise PoseError(f"query {number}: {error}" if args.batch else str(error)) from error
    retriever = retriever or PoseRetriever.default(
        path=args.index, normalizer=make_normalizer(args.normalizer), threshold=args.threshold
    )
    for prompt, people in queries:
        retrieval = retriever.retrieve(prompt, people=people, top_k=args.top_k)
        if args.json:
            out.write(json.dumps(retrieval.to_json()) + "\n")
        else:
            out.write(format_table(retrieval, retriever.threshold) + "\n\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args, sys.stdout)
    except PoseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
