"""Parity gates of the export: they fail the stage (StageError with the worst rows), they never only warn.

fp32 gate: the ONNX graph against PyTorch on every test row: max |logit difference| <= export.max_abs_diff
and the same top-1 label on every row.
int8 gate: the task metric of the quantized graph against the fp32 graph: macro-F1 may drop by at most
export.max_f1_drop points (100 points = F1 of 1.0).
"""

import numpy as np
import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.evaluation import metrics as classification

TEXT_CHARS = 60


def fp32_gate(
    torch_logits: np.ndarray, onnx_logits: np.ndarray, frame: pd.DataFrame, labels: list[str], *,
    max_abs_diff: float, worst_rows: int,
) -> dict:
    """The fp32 parity record, or a StageError listing the rows that differ most."""
    diff = np.abs(torch_logits.astype(np.float64) - onnx_logits.astype(np.float64)).max(axis=1)
    torch_top, onnx_top = torch_logits.argmax(1), onnx_logits.argmax(1)
    mismatched = int((torch_top != onnx_top).sum())
    result = {
        "rows": int(len(diff)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "top1_mismatches": mismatched, "threshold": max_abs_diff,
    }
    failed = result["max_abs_diff"] > max_abs_diff or mismatched > 0
    result["passed"] = not failed
    if failed:
        order = np.lexsort((-diff, torch_top == onnx_top))[:worst_rows]  # label changes first, then by size
        table = worst_table(frame, order, {
            "max_abs_diff": diff, "pytorch": [labels[i] for i in torch_top], "onnx": [labels[i] for i in onnx_top],
        })
        raise StageError(
            f"parity gate failed: fp32 ONNX vs PyTorch on {len(diff)} test rows: max |logit difference| "
            f"{result['max_abs_diff']:.3g} (limit export.max_abs_diff {max_abs_diff:g}), {mismatched} row(s) with "
            f"a different top-1 label; nothing was written. Worst rows:",
            detail=table,
        )
    return result


def int8_gate(
    fp32_logits: np.ndarray, int8_logits: np.ndarray, frame: pd.DataFrame, labels: list[str], *,
    max_f1_drop: float, worst_rows: int,
) -> dict:
    """The int8 gate record (macro-F1 of both against the true labels), or a StageError with the worst rows."""
    truth = list(frame["label"])
    fp32_pred = [labels[i] for i in fp32_logits.argmax(1)]
    int8_pred = [labels[i] for i in int8_logits.argmax(1)]
    fp32 = classification.classification_metrics(truth, fp32_pred)
    int8 = classification.classification_metrics(truth, int8_pred)
    drop = 100 * (fp32["macro_f1"] - int8["macro_f1"])
    diff = np.abs(fp32_logits.astype(np.float64) - int8_logits.astype(np.float64)).max(axis=1)
    changed = np.array([a != b for a, b in zip(fp32_pred, int8_pred, strict=True)])
    result = {
        "rows": len(truth), "fp32_macro_f1": fp32["macro_f1"], "int8_macro_f1": int8["macro_f1"],
        "fp32_accuracy": fp32["accuracy"], "int8_accuracy": int8["accuracy"], "f1_drop_points": round(drop, 6),
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
            f"parity gate failed: int8 macro-F1 {100 * int8['macro_f1']:.2f} vs fp32 {100 * fp32['macro_f1']:.2f} "
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
