"""Wall time of each data stage (validate, split, augment) on banking77, read in place from ../shared.

    python benchmarks/data_stages.py [--dataset ../shared/datasets/banking77] [--json PATH] [--quick]

Runs each stage's run() in a scratch directory, in pipeline order, and prints seconds per stage
and rows per second; the import time of the stage's libraries is measured separately. --json also
writes the figures to PATH; --quick times a small subset (benchmarks/quick_data.py) instead.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "datasets" / "banking77"


def rows_written(metrics: dict) -> int:
    """Rows the stage wrote: validate's rows_out, split's rows per split summed, augment's rows_augmented."""
    if isinstance(metrics.get("rows"), dict):
        return sum(metrics["rows"].values())
    return metrics.get("rows_out") or metrics.get("rows_augmented") or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a small subset of the dataset (CI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as subset_dir:
        label = None
        if args.quick:
            from quick_data import subset_source, write_subset

            args.dataset, label = write_subset(Path(subset_dir)), f"quick subset of {subset_source()}"
        measure(args.dataset.resolve(), label or str(args.dataset.resolve()), args.json)


def measure(dataset: Path, label: str, json_path: Path | None) -> None:
    json_path = json_path.resolve() if json_path else None

    started = time.perf_counter()
    from stages import augment, split, validate
    from tuneforge.base.layout import EXPECTATIONS_DIR, Workspace
    from tuneforge.params import parse_params
    from tuneforge.pipeline.runner import quiet_libraries

    quiet_libraries()
    import_s = time.perf_counter() - started

    params = parse_params(
        {
            "data": {"dir": str(dataset), "train_file": "train.csv", "test_file": "test.csv",
                     "label_column": "category"},
            "validate": {"min_examples_per_class": 30},
        }
    )
    timings = []
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        workspace = Workspace(expectations=REPO_ROOT / EXPECTATIONS_DIR)
        for name, call in (
            ("validate", lambda: validate.run(params.data, params.validate_, workspace=workspace)),
            ("split", lambda: split.run(params.split, workspace=workspace)),
            ("augment", lambda: augment.run(params.augment, workspace=workspace)),
        ):
            began = time.perf_counter()
            produced = call()
            seconds = time.perf_counter() - began
            rows = rows_written(produced.metrics)
            timings.append((name, seconds, rows))

    print(f"dataset: {label}")
    print(f"{'stage':<10}{'seconds':>10}{'rows':>10}{'rows/s':>12}")
    print(f"{'(imports)':<10}{import_s:>10.2f}")
    for name, seconds, rows in timings:
        print(f"{name:<10}{seconds:>10.2f}{rows:>10}{(rows / seconds if rows else 0):>12.0f}")
    print(f"{'total':<10}{sum(t[1] for t in timings):>10.2f}")
    if json_path:
        stages = [
            {"stage": name, "seconds": seconds, "rows": rows, "rows_per_second": rows / seconds if rows else 0}
            for name, seconds, rows in timings
        ]
        figures = {"dataset": label, "import_seconds": import_s, "stages": stages,
                   "total_seconds": sum(t[1] for t in timings)}
        json_path.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
