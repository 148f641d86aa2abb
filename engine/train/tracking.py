"""A CSV tracker for accelerate: every ``accelerator.log`` call becomes a row, no network, no package.

accelerate's built-in trackers (TensorBoard, W&B, MLflow, Aim, ...) each need a package this
project does not install; ``GeneralTracker`` is accelerate's extension point for a custom one.
The file is ``<logging_dir>/<run>.csv``: columns ``step`` then every key ever logged, in order
of first appearance (the file is rewritten when a new key appears, so it stays rectangular).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from accelerate.tracking import GeneralTracker


class CSVTracker(GeneralTracker):
    """``Accelerator(log_with=[CSVTracker("train", out / "logs")])``; main process only."""

    name = "csv"
    requires_logging_directory = False
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | Path) -> None:
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / f"{run_name}.csv"
        self.columns: list[str] = ["step"]
        self.rows: list[dict] = []

    @property
    def tracker(self) -> CSVTracker:
        return self

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # a resumed run appends to its log
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or ["step"])
                self.rows = list(reader)

    def store_init_configuration(self, values: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        (self.path.parent / f"{self.run_name}_config.json").write_text(json.dumps(values, indent=2) + "\n")

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        row = {"step": step, **{k: v for k, v in values.items() if isinstance(v, (int, float, str))}}
        new = [k for k in row if k not in self.columns]
        self.columns += new
        self.rows.append(row)
        if new or not self.path.exists():
            self._write_all()
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, self.columns).writerow(row)

    def _write_all(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
