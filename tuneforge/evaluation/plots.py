"""PNG figures of the evaluate stage (confusion matrix, reliability diagram) with matplotlib.

Figures are drawn on a bare matplotlib Figure with the Agg canvas: no pyplot state, no display needed.
The same numbers are written as JSON/CSV beside them for `dvc plots`; the PNGs are for people.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# PNG metadata would otherwise embed the matplotlib version string; keep files comparable across installs.
_PNG_METADATA = {"Software": None}


def matplotlib_missing() -> str | None:
    """None when matplotlib can be imported, else why not (the PNGs are then skipped, the data is kept)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib); PNG figures were skipped"
    return None


def confusion_png(matrix: np.ndarray, labels: Sequence[str], path: Path) -> None:
    """Rows = true label, columns = predicted; colour = share of the true label's rows (recall per cell)."""
    from matplotlib.figure import Figure

    size = len(labels)
    support = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, support, out=np.zeros(matrix.shape, dtype=float), where=support > 0)
    side = min(max(4.0, 0.28 * size + 2.5), 30.0)
    figure = Figure(figsize=(side + 1.0, side))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label's rows")
    font = max(4.0, min(10.0, 220.0 / max(size, 1)))
    axes.set_xticks(range(size), labels=list(labels), rotation=90, fontsize=font)
    axes.set_yticks(range(size), labels=list(labels), fontsize=font)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix (test split)")
    if size <= 25:  # counts stay readable up to about this many classes
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                colour = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, str(count), ha="center", va="center", fontsize=font, color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata=_PNG_METADATA)


def reliability_png(bins: list[dict], ece: float, path: Path, *, note: str = "") -> None:
    """Accuracy per confidence bin against the diagonal of perfect calibration, with row counts below."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 7.0))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = bins[0]["upper"] - bins[0]["lower"]
    filled = [row for row in bins if row["count"]]
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.bar([row["lower"] for row in filled], [row["accuracy"] for row in filled], width=width, align="edge",
            edgecolor="black", alpha=0.8, label="accuracy")
    top.plot([row["confidence"] for row in filled], [row["accuracy"] for row in filled], "o", color="crimson",
             label="accuracy at the bin's mean confidence")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"Reliability diagram (ECE {ece:.4f}, {len(bins)} bins{'; ' + note if note else ''})")
    top.legend(loc="upper left")
    bottom.bar([row["lower"] for row in bins], [row["count"] for row in bins], width=width, align="edge",
               edgecolor="black", color="grey")
    bottom.set_xlabel("top-1 confidence")
    bottom.set_ylabel("rows")
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata=_PNG_METADATA)
