"""The paper-style comparison table of one or more results files."""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import EngineError

# The paper's Table 3 (COCO complex pose), for orientation; its OKS is not standard COCO OKS.
PAPER_COCO = {"ASTRA (paper)": (0.0452, 0.7087, 0.4457, 0.3194), "UNO (paper)": (0.0277, 0.6857, 0.4283, 0.2970)}
_COLUMNS = ("OKS", "CLIP-I", "DINO", "CLIP-T")
_KEYS = ("oks", "clip_i", "dino", "clip_t")
# Candidate readings of the paper's OKS (the results' "variants", written by run.merge).
_VARIANT_COLUMNS = ("kp-AP", "OKS unmapped")
_VARIANT_KEYS = ("keypoint_ap", "oks_unmapped")


def load_results(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise EngineError(f"{path} does not exist; give results files written by `run`.") from error
    except json.JSONDecodeError as error:
        raise EngineError(f"{path} is not JSON ({error}).") from error
    if not isinstance(data, dict) or "metrics" not in data:
        raise EngineError(f"{path} is not a benchmark results file (no 'metrics').")
    return data


def table(paths: list[str | Path], paper: bool = False) -> str:
    """A Markdown table: one row per results file (mode, adapter, metrics, n)."""
    header = ["results", "bench", "engine", "mode", "adapter", *_COLUMNS, *_VARIANT_COLUMNS, "n"]
    rows, notes = [], []
    for path in paths:
        r = load_results(path)
        m, v = r["metrics"], r.get("variants") or {}  # results written before the variants have none
        engine = r.get("engine", {}).get("kind", "?")
        rows.append([Path(path).name, r.get("kind", "?"), engine + (" (noise)" if r.get("noise") else ""),
                     str(r.get("mode")), str(r.get("adapter") or "-"),
                     *(f"{m[k]:.4f}" if m.get(k) is not None else "-" for k in _KEYS),
                     *(f"{v[k]:.4f}" if v.get(k) is not None else "-" for k in _VARIANT_KEYS), str(r.get("n"))])
        if r.get("noise"):
            notes.append(f"{Path(path).name}: tiny engine, images are noise; the numbers only show the plumbing.")
    if paper:
        for name, values in PAPER_COCO.items():
            rows.append([name, "coco", "-", "-", "-", *(f"{x:.4f}" for x in values), "?", "?", "1000"])
        notes.append("Paper rows: its OKS (0.0452) is not standard COCO OKS (see README), so compare only CLIP/DINO; "
                     "kp-AP and OKS unmapped are our candidate readings of it, unverified.")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    lines = [fmt.format(*header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines + [""] + notes).rstrip() + "\n"
