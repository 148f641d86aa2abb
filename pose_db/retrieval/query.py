"""Query the RAG-Pose database from the command line (the contract evaluations use).

    python -m pose_db.query "PROMPT" [--people N] [--top-k K] [--json]
    python -m pose_db.query --batch FILE.jsonl [--top-k K] --json

A batch file holds one `{"prompt": ..., "people": N?}` object per line; the answer is one JSON
object per input line, in order: `{"query", "canonical", "matched", "results": [{"id", "score",
"prompt", "action", "pose"}]}` with `pose` in OpenPose JSON. Every line is checked before any
query runs, so a bad file gives one clear error and no partial output. Without --json a
readable table is printed.

The index is `--index`, else `ASTRA_POSE_INDEX`, else the default cache folder; a query never
builds one (`python -m pose_db.build` does). The normaliser is `--normalizer` or `ASTRA_NORMALIZER`: "rules" (default), or a hub id
or folder of an instruct LLM such as Qwen/Qwen2.5-1.5B-Instruct.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from pose_db import env
from pose_db.prompt import make_normalizer
from pose_db.scene.files import read_regular_file
from pose_db.scene.model import PoseError

from .retriever import DEFAULT_THRESHOLD, PoseRetriever, Retrieval


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
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="confidence threshold (default 0.55)")
    parser.add_argument("--index", help="index folder (default: $ASTRA_POSE_INDEX or the cache folder)")
    parser.add_argument(
        "--normalizer",
        default=(env.get("ASTRA_NORMALIZER") or "rules"),
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
    data = _read_regular(path)
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise PoseError(f"{path} is not a text file (byte {error.start} is not UTF-8): give a .jsonl file with one "
                        f'{{"prompt": ..., "people": N}} object per line.') from None
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise PoseError(f"{path}:{number}: not JSON ({error.msg}); write one object per line.") from None
        except RecursionError:
            raise PoseError(f"{path}:{number}: nested too deeply to be a query; write {{\"prompt\": ...}}.") from None
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            raise PoseError(f'{path}:{number}: expected {{"prompt": "...", "people": N}}, got {line.strip()[:80]}')
        queries.append((item["prompt"], item.get("people")))
    return queries


MAX_BATCH_BYTES = 50_000_000


def _read_regular(path: Path) -> bytes:
    """A batch file's bytes: a regular file only (a FIFO or ``/dev/zero`` never blocks or fills memory)."""
    return read_regular_file(path, limit=MAX_BATCH_BYTES, what="batch file", expected="a readable .jsonl file")


def format_table(retrieval: Retrieval, threshold: float) -> str:
    """A human-readable answer: the canonical query, then one row per result."""
    people = "any" if retrieval.people is None else str(retrieval.people)
    lines = [f"query:     {retrieval.query}", f"canonical: {retrieval.canonical}", f"people:    {people}"]
    if not retrieval.matched:
        lines.append(f"no match (no entry scores >= {threshold:.2f}): the pose will follow the text alone.")
        return "\n".join(lines)
    lines.append(f"{'#':>2}  {'score':>5}  {'id':<24} {'action':<20} {'view':<13} prompt")
    for rank, hit in enumerate(retrieval.results, start=1):
        e = hit.entry
        lines.append(f"{rank:>2}  {hit.score:5.3f}  {e.id:<24} {e.action:<20} {e.view:<13} {e.prompt}")
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO, retriever: PoseRetriever | None = None) -> None:
    """Answer the query or the batch on `out`; `retriever` defaults to the configured one."""
    queries = read_batch(args.batch) if args.batch else [(args.prompt, args.people)]
    for number, (prompt, people) in enumerate(queries, start=1):  # all checked before any answer
        try:
            PoseRetriever.check_inputs(prompt, people, args.top_k)
        except PoseError as error:
            raise PoseError(f"query {number}: {error}" if args.batch else str(error)) from error
    retriever = retriever or PoseRetriever.open(
        args.index, normalizer=make_normalizer(args.normalizer), threshold=args.threshold
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

