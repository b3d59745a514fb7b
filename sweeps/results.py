"""Writing a sweep run directory (layout: picoclaw_vllm.run_layout) one step at a time.

Each finished step is appended to results.csv and results.parquet is rewritten from it, so
an interrupted sweep keeps every finished step and `--resume` knows which ones to skip.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd

from picoclaw_vllm import run_layout as layout
from picoclaw_vllm.run_layout import Manifest, ResultRow
from sweeps.config import SweepConfig

EXTRA_COLUMNS = [
    *(f"{m}_ms_std" for m in layout.LATENCY_METRICS),
    "started_unix",
    "wall_s",  # the step's wall time, warm-up and drain included
    "server_ready_s",  # how long the setting's server took to become ready
    "vllm_version",
    "repeat",  # 1-based: the k-th run of the same step (--repeats); step_id <id>-x<k> for k >= 2
    "window_start_unix",  # the measured window: requests started inside it are counted
    "window_end_unix",  # (after the warm-up; in budget mode, until the budget was met)
    "budget_met",  # budget mode: 1 the sample budget was met, 0 the step hit its maximum time
    "search_level",  # --search: the level (sessions / users) this step measured
]
ALL_COLUMNS = layout.COLUMNS + EXTRA_COLUMNS


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("picoclaw-vllm", "locust"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "unknown"
    return out


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def manifest_path(self) -> Path:
        return self.path / layout.MANIFEST

    @property
    def csv_path(self) -> Path:
        return self.path / layout.RESULTS_CSV

    def records_path(self, step_id: str) -> Path:
        return self.path / layout.RECORDS_DIR / f"{step_id}.jsonl"

    def log_path(self, setting_id: str) -> Path:
        return self.path / layout.LOGS_DIR / f"{setting_id}.log"

    def locust_log_path(self, step_id: str) -> Path:
        return self.path / layout.LOGS_DIR / f"locust-{step_id}.log"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def read_manifest(self) -> Manifest:
        """This sweep's own sweep.json (to resume it): trusted to have the shape it wrote."""
        data: Manifest = json.loads(self.manifest_path.read_text())
        return data

    def new_manifest(self, config: SweepConfig) -> Manifest:
        versions = _versions()
        return {
            "schema": layout.SCHEMA,
            "created_unix": time.time(),
            "tool_version": versions.pop("picoclaw-vllm"),
            "locust_version": versions.pop("locust"),
            "vllm_version": None,
            "platform": versions,
            "model": config.model,
            "config": config.to_json(),
            "settings": {
                s.setting_id: {
                    "max_num_seqs": s.max_num_seqs,
                    "tensor_parallel_size": s.tensor_parallel_size,
                    "steps": [step_id for step_id, _ in s.steps],
                }
                for s in config.settings()
            },
            "vllm_commands": {},
            "locust_commands": {},
        }

    def write_manifest(self, manifest: Manifest) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        os.replace(tmp, self.manifest_path)

    def rows(self) -> list[ResultRow]:
        if not self.csv_path.exists():
            return []
        with self.csv_path.open(newline="") as f:
            return list(csv.DictReader(f))

    def finished_ids(self) -> set[str]:
        return {str(row["step_id"]) for row in self.rows()}

    def append_row(self, row: ResultRow) -> None:
        unknown = set(row) - set(ALL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        self.path.mkdir(parents=True, exist_ok=True)
        self._upgrade_csv_header()
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=ALL_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in ALL_COLUMNS})
        self.write_parquet()

    def _upgrade_csv_header(self) -> None:
        """Rewrite a results.csv from an older version (other columns) with today's columns,
        so that a resumed sweep appends rows under the right header."""
        if not self.csv_path.exists():
            return
        with self.csv_path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header == ALL_COLUMNS:
            return
        rows = self.rows()
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=ALL_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.csv_path)

    def frame(self) -> pd.DataFrame:
        if not self.csv_path.exists():
            return pd.DataFrame(columns=ALL_COLUMNS)
        return pd.read_csv(
            self.csv_path, dtype={"failure_id": "string", "failure_message": "string"}
        )

    def write_parquet(self) -> None:
        path = self.path / layout.RESULTS_PARQUET
        tmp = path.with_suffix(".parquet.tmp")
        self.frame().to_parquet(tmp, index=False)
        os.replace(tmp, path)
