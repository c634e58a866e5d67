"""Running a Great Expectations suite (expectations/<suite>.json) on cleaned tables, and explaining failures.

The suite JSON holds the structure; the numbers (thresholds, label set, test texts) arrive as GX
suite parameters at validation time, so one suite serves every dataset and params.yaml stays the
single place where thresholds live. GX is imported inside the function that runs it: it is slow to
import and only the validate stage needs it.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.base.spec import ValidateConfig
from tuneforge.data.cleaning import CLASS_COUNT, LABELS_PER_TEXT
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.label_set_columns import LABEL_COUNT, RAREST_LABEL, RAREST_LABEL_COUNT, UNKNOWN_LABELS
from tuneforge.data.label_sets import decode_label_set
from tuneforge.data.token_checks import TOKEN_COUNT

MAX_ROWS_SHOWN = 5
TEXT_PREVIEW_CHARS = 60
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [SOURCE_ROW]}
# Suite parameters the stage derives from a params.yaml key rather than passing it as is.
PARAMETER_KEYS = {"min_labels_per_row": "validate.allow_empty_labels"}
# Derived columns whose failing rows all fail alike within a group: one row per group is listed, with a note.
GROUPED_BY = {CLASS_COUNT: LABEL, RAREST_LABEL_COUNT: RAREST_LABEL}


def load_suite(path: Path) -> dict:
    """The suite as parsed JSON; a missing or malformed file is one StageError naming it."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: expectation suite not found (validate.suite names expectations/<name>.json)")
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise StageError(f"{path}: not an expectation suite (needs a list under 'expectations')")
    return suite


def validate_tables(
    suite: dict, suite_path: Path, tables: dict[str, tuple[pd.DataFrame, dict[str, Any]]]
) -> dict[str, dict]:
    """Validate each named frame with the suite and that frame's suite parameters.

    Returns each table's ExpectationSuiteValidationResult as a JSON dict, with every offending row's
    source_row listed (result format COMPLETE), so failures can name input lines.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # also when run() is called outside stage_main
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.exceptions import GreatExpectationsError

    # GX pins some of its module loggers to INFO (e.g. the ephemeral docs site): quiet them all.
    for logger_name in [*logging.root.manager.loggerDict, "great_expectations"]:
        if logger_name.startswith("great_expectations"):
            logging.getLogger(logger_name).setLevel(logging.ERROR)
    expectation_suite = ExpectationSuite(
        name=suite.get("name") or Path(suite_path).stem,
        expectations=_expectations(suite, suite_path),
        meta=suite.get("meta"),
    )
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_pandas("validate")
    results = {}
    for name, (frame, parameters) in tables.items():
        batch = (
            datasource.add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        try:
            result = batch.validate(
                expectation_suite, result_format=RESULT_FORMAT, expectation_parameters=parameters
            )
        except GreatExpectationsError as exc:
            raise StageError(f"{suite_path}: cannot be evaluated ({str(exc).splitlines()[0]})") from None
        results[name] = _without_run_identity(result.to_json_dict())
    return results


def _without_run_identity(result: dict) -> dict:
    """Drop GX's per-run ids and timestamps: the result is a DVC output, and the same data must hash the same."""
    result.pop("id", None)
    meta = result.get("meta") or {}
    for key in ("run_id", "validation_time", "batch_markers", "active_batch_definition", "batch_spec"):
        meta.pop(key, None)
    for item in result.get("results", []):
        item.get("expectation_config", {}).pop("id", None)
    return result


def _expectations(suite: dict, suite_path: Path) -> list:
    """Each expectation of the suite JSON built on its own, so a bad one is an error naming it.

    ExpectationSuite(expectations=[...]) logs and skips an invalid entry; a typo in the suite would
    then quietly validate less than it says.
    """
    from great_expectations.exceptions import GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built = []
    for number, entry in enumerate(suite["expectations"], start=1):
        kind = entry.get("type") if isinstance(entry, dict) else None
        try:
            if not isinstance(entry, dict):
                raise TypeError("not a JSON object")
            built.append(ExpectationConfiguration(**entry).to_domain_obj())
        except (GreatExpectationsError, ValueError, TypeError, KeyError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StageError(
                f"{suite_path}: expectation {number} ({kind or 'no type'}) is not valid: {reason}"
            ) from None
    return built


def counts(result: dict) -> tuple[int, int]:
    """(failed, evaluated) expectations of one validation result."""
    statistics = result["statistics"]
    return statistics["unsuccessful_expectations"], statistics["evaluated_expectations"]


def failure_table(result: dict, frame: pd.DataFrame, suite: dict) -> str:
    """A short plain-text table of the failed expectations, each followed by up to 5 offending rows."""
    failed = _failed_in_suite_order(result, suite)
    rows_by_line = frame.set_index(SOURCE_ROW)
    header = ("expectation", "column", "observed", "expected")
    table = [header] + [_summary_cells(r, len(frame)) for r in failed]
    widths = [max(len(cells[i]) for cells in table) for i in range(3)]
    lines = []
    for cells, failure in zip(table, [None, *failed], strict=True):
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        lines.append("  ".join([*padded, cells[3]]))
        if failure is not None:
            lines.extend(f"    {line}" for line in _offending_rows(failure, rows_by_line))
    return "\n".join(line.rstrip() for line in lines)


def failure_summary(result: dict, frame: pd.DataFrame, suite: dict, limit: int = 2) -> str:
    """The failed expectations in one line, each with its first offending row: what the error line itself says
    (a Prefect flow or a CI log often shows only that line, not the table)."""
    failed = _failed_in_suite_order(result, suite)
    rows_by_line = frame.set_index(SOURCE_ROW)
    parts = []
    for failure in failed[:limit]:
        kind, column, observed, expected = _summary_cells(failure, len(frame))
        keys = _bound_keys(suite, failure)
        named = f" ({', '.join(keys)})" if keys else ""
        first = _offending_rows(failure, rows_by_line)[:1]
        parts.append(f"{column or kind} {expected}{named}: {observed}" + (f", first at {first[0]}" if first else ""))
    return "; ".join(parts) + (f"; and {len(failed) - limit} more" if len(failed) > limit else "")


def _bound_keys(suite: dict, failure: dict) -> list[str]:
    """The params.yaml keys a failed expectation's bounds come from (`validate.max_text_chars`), so the line
    says which setting a too-long text or a too-small class is measured against."""
    config = failure["expectation_config"]
    wanted = _key(config["type"], config["kwargs"])
    entry = next((e for e in suite["expectations"] if _key(e.get("type"), e.get("kwargs", {})) == wanted), {})
    keys = []
    for bound in ("min_value", "max_value"):
        value = entry.get("kwargs", {}).get(bound)
        name = value.get("$PARAMETER") if isinstance(value, dict) else None
        if name in ValidateConfig.model_fields:
            keys.append(f"validate.{name}")
        elif name in PARAMETER_KEYS:
            keys.append(PARAMETER_KEYS[name])
    return keys


def _failed_in_suite_order(result: dict, suite: dict) -> list[dict]:
    order = {_key(e.get("type"), e.get("kwargs", {})): i for i, e in enumerate(suite["expectations"])}
    return sorted(
        (r for r in result["results"] if not r["success"]),
        key=lambda r: order.get(_key(r["expectation_config"]["type"], r["expectation_config"]["kwargs"]), 99),
    )


def _key(kind: str | None, kwargs: dict) -> tuple:
    return kind, kwargs.get("column")


def _summary_cells(failure: dict, total_rows: int) -> tuple[str, str, str, str]:
    config, result = failure["expectation_config"], failure["result"]
    kind, kwargs = config["type"], config["kwargs"]
    column = kwargs.get("column", "")
    return kind, column, _observed(failure, result, column, total_rows), _expected(kind, kwargs)


def _observed(failure: dict, result: dict, column: str, total_rows: int) -> str:
    exception = failure.get("exception_info") or {}
    if exception.get("raised_exception"):
        return f"error: {str(exception.get('exception_message')).splitlines()[0]}"
    if "partial_missing_list" in result:
        missing = result["partial_missing_list"]
        return f"{result.get('missing_count', len(missing))} missing: {_preview(missing)}"
    if "unexpected_count" in result:
        bad, considered = result["unexpected_count"], result.get("element_count") or total_rows
        return f"{bad} of {_rows(considered)} ({bad / max(considered, 1):.1%})"
    if "observed_value" in result:
        return f"{result['observed_value']}"
    return f"column '{column}' missing" if column else "failed"


def _expected(kind: str, kwargs: dict) -> str:
    value_set = kwargs.get("value_set")
    if kind == "expect_column_to_exist":
        return "column exists"
    if kind == "expect_column_values_to_not_be_null":
        return "no nulls"
    if kwargs.get("column") == UNKNOWN_LABELS:
        return "no label outside the label set"
    if kind == "expect_column_values_to_be_in_set":
        return f"one of {len(value_set)} labels: {_preview(value_set)}"
    if kind == "expect_column_values_to_not_be_in_set":
        return f"none of the {len(value_set)} texts of the given test and val files"
    if kind == "expect_column_distinct_values_to_contain_set":
        return f"all {len(value_set)} labels present"
    if kwargs.get("column") == LABELS_PER_TEXT:
        return f"at most {1 - kwargs.get('mostly', 1):.1%} of rows share a text with another label"
    bounds = _bounds(kwargs.get("min_value"), kwargs.get("max_value"))
    if kind == "expect_column_value_lengths_to_be_between":
        return f"length {bounds} characters"
    if kwargs.get("column") == CLASS_COUNT:
        return f"{bounds} examples per class"
    if kwargs.get("column") == RAREST_LABEL_COUNT:
        return f"{bounds} examples per label"
    if kwargs.get("column") == LABEL_COUNT:
        return f"{bounds} labels per row"
    if kwargs.get("column") == TOKEN_COUNT:
        return f"{bounds} tokens per sentence"
    mostly = kwargs.get("mostly", 1)
    return bounds + (f" for {mostly:.1%} of rows" if mostly < 1 else "")


def _bounds(low, high) -> str:
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _preview(values: list, limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def _offending_rows(failure: dict, rows_by_line: pd.DataFrame) -> list[str]:
    indexed = failure["result"].get("unexpected_index_list") or []
    lines = [entry[SOURCE_ROW] for entry in indexed if isinstance(entry, dict) and SOURCE_ROW in entry]
    column = failure["expectation_config"]["kwargs"].get("column")
    group = GROUPED_BY.get(column)
    if group:
        # Every row of a small class fails alike: one line per class says more than five of one class.
        first_of_group = rows_by_line.loc[lines].reset_index().drop_duplicates(group)
        lines = first_of_group[SOURCE_ROW].tolist()
    shown = []
    for line in lines[:MAX_ROWS_SHOWN]:
        row = rows_by_line.loc[line]
        label = "no label" if pd.isna(row[LABEL]) else _shorten(row[LABEL])  # a tag sequence can be long
        shown.append(f"line {line}: '{_shorten(row[TEXT])}' ({label}{_note(column, row)})")
    if len(lines) > MAX_ROWS_SHOWN:
        more = {CLASS_COUNT: "classes", RAREST_LABEL_COUNT: "labels"}.get(column, "rows")
        shown.append(f"… and {len(lines) - MAX_ROWS_SHOWN} more {more}")
    return shown


def _note(column: str | None, row: pd.Series) -> str:
    """What the failing derived column says about the row, after its label."""
    if column == CLASS_COUNT:
        return f", {_rows(row[CLASS_COUNT])} in the class"
    if column == RAREST_LABEL_COUNT:
        return f"; '{row[RAREST_LABEL]}' has {_rows(row[RAREST_LABEL_COUNT])}"
    if column == UNKNOWN_LABELS:
        return f"; unknown: {', '.join(decode_label_set(row[UNKNOWN_LABELS]))}"
    return ""


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _shorten(text) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= TEXT_PREVIEW_CHARS else text[: TEXT_PREVIEW_CHARS - 1] + "…"
