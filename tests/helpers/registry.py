"""Builders for the registry tests: stage outputs laid out as the real stages write them."""

import json
from pathlib import Path

from tuneforge.base.outputs import Produced, sha256_path


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def stage_dir(path: Path, stage: str, files: dict[str, str], inputs: dict[str, Path], metrics: dict) -> Path:
    """An output folder as a stage writes it: data files plus meta.json with input hashes and metrics."""
    for name, content in files.items():
        write(path / name, content)
    meta = {
        "stage": stage,
        "config": {"seed": 1},
        "inputs": {key: {"path": str(p), "sha256": sha256_path(p)} for key, p in inputs.items()},
        "metrics": metrics,
        "wall_time_s": 0.5,
    }
    write(path / "meta.json", json.dumps(meta, indent=2, sort_keys=True))
    return path


def run_data_stages(root: Path, marker: str = "") -> dict[str, Produced]:
    """validate -> split -> augment on tiny files, as the real stages lay them out (relative paths)."""
    raw = write(Path("examples/intents.csv"), f"text,label\nhello there{marker},greet\nbye now,leave\n")
    validated = stage_dir(
        Path("data/validated"), "validate", {"train.parquet": f"validated{marker}", "labels.json": "[]"},
        {"train": raw}, {"success": True, "rows_out": 2},
    )
    write(Path("reports/validate/summary.md"), f"# validate{marker}\n")
    write(Path("reports/metrics/validate.json"), json.dumps({"success": True}))
    validate = Produced(
        "validate",
        {"validated": validated, "reports": Path("reports/validate"), "metrics": Path("reports/metrics/validate.json")},
        {"train": raw},
        {"success": True},
    )
    splits = stage_dir(
        Path("data/splits"), "split",
        {"train.parquet": f"train{marker}", "val.parquet": "val", "test.parquet": "test"},
        {"validated": validated}, {"drift_share": {"test_vs_train": 0.1}},
    )
    split = Produced("split", {"splits": splits}, {"validated": validated})
    augmented = stage_dir(
        Path("data/augmented"), "augment", {"train.parquet": f"augmented{marker}"},
        {"train": splits / "train.parquet"}, {"drift_share": 0.2},
    )
    augment = Produced("augment", {"augmented": augmented}, {"train": splits / "train.parquet"})
    return {"validate": validate, "split": split, "augment": augment}
