"""The query CLI contract: `python -m pose_db.query "PROMPT" ...` and `--batch FILE.jsonl --json`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pose_db.retrieval.query import main, parse_args, run
from pose_db.retrieval.retriever import PoseRetriever
from pose_db.scene.openpose_io import read_openpose

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def retriever(retrieval_index, minilm_embedder):
    """The real retriever over the session's real index of the retrieval tests' entries."""
    return PoseRetriever(retrieval_index, minilm_embedder)


def answer(argv, retriever) -> str:
    out = io.StringIO()
    run(parse_args(argv), out, retriever=retriever)
    return out.getvalue()


def test_single_prompt_json(retriever):
    lines = answer(["a man waving hello, 8k", "--people", "1", "--top-k", "3", "--json"], retriever).splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert {"query", "canonical", "matched", "results"} <= set(record)  # DESIGN section 4
    assert record["query"] == "a man waving hello, 8k" and record["canonical"] == "a man waving hello"
    assert record["matched"] and 1 <= len(record["results"]) <= 3
    best = record["results"][0]
    assert {"id", "score", "prompt", "action", "pose"} <= set(best)
    assert best["action"] == "wave" and best["score"] >= 0.55
    assert len(read_openpose(best["pose"]).people) == 1


def test_batch_answers_every_line_in_order(tmp_path, retriever):
    batch = tmp_path / "queries.jsonl"
    prompts = [
        {"prompt": "two people shaking hands", "people": 2},
        {"prompt": "a bowl of ramen on a wooden table"},
        {"prompt": "three friends waving hello together"},
    ]
    batch.write_text("\n".join(json.dumps(p) for p in prompts) + "\n\n")  # a blank line is skipped
    records = [json.loads(l) for l in answer(["--batch", str(batch), "--top-k", "2", "--json"], retriever).splitlines()]
    assert [r["query"] for r in records] == [p["prompt"] for p in prompts]
    assert records[0]["results"][0]["action"] == "handshake"
    assert records[1] == {"query": prompts[1]["prompt"], "canonical": records[1]["canonical"], "people": None, "matched": False,
                          "uncertain": False, "results": []}
    assert all(len(read_openpose(r["pose"]).people) == 3 for r in records[2]["results"])


def test_table_is_readable(retriever):
    text = answer(["cinematic photo: an acrobat doing a handstand on the beach"], retriever)
    assert "canonical: an acrobat doing a handstand" in text
    assert "handstand-000" in text and "score" in text
    assert "no match" in answer(["a sports car parked under a bridge at night"], retriever)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "a man waving"}', "not json"], ":2: not JSON"),
        (['{"people": 2}'], ':1: expected {"prompt"'),
        (['["a man waving"]'], ':1: expected {"prompt"'),
        (['{"prompt": "a man waving", "people": 40}'], "query 1: people must be"),
        (['{"prompt": "ok"}', '{"prompt": ""}'], "query 2: The prompt is empty"),
    ],
)
def test_bad_batch_fails_before_any_answer(tmp_path, capsys, lines, message):
    batch = tmp_path / "bad.jsonl"
    batch.write_text("\n".join(lines))
    assert main(["--batch", str(batch), "--json"]) == 2  # fails before loading any index or model
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_missing_batch_file(tmp_path, capsys):
    assert main(["--batch", str(tmp_path / "nope.jsonl"), "--json"]) == 2
    assert "Cannot open the batch file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["a man", "--batch", "x.jsonl"], ["--batch", "x.jsonl", "--people", "2"], ["a man", "--top-k", "many"]],
)
def test_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.slow
def test_module_entry_point_on_a_built_index(request):
    """`python -m pose_db.query` in a fresh process, on the shared small library index."""
    small_index = request.getfixturevalue("small_index")
    path = Path(small_index.location)  # an embedded index: its folder
    assert path.is_dir(), "the small_index fixture should be an embedded index folder"
    env = {**os.environ, "ASTRA_POSE_INDEX": str(path)}
    done = subprocess.run(
        [sys.executable, "-m", "pose_db.query", "a person waving hello, 8k, bokeh", "--top-k", "2", "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout.splitlines()[-1])
    assert record["canonical"] == "a person waving hello"
    assert isinstance(record["matched"], bool) and len(record["results"]) <= 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "a man waving", "people": "two"}'], "query 1: people must be a whole number"),
        (['{"prompt": "a man waving", "people": NaN}'], "query 1: people must be a whole number"),
        (['{"prompt": "a man waving", "people": Infinity}'], "query 1: people must be a whole number"),
        (['{"prompt": 42}'], ':1: expected {"prompt"'),
        (["[" * 100_000 + "]" * 100_000], ":1:"),
    ],
)
def test_hostile_batch_lines_get_a_sentence(tmp_path, capsys, lines, message):
    batch = tmp_path / "bad.jsonl"
    batch.write_text("\n".join(lines))
    assert main(["--batch", str(batch), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_binary_device_and_pipe_batches_get_a_sentence(tmp_path, capsys):
    import os

    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 100)
    assert main(["--batch", str(binary), "--json"]) == 2
    assert "is not a text file" in capsys.readouterr().err
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        assert main(["--batch", str(path), "--json"]) == 2  # returns at once: no blocking read
        assert "not a regular file" in capsys.readouterr().err
