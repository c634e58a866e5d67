"""The entity error table of a token classifier on the test split: errors.csv, errors.json, errors.md.

Each error (tuneforge/evaluation/entities.py `entity_errors`: missed, spurious, wrong type, wrong boundary, wrong
type and boundary) is one row of errors.csv with its sentence's source row, the true and the predicted entity
(type, words, word span, end exclusive). errors.json counts them by kind, and by kind per entity type (the true
entity's type, the predicted one's for a spurious entity), with the first EXAMPLES of each kind; errors.md is the
same for people. With a production model's predictions (evaluate's comparison), its counts stand beside.
"""

import json
from pathlib import Path

import pandas as pd

from tuneforge.base.outputs import atomic_write_text
from tuneforge.data.token_files import decode_tags, sentence_tokens
from tuneforge.evaluation.entities import ERROR_KINDS, entity_errors

EXAMPLES = 5  # per kind, in errors.json and errors.md
SHOWN_CHARS = 300  # a longer sentence is cut in errors.md
COLUMNS = ("source_row", "kind", "true_type", "true_text", "true_start", "true_end", "predicted_type",
           "predicted_text", "predicted_start", "predicted_end", "text")


def error_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Every error of the frame's rows (text, label and predicted tag cells; source_row when there), in row order."""
    rows = []
    sources = frame["source_row"] if "source_row" in frame.columns else pd.Series(range(len(frame)))
    for text, label, predicted, source in zip(frame["text"], frame["label"], frame["predicted"], sources,
                                              strict=True):
        words = sentence_tokens(text)
        for error in entity_errors(decode_tags(label), decode_tags(predicted)):
            row = {"source_row": int(source), "kind": error["kind"]}
            for side in ("true", "predicted"):
                span = error[side]
                row |= {f"{side}_type": span[2] if span else None,
                        f"{side}_text": " ".join(words[span[0]:span[1]]) if span else None,
                        f"{side}_start": span[0] if span else None, f"{side}_end": span[1] if span else None}
            rows.append(row | {"text": text})
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype({"true_start": "Int64", "true_end": "Int64",
                                                               "predicted_start": "Int64", "predicted_end": "Int64"})


def error_counts(errors: pd.DataFrame) -> dict:
    """{"total", "by_kind": {kind: n} (every kind, 0 when none), "by_type": {type: {kind: n}}}."""
    kind_of = errors["true_type"].fillna(errors["predicted_type"]) if len(errors) else pd.Series(dtype=str)
    by_type = {}
    for kind, rows in errors.groupby(kind_of, sort=True) if len(errors) else ():
        counted = rows["kind"].value_counts()
        by_type[str(kind)] = {name: int(counted.get(name, 0)) for name in ERROR_KINDS}
    counted = errors["kind"].value_counts() if len(errors) else pd.Series(dtype=int)
    return {"total": len(errors), "by_kind": {name: int(counted.get(name, 0)) for name in ERROR_KINDS},
            "by_type": by_type}


def write_error_table(current: pd.DataFrame, reference: pd.DataFrame | None, out_dir: Path) -> dict:
    """Writes errors.csv, errors.json and errors.md into `out_dir`; returns the counts (errors.json's `counts`)."""
    out_dir = Path(out_dir)
    errors = error_rows(current)
    counts = error_counts(errors)
    examples = {kind: _records(errors[errors["kind"] == kind].head(EXAMPLES)) for kind in ERROR_KINDS}
    payload = {"counts": counts, "examples": examples, "sentences": len(current),
               "sentences_with_errors": int(errors["source_row"].nunique()) if len(errors) else 0}
    if reference is not None:
        payload["production_counts"] = error_counts(error_rows(reference))
    errors.to_csv(out_dir / "errors.csv", index=False)
    atomic_write_text(out_dir / "errors.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out_dir / "errors.md", _markdown(payload))
    return counts


def _records(rows: pd.DataFrame) -> list[dict]:
    return [{key: (None if pd.isna(value) else (int(value) if key.endswith(("_start", "_end", "_row")) else value))
             for key, value in row.items()} for row in rows.to_dict(orient="records")]


def _markdown(payload: dict) -> str:
    counts = payload["counts"]
    lines = ["# Entity errors (test split)", "",
             f"{counts['total']} error{'' if counts['total'] == 1 else 's'} in {payload['sentences_with_errors']} of "
             f"{payload['sentences']} sentences. "
             "A true entity not predicted exactly is counted once, by the closest predicted entity overlapping it; "
             "a predicted entity overlapping no true one is spurious.", "",
             "| kind | errors |" + (" production |" if "production_counts" in payload else ""),
             "| --- | --- |" + (" --- |" if "production_counts" in payload else "")]
    for kind in ERROR_KINDS:
        theirs = f" {payload['production_counts']['by_kind'][kind]} |" if "production_counts" in payload else ""
        lines.append(f"| {kind.replace('_', ' ')} | {counts['by_kind'][kind]} |{theirs}")
    if counts["by_type"]:
        lines += ["", "| entity type | " + " | ".join(kind.replace("_", " ") for kind in ERROR_KINDS) + " |",
                  "| --- |" + " --- |" * len(ERROR_KINDS)]
        lines += [f"| {_md(kind)} | " + " | ".join(str(row[name]) for name in ERROR_KINDS) + " |"
                  for kind, row in counts["by_type"].items()]
    for kind in ERROR_KINDS:
        if not payload["examples"][kind]:
            continue
        lines += ["", f"## {kind.replace('_', ' ')}", ""]
        for example in payload["examples"][kind]:
            true = _entity(example, "true")
            predicted = _entity(example, "predicted")
            lines.append(f"- row {example['source_row']}: true {true}, predicted {predicted}: "
                         f"{_md(example['text'], SHOWN_CHARS)}")
    return "\n".join(lines) + "\n"


def _entity(example: dict, side: str) -> str:
    if example[f"{side}_type"] is None:
        return "none"
    return (f"`{_md(example[f'{side}_text'])}` ({_md(example[f'{side}_type'])}, words "
            f"{example[f'{side}_start']}..{example[f'{side}_end']})")


def _md(text: str, limit: int | None = None) -> str:
    """Text safe inside a Markdown table cell or list item: one line, pipes and backticks escaped."""
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")
