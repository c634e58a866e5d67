"""Stage `validate`: clean the labelled data, check it with a Great Expectations suite, write it as Parquet.

Cleaning (tuneforge.data.cleaning) normalises texts, drops empty texts and exact duplicates, and finds texts
seen with two or more labels. Training rows whose text is also in a given test or val file (compared as the
split stage compares them, ignoring case) are leakage and are dropped (validate.drop_test_overlap covers
both). The suite (expectations/<suite>.json, by default the task's) then checks what is left; its
thresholds come from params.yaml as GX suite parameters. On success the conflicting texts, which were within
validate.max_duplicate_share, are dropped and everything is written at once; on failure nothing is written
and the error names the offending lines.

The task reads the rows (model.task), may fix what it read before cleaning (token classification repairs or
refuses ill-formed BIO tags, validate.repair_bio_tags, and counts the repairs in the metrics), turns a declared
label set into the one it records (token classification: every tag of the declared entity types), and checks
the cleaned training rows; every number of the validate section is a suite parameter under its own name.

A given test file (data.test_file) is the test split as is, and a given val file (data.val_file) the val
split: their texts are normalised and their empty texts dropped, but their exact duplicates and conflicting
texts are kept (and counted) so scores stay comparable with anyone else's on the same files. The two must
not share a text: with validate.drop_val_test_overlap the val rows whose text is in the test file are dropped
(the test file stays as given), otherwise the files are refused.
"""

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, atomic_write_text, write_json, write_meta, write_metrics
from tuneforge.base.spec import DataConfig, ModelConfig, ValidateConfig
from tuneforge.data.cleaning import Cleaned, clean_table, conflicts, labels_per_text
from tuneforge.data.gx_suite import counts, failure_summary, failure_table, load_suite, validate_tables
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT, label_declaration
from tuneforge.data.out_of_scope import clean_out_of_scope
from tuneforge.data.textnorm import text_key
from tuneforge.inference.rejection import require_rejection
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import Task, task_for

STAGE = "validate"


def run(
    data: DataConfig, cfg: ValidateConfig, *, model_cfg: ModelConfig | None = None, workspace: Workspace = Workspace()
) -> Produced:
    started = time.time()
    task = task_for(model_cfg, STAGE)
    out_dir, reports, metrics_path = workspace.validated, workspace.reports(STAGE), workspace.metrics(STAGE)
    suite_path = workspace.expectations / f"{cfg.suite or task.suite}.json"
    suite = load_suite(suite_path)
    files = {"train": data.train_path, "val": data.val_path, "test": data.test_path}
    files = {name: path for name, path in files.items() if path is not None}

    read_facts = {}  # file name -> the task's facts on what it fixed while reading (fix_rows)
    train, read_facts["train"] = _read_clean(task, files["train"], data, cfg, drop_duplicates=True,
                                             key="data.train_file")
    # A given val or test file is that split as is (see the module docstring).
    held_out = {}
    for name in ("val", "test"):
        if name in files:
            held_out[name], read_facts[name] = _read_clean(task, files[name], data, cfg, drop_duplicates=False,
                                                           key=f"data.{name}_file")
    dropped_val_in_test = 0
    if len(held_out) == 2:
        if cfg.drop_val_test_overlap:
            held_out["val"], dropped_val_in_test = _drop_val_in_test(held_out["val"], held_out["test"], files["val"])
        else:
            _refuse_shared_texts(held_out["val"].frame, files["val"], held_out["test"].frame, files["test"])
    held_out_texts = {name: set(cleaned.frame[TEXT]) for name, cleaned in held_out.items()}
    # Leakage is judged as split judges it (text_key: case too), so what is dropped here cannot fail there.
    held_out_keys = {name: set(cleaned.frame[TEXT].map(text_key)) for name, cleaned in held_out.items()}

    # Training rows in a given val file leak as surely as those in a given test file (early stopping, tuning
    # and model choice read val): one setting, validate.drop_test_overlap, covers both.
    train_frame, dropped_overlap = train.frame, {"val": 0, "test": 0}
    if cfg.drop_test_overlap:
        for name, keys in held_out_keys.items():
            in_held_out = train_frame[TEXT].map(text_key).isin(keys)
            dropped_overlap[name] = int(in_held_out.sum())
            train_frame = train_frame[~in_held_out].reset_index(drop=True)
        if train_frame.empty:
            given = " and ".join(str(files[name]) for name in held_out)
            dropped = sum(dropped_overlap.values())
            raise StageError(f"{files['train']}: no rows left: all {dropped} texts are in {given}")
    declared, labels_source = label_declaration(data)
    if declared is not None and task.declared_label_set is not None:
        declared = task.declared_label_set(declared)
    labels = declared if declared is not None else task.label_set(train_frame[LABEL])
    task.check_rows(files["train"], train_frame, data, labels, cfg)
    out_of_scope, oos_counts = None, {}
    if data.oos_path is not None:
        in_scope_keys = set(train_frame[TEXT].map(text_key)).union(*held_out_keys.values())
        out_of_scope, oos_counts = _read_out_of_scope(task, data, labels, in_scope_keys)

    held_out_all = sorted(set().union(*held_out_texts.values()))
    tables = _tables_to_validate(task, train_frame, held_out, labels, held_out_all, cfg)
    results = validate_tables(suite, suite_path, tables)
    _raise_on_failures(results, tables, files, suite)

    train_conflicts = conflicts(train_frame)
    conflicting = labels_per_text(train_frame) > 1
    outputs = {"train": train_frame[~conflicting].reset_index(drop=True)}
    outputs |= {name: cleaned.frame for name, cleaned in held_out.items()}
    evaluated = sum(counts(result)[1] for result in results.values())
    metrics = {
        "rows_in": train.rows_in,
        "rows_out": len(outputs["train"]),
        "dropped_empty": train.dropped_empty,
        "dropped_duplicates": train.dropped_duplicates,
        "dropped_conflicts": int(conflicting.sum()),
        "dropped_test_overlap": dropped_overlap["test"],
        "dropped_val_overlap": dropped_overlap["val"],
        **{f"{name}_rows_in": held_out[name].rows_in if name in held_out else 0 for name in ("val", "test")},
        **{f"{name}_rows_out": len(outputs[name]) if name in outputs else 0 for name in ("val", "test")},
        "classes": len(labels),
        "expectations_evaluated": evaluated,
        "success": True,
    }
    if cfg.drop_val_test_overlap:
        metrics["dropped_val_in_test"] = dropped_val_in_test
    metrics |= oos_counts
    for name, facts in read_facts.items():  # train's facts unprefixed, as rows_in; val_..., test_... as theirs
        metrics |= {(key if name == "train" else f"{name}_{key}"): value for key, value in facts.items()}
    if task.label_cardinality is not None:
        metrics["label_cardinality"] = {name: task.label_cardinality(frame[LABEL]) for name, frame in outputs.items()}
    inputs = {**files, "suite": suite_path} | ({"oos": data.oos_path} if data.oos_path else {})

    with atomic_dirs(out_dir, reports) as (data_tmp, reports_tmp):
        for name, frame in outputs.items():
            _write_table(frame, data_tmp / f"{name}.parquet")
        if out_of_scope is not None:
            _write_table(out_of_scope, data_tmp / "oos.parquet")
        write_json(data_tmp / "labels.json", {"labels": labels, "source": labels_source})
        write_json(reports_tmp / "gx_result.json", results)
        summary = _summary(
            files=inputs, suite_path=suite_path, results=results, train=train, held_out=held_out,
            metrics=metrics, train_conflicts=train_conflicts, outputs=outputs,
            labels=labels, labels_source=labels_source, task=task, read_facts=read_facts,
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

    produced = {"validated": out_dir, "reports": reports, "metrics": metrics_path}
    return Produced(stage=STAGE, outputs=produced, inputs=inputs, metrics=metrics)


def _read_clean(
    task: Task, path: Path, data: DataConfig, cfg: ValidateConfig, *, drop_duplicates: bool, key: str
) -> tuple[Cleaned, dict[str, int]]:
    """The file's rows, fixed by the task (fix_rows) and cleaned, and the task's facts on what it fixed."""
    if not path.is_file():
        raise StageError(f"{path}: file not found ({key})")
    rows, facts = task.read_rows(path, data), {}
    if task.fix_rows is not None:
        rows, facts = task.fix_rows(path, rows, cfg)
    cleaned = clean_table(rows, drop_duplicates=drop_duplicates)
    if cleaned.frame.empty:
        raise StageError(f"{path}: no non-empty texts (all {cleaned.rows_in} rows were empty)")
    return cleaned, facts


def _read_out_of_scope(
    task: Task, data: DataConfig, labels: list[str], in_scope_keys: set[str]
) -> tuple[pd.DataFrame, dict]:
    """data.oos_file's rows (tuneforge.data.out_of_scope), none of whose texts is an in-scope text."""
    require_rejection(task.outputs.fit_rejection if task.outputs is not None else None, True, task.name)
    path = data.oos_path
    if not path.is_file():
        raise StageError(f"{path}: file not found (data.oos_file)")
    return clean_out_of_scope(task.read_rows(path, data, label_required=False), path, labels, in_scope_keys)


def _refuse_shared_texts(val: pd.DataFrame, val_path: Path, test: pd.DataFrame, test_path: Path) -> None:
    """A text in both given files would be selected on and scored on; neither file is changed, so refuse."""
    shared = val[val[TEXT].isin(set(test[TEXT]))]
    if shared.empty:
        return
    first = shared.iloc[0]
    test_line = int(test.loc[test[TEXT] == first[TEXT], SOURCE_ROW].iloc[0])
    raise StageError(
        f"{val_path}: {shared[TEXT].nunique()} texts are also in {test_path} (first: line {first[SOURCE_ROW]}, "
        f"line {test_line} there: '{_shorten(first[TEXT])}'); a given val file and test file must not share texts"
    )


def _drop_val_in_test(val: Cleaned, test: Cleaned, val_path: Path) -> tuple[Cleaned, int]:
    """validate.drop_val_test_overlap: the test file stays as given (scores stay comparable), so the val rows
    whose text is also a test text go; refused when none would be left."""
    in_test = val.frame[TEXT].map(text_key).isin(set(test.frame[TEXT].map(text_key)))
    if in_test.all():
        raise StageError(f"{val_path}: no rows left: all {len(val.frame)} texts are also in the test file")
    kept = replace(val, frame=val.frame[~in_test].reset_index(drop=True))
    return kept, int(in_test.sum())


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tables_to_validate(
    task: Task, train_frame: pd.DataFrame, held_out: dict[str, Cleaned], labels: list[str],
    held_out_texts: list[str], cfg: ValidateConfig,
) -> dict[str, tuple[pd.DataFrame, dict]]:
    """Each frame GX validates (with the task's derived columns) and its suite parameters: every number of the
    validate section under its own name (a suite bounds what it checks by the settings it names), and these."""
    numbers = {key: value for key, value in cfg.model_dump().items()
               if isinstance(value, int | float) and not isinstance(value, bool)}
    shared = {
        **numbers,
        "labels": labels,
        "min_labels_per_row": 0 if cfg.allow_empty_labels else 1,  # for suites of rows holding label sets
    }
    # The suite parameter keeps its name `test_texts` (suites in use refer to it); it holds the texts of
    # every given held-out file, val and test.
    tables = {"train": (task.gx_table(train_frame, labels), {
        **shared, "required_labels": labels, "test_texts": held_out_texts,
        "min_examples_per_class": cfg.min_examples_per_class,
    })}
    for name, cleaned in held_out.items():
        # A given val or test file only needs known labels and sound texts; it need not cover every class.
        tables[name] = (task.gx_table(cleaned.frame, labels), {
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
    *, files, suite_path, results, train, held_out, metrics, train_conflicts, outputs, labels, labels_source,
    task: Task, read_facts: dict[str, dict[str, int]],
) -> str:
    lines = ["# validate", ""]
    for name, result in results.items():
        bad, evaluated = counts(result)
        passed = evaluated - bad
        lines.append(f"- `{files[name]}`: {passed} of {evaluated} expectations of `{suite_path}` passed")
    overlap = str(metrics["dropped_test_overlap"])
    if "val" in held_out:
        overlap = f"{metrics['dropped_val_overlap']} (val), {metrics['dropped_test_overlap']} (test)"
    lines += [
        "",
        "## Rows",
        "",
        "| file | rows in | empty texts dropped | exact duplicates dropped | also in a given test or val file, "
        "dropped | conflicting labels, dropped | rows out |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| `{files['train']}` | {train.rows_in} | {train.dropped_empty} | {train.dropped_duplicates} "
        f"| {overlap} | {metrics['dropped_conflicts']} | {metrics['rows_out']} |",
    ]
    held_out_conflicts = {name: conflicts(outputs[name]) for name in held_out}
    for name, cleaned in held_out.items():
        kept_duplicates = int(cleaned.frame.duplicated([TEXT, LABEL]).sum())
        kept_conflicts = sum(len(c["lines"]) for c in held_out_conflicts[name])
        dropped = metrics.get("dropped_val_in_test") if name == "val" else None
        in_test = "–" if dropped is None else f"{dropped} (test)"
        lines.append(
            f"| `{files[name]}` | {cleaned.rows_in} | {cleaned.dropped_empty} | none ({kept_duplicates} kept) "
            f"| {in_test} | none ({kept_conflicts} kept) | {len(outputs[name])} |"
        )
    if "oos_rows_in" in metrics:
        lines.append(
            f"| `{files['oos']}` (out of scope) | {metrics['oos_rows_in']} | {metrics['oos_dropped_empty']} "
            f"| {metrics['oos_dropped_duplicates']} | {metrics['oos_dropped_in_scope_texts']} (in-scope texts) | – "
            f"| {metrics['oos_rows_out']} |"
        )
    if held_out:
        given = " and ".join(f"the {name} file is the {name} split" for name in held_out)
        lines += ["", f"As given, {given}: duplicates and conflicting texts are kept."]
    fixed = {name: facts for name, facts in read_facts.items() if any(facts.values())}
    if fixed:
        lines += ["", "Fixed while reading:"] + [
            f"- `{files[name]}`: " + ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in facts.items())
            for name, facts in fixed.items()
        ]
    lines += ["", "## Texts with conflicting labels", ""]
    listed = [("train", c) for c in train_conflicts]
    listed += [(name, c) for name in held_out for c in held_out_conflicts[name]]
    lines += [
        f"- {name}: '{c['text']}' labelled {', '.join(c['labels'])} "
        f"on lines {', '.join(map(str, c['lines']))} ({'dropped' if name == 'train' else 'kept'})"
        for name, c in listed
    ] or ["None."]
    source = {"declared": "declared in `data.labels`", "labels_file": "declared in `data.labels_file`",
              "inferred": "inferred from the training file"}[labels_source]
    counts_by_split = {name: task.label_counts(frame[LABEL]) for name, frame in outputs.items()}
    what, per = task.counted
    counted_names = task.counted_names(labels) if task.counted_names is not None else labels
    lines += ["", f"## Labels: {len(labels)}, {source}", ""]
    if task.counted != ("rows", "label"):  # e.g. tags, counted as mentions per entity type
        lines += [f"{what.capitalize()} per {per}:", ""]
    lines += [
        f"| {per} | " + " | ".join(outputs) + " |",
        "| --- |" + " ---: |" * len(outputs),
    ]
    for name in counted_names:
        lines.append(f"| {name} | " + " | ".join(str(int(c.get(name, 0))) for c in counts_by_split.values()) + " |")
    if "label_cardinality" in metrics:
        lines += _cardinality_lines(metrics["label_cardinality"])
    return "\n".join(lines) + "\n"


def _cardinality_lines(cardinality: dict[str, dict]) -> list[str]:
    """Rows by how many labels they hold, per written file (for tasks whose rows hold several). The facts are a
    mean (`mean_<things>_per_row`) and a count of rows per number held (`rows_per_<thing>_count`): labels, or
    what else a task counts in a row (mentions)."""
    first = next(iter(cardinality.values()))
    mean_key = next(key for key in first if key.startswith("mean_"))
    rows_key = next(key for key in first if key.startswith("rows_per_"))
    held = mean_key.removeprefix("mean_").removesuffix("_per_row")
    sizes = sorted({size for facts in cardinality.values() for size in facts[rows_key]}, key=int)
    lines = [
        "", f"## {held.capitalize()} per row", "",
        f"| {held} in the row | " + " | ".join(f"{name} rows" for name in cardinality) + " |",
        "| ---: |" + " ---: |" * len(cardinality),
    ]
    for size in sizes:
        cells = " | ".join(str(facts[rows_key].get(size, 0)) for facts in cardinality.values())
        lines.append(f"| {size} | {cells} |")
    lines.append("| mean | " + " | ".join(f"{facts[mean_key]:.3f}" for facts in cardinality.values()) + " |")
    return lines


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.data, p.validate_, model_cfg=p.model), argv)


if __name__ == "__main__":
    raise SystemExit(main())
