"""Stage `validate`: clean the labelled data, check it with a Great Expectations suite, write it as Parquet.

Cleaning (tuneforge.data.cleaning) normalises texts, drops empty texts and exact duplicates, and finds texts
seen with two or more labels. Training rows whose text is also in the test file are leakage and are
dropped (validate.drop_test_overlap). The suite (expectations/<suite>.json) then checks what is left;
its thresholds come from params.yaml as GX suite parameters. On success the conflicting texts, which
were within validate.max_duplicate_share, are dropped and everything is written at once; on failure
nothing is written and the error names the offending lines.

The given test file is the test split as is: its texts are normalised and its empty texts dropped,
but its exact duplicates and conflicting texts are kept (and counted) so scores stay comparable with
anyone else's on the same file.
"""

import time
from pathlib import Path

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.base.layout import EXPECTATIONS_DIR, VALIDATED_DIR, metrics_file, reports_dir
from tuneforge.base.outputs import Produced, atomic_dirs, atomic_write_text, write_json, write_meta, write_metrics
from tuneforge.base.spec import DataConfig, ValidateConfig
from tuneforge.data.cleaning import Cleaned, clean_table, conflicts, labels_per_text, with_derived_columns
from tuneforge.data.gx_suite import counts, failure_summary, failure_table, load_suite, validate_tables
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT, read_labelled_table
from tuneforge.pipeline.runner import stage_main

STAGE = "validate"
REPORTS_DIR = reports_dir(STAGE)
METRICS_FILE = metrics_file(STAGE)


def run(
    data: DataConfig,
    cfg: ValidateConfig,
    *,
    out_dir: Path = VALIDATED_DIR,
    reports: Path = REPORTS_DIR,
    metrics_path: Path = METRICS_FILE,
    expectations_dir: Path = EXPECTATIONS_DIR,
) -> Produced:
    started = time.time()
    out_dir, reports, metrics_path = Path(out_dir), Path(reports), Path(metrics_path)
    suite_path = Path(expectations_dir) / f"{cfg.suite}.json"
    suite = load_suite(suite_path)
    train_path, test_path = data.train_path, data.test_path

    train = _read_clean(train_path, data, drop_duplicates=True)
    test = _read_clean(test_path, data, drop_duplicates=False) if test_path else None
    test_texts = sorted(set(test.frame[TEXT])) if test is not None else []

    train_frame, dropped_overlap = train.frame, 0
    if test is not None and cfg.drop_test_overlap:
        in_test = train_frame[TEXT].isin(test_texts)
        train_frame, dropped_overlap = train_frame[~in_test].reset_index(drop=True), int(in_test.sum())
        if train_frame.empty:
            raise StageError(f"{train_path}: no rows left: all {dropped_overlap} texts are in {test_path}")
    _require_two_classes(train_path, train_frame, data.label_column)

    labels = list(data.labels) if data.labels is not None else sorted(train_frame[LABEL].dropna().unique())
    labels_source = "declared" if data.labels is not None else "inferred"
    tables = _tables_to_validate(train_frame, test, labels, test_texts, cfg)
    files = {"train": train_path, "test": test_path}
    results = validate_tables(suite, suite_path, tables)
    _raise_on_failures(results, tables, files, suite)

    train_conflicts = conflicts(train_frame)
    conflicting = labels_per_text(train_frame) > 1
    train_out = train_frame[~conflicting].reset_index(drop=True)
    test_out = test.frame if test is not None else None
    evaluated = sum(counts(result)[1] for result in results.values())
    metrics = {
        "rows_in": train.rows_in,
        "rows_out": len(train_out),
        "dropped_empty": train.dropped_empty,
        "dropped_duplicates": train.dropped_duplicates,
        "dropped_conflicts": int(conflicting.sum()),
        "dropped_test_overlap": dropped_overlap,
        "test_rows_in": test.rows_in if test is not None else 0,
        "test_rows_out": len(test_out) if test_out is not None else 0,
        "classes": len(labels),
        "expectations_evaluated": evaluated,
        "success": True,
    }
    inputs = {"train": train_path, **({"test": test_path} if test_path else {}), "suite": suite_path}

    with atomic_dirs(out_dir, reports) as (data_tmp, reports_tmp):
        _write_table(train_out, data_tmp / "train.parquet")
        if test_out is not None:
            _write_table(test_out, data_tmp / "test.parquet")
        write_json(data_tmp / "labels.json", {"labels": labels, "source": labels_source})
        write_json(reports_tmp / "gx_result.json", results)
        summary = _summary(
            files=files, suite_path=suite_path, results=results, train=train, test=test, metrics=metrics,
            train_conflicts=train_conflicts, test_conflicts=conflicts(test_out) if test_out is not None else [],
            labels=labels, labels_source=labels_source, train_out=train_out, test_out=test_out,
        )
        atomic_write_text(reports_tmp / "summary.md", summary)
        write_meta(
            data_tmp, stage=STAGE,
            config={"data": data, "validate": cfg},
            inputs=inputs, metrics=metrics, started=started,
            extra={"labels": labels, "labels_source": labels_source},
        )
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    write_metrics(metrics_path, metrics)

    outputs = {"validated": out_dir, "reports": reports, "metrics": metrics_path}
    return Produced(stage=STAGE, outputs=outputs, inputs=inputs, metrics=metrics)


def _read_clean(path: Path, data: DataConfig, *, drop_duplicates: bool) -> Cleaned:
    cleaned = clean_table(
        read_labelled_table(path, data.text_column, data.label_column), drop_duplicates=drop_duplicates
    )
    if cleaned.frame.empty:
        raise StageError(f"{path}: no non-empty texts (all {cleaned.rows_in} rows were empty)")
    return cleaned


def _require_two_classes(path: Path, frame: pd.DataFrame, label_column: str) -> None:
    classes = sorted(frame[LABEL].dropna().unique())
    if not classes:
        raise StageError(f"{path}: no labels (column '{label_column}' is empty in every row)")
    if len(classes) == 1:
        raise StageError(f"{path}: only one class ('{classes[0]}'); classification needs at least 2")


def _tables_to_validate(
    train_frame: pd.DataFrame, test: Cleaned | None, labels: list[str], test_texts: list[str], cfg: ValidateConfig
) -> dict[str, tuple[pd.DataFrame, dict]]:
    """Each frame GX validates (with its derived columns) and its suite parameters."""
    shared = {
        "labels": labels,
        "min_text_chars": cfg.min_text_chars,
        "max_text_chars": cfg.max_text_chars,
        "max_duplicate_share": cfg.max_duplicate_share,
    }
    tables = {"train": (with_derived_columns(train_frame), {
        **shared, "required_labels": labels, "test_texts": test_texts,
        "min_examples_per_class": cfg.min_examples_per_class,
    })}
    if test is not None:
        # The test file only needs known labels and sound texts; it need not cover every class.
        tables["test"] = (with_derived_columns(test.frame), {
            **shared, "required_labels": [], "test_texts": [], "min_examples_per_class": 1,
        })
    return tables


def _raise_on_failures(results: dict, tables: dict, files: dict, suite: dict) -> None:
    failed = [name for name, result in results.items() if counts(result)[0]]
    if not failed:
        return
    messages, details = [], []
    for name in failed:
        bad, evaluated = counts(results[name])
        summary = failure_summary(results[name], tables[name][0], suite)
        messages.append(f"{files[name]}: {bad} of {evaluated} expectations failed: {summary}")
        heading = [f"{files[name]}:"] if len(failed) > 1 else []
        details.append("\n".join([*heading, failure_table(results[name], tables[name][0], suite)]))
    raise StageError("; ".join(messages), detail="\n\n".join(details))


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    frame[[TEXT, LABEL, SOURCE_ROW]].to_parquet(path, index=False)


def _summary(
    *, files, suite_path, results, train, test, metrics, train_conflicts, test_conflicts,
    labels, labels_source, train_out, test_out,
) -> str:
    lines = ["# validate", ""]
    for name, result in results.items():
        bad, evaluated = counts(result)
        passed = evaluated - bad
        lines.append(f"- `{files[name]}`: {passed} of {evaluated} expectations of `{suite_path}` passed")
    lines += [
        "",
        "## Rows",
        "",
        "| file | rows in | empty texts dropped | exact duplicates dropped | also in test file, dropped "
        "| conflicting labels, dropped | rows out |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| `{files['train']}` | {train.rows_in} | {train.dropped_empty} | {train.dropped_duplicates} "
        f"| {metrics['dropped_test_overlap']} | {metrics['dropped_conflicts']} | {metrics['rows_out']} |",
    ]
    if test is not None:
        kept_duplicates = int(test.frame.duplicated([TEXT, LABEL]).sum())
        lines += [
            f"| `{files['test']}` | {test.rows_in} | {test.dropped_empty} | none ({kept_duplicates} kept) | – "
            f"| none ({sum(len(c['lines']) for c in test_conflicts)} kept) | {len(test_out)} |",
            "",
            "The test file is the test split as given: its duplicates and conflicting texts are kept.",
        ]
    lines += ["", "## Texts with conflicting labels", ""]
    listed = [("train", c) for c in train_conflicts] + [("test", c) for c in test_conflicts]
    lines += [
        f"- {name}: '{c['text']}' labelled {', '.join(c['labels'])} "
        f"on lines {', '.join(map(str, c['lines']))} ({'dropped' if name == 'train' else 'kept'})"
        for name, c in listed
    ] or ["None."]
    source = "declared in `data.labels`" if labels_source == "declared" else "inferred from the training file"
    train_counts = train_out[LABEL].value_counts()
    test_counts = test_out[LABEL].value_counts() if test_out is not None else None
    lines += [
        "", f"## Labels: {len(labels)}, {source}", "",
        "| label | train |" + (" test |" if test is not None else ""),
        "| --- | ---: |" + (" ---: |" if test is not None else ""),
    ]
    for label in labels:
        row = f"| {label} | {int(train_counts.get(label, 0))} |"
        lines.append(row + (f" {int(test_counts.get(label, 0))} |" if test_counts is not None else ""))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.data, p.validate_), argv)


if __name__ == "__main__":
    raise SystemExit(main())
