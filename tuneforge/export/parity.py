"""Parity gates of the export: they fail the stage (StageError with the worst rows), they never only warn.

fp32 gate: the ONNX graph against PyTorch on every test row: max |logit difference| <= export.max_abs_diff
and the same predicted label on every row.
int8 gate: the task's parity metric (macro-F1 for classification) of the quantized graph against the fp32
graph may drop by at most export.max_f1_drop points (100 points = a metric of 1.0).

The task decides what a prediction is and how it is scored: the gates take its `predicted` (logits -> the
predicted label of each row) and `score` ((truth, predicted) -> metrics, the parity metric among them).
"""

from collections.abc import Callable

import numpy as np
import pandas as pd

from tuneforge.base.errors import StageError

TEXT_CHARS = 60


def fp32_gate(
    torch_logits: np.ndarray, onnx_logits: np.ndarray, frame: pd.DataFrame, predicted: Callable, *,
    max_abs_diff: float, worst_rows: int,
) -> dict:
    """The fp32 parity record, or a StageError listing the rows that differ most."""
    diff = np.abs(torch_logits.astype(np.float64) - onnx_logits.astype(np.float64)).max(axis=1)
    torch_pred, onnx_pred = predicted(torch_logits), predicted(onnx_logits)
    same = np.array([a == b for a, b in zip(torch_pred, onnx_pred, strict=True)])
    mismatched = int((~same).sum())
    result = {
        "rows": int(len(diff)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "top1_mismatches": mismatched, "threshold": max_abs_diff,
    }
    failed = result["max_abs_diff"] > max_abs_diff or mismatched > 0
    result["passed"] = not failed
    if failed:
        order = np.lexsort((-diff, same))[:worst_rows]  # label changes first, then by size
        table = worst_table(frame, order, {"max_abs_diff": diff, "pytorch": torch_pred, "onnx": onnx_pred})
        raise StageError(
            f"parity gate failed: fp32 ONNX vs PyTorch on {len(diff)} test rows: max |logit difference| "
            f"{result['max_abs_diff']:.3g} (limit export.max_abs_diff {max_abs_diff:g}), {mismatched} row(s) with "
            f"a different predicted label; nothing was written. Worst rows:",
            detail=table,
        )
    return result


def int8_gate(
    fp32_logits: np.ndarray, int8_logits: np.ndarray, frame: pd.DataFrame, predicted: Callable, score: Callable,
    *, metric: str, max_f1_drop: float, worst_rows: int,
) -> dict:
    """The int8 gate record (`metric` of both against the true labels), or a StageError with the worst rows."""
    truth = list(frame["label"])
    fp32_pred, int8_pred = predicted(fp32_logits), predicted(int8_logits)
    fp32, int8 = score(truth, fp32_pred), score(truth, int8_pred)
    drop = 100 * (fp32[metric] - int8[metric])
    diff = np.abs(fp32_logits.astype(np.float64) - int8_logits.astype(np.float64)).max(axis=1)
    changed = np.array([a != b for a, b in zip(fp32_pred, int8_pred, strict=True)])
    result = {
        "rows": len(truth), "metric": metric, **{f"fp32_{name}": value for name, value in fp32.items()},
        **{f"int8_{name}": value for name, value in int8.items()}, "f1_drop_points": round(drop, 6),
        "threshold_points": max_f1_drop, "top1_agreement": float(1 - changed.mean()),
        "max_abs_diff": float(diff.max()),
    }
    result["passed"] = drop <= max_f1_drop
    if not result["passed"]:
        newly_wrong = np.array([
            i != t and f == t for i, f, t in zip(int8_pred, fp32_pred, truth, strict=True)
        ])
        order = np.lexsort((-diff, ~changed, ~newly_wrong))[:worst_rows]  # newly wrong, changed, then by size
        table = worst_table(frame, order, {"max_abs_diff": diff, "fp32": fp32_pred, "int8": int8_pred})
        raise StageError(
            f"parity gate failed: int8 {metric} {100 * int8[metric]:.2f} vs fp32 {100 * fp32[metric]:.2f} "
            f"on {len(truth)} test rows, a drop of {drop:.2f} points (limit export.max_f1_drop {max_f1_drop:g}); "
            "nothing was written. Worst rows:",
            detail=table,
        )
    return result


def worst_table(frame: pd.DataFrame, order: np.ndarray, columns: dict) -> str:
    """A fixed-width table of the chosen rows: source row, true label, the given columns, the text."""
    rows = []
    for i in order:
        where = frame["source_row"].iloc[i] if "source_row" in frame.columns else i
        text = str(frame["text"].iloc[i])
        text = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 3] + "..."
        values = [f"{columns[name][i]:.3g}" if name == "max_abs_diff" else str(columns[name][i]) for name in columns]
        rows.append([str(where), str(frame["label"].iloc[i]), *values, text])
    header = ["row", "label", *columns, "text"]
    widths = [max(len(header[k]), *(len(row[k]) for row in rows)) for k in range(len(header) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:-1], widths, strict=True)) + "  text"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)
