"""Small inputs for the benchmarks' `--quick` mode (CI): a stratified subset of banking77 and a tiny BERT.

Quick mode proves that every benchmark runs end to end and reports its figures; its numbers measure a
random 2-layer model on a few hundred rows, not the product.
"""

from pathlib import Path

from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer as tiny_bert  # noqa: F401 - the benchmarks import it from here

REPO_ROOT = Path(__file__).resolve().parents[1]
BANKING77 = REPO_ROOT.parent / "shared" / "datasets" / "banking77"
EXAMPLES = REPO_ROOT / "examples" / "intents.csv"


def subset_source() -> str:
    """What write_subset samples from, for reports."""
    return "banking77" if (BANKING77 / "train.csv").is_file() else "examples/intents.csv"


def write_subset(target: Path, classes: int = 8, train_per_class: int = 40, test_per_class: int = 8) -> Path:
    """train.csv and test.csv (columns text, category, like banking77) holding the first `classes` labels.

    From ../shared/datasets/banking77 when it is beside the repo; otherwise from examples/intents.csv,
    whose last rows of each label become the test file. Returns `target`.
    """
    import pandas as pd

    if (BANKING77 / "train.csv").is_file():
        train = pd.read_csv(BANKING77 / "train.csv")
        test = pd.read_csv(BANKING77 / "test.csv")
    else:
        frame = pd.read_csv(EXAMPLES).rename(columns={"label": "category"})
        test = frame.groupby("category").tail(test_per_class)
        train = frame.drop(test.index)
    kept = sorted(train["category"].unique())[:classes]
    target.mkdir(parents=True, exist_ok=True)
    for name, frame, per_class in (("train", train, train_per_class), ("test", test, test_per_class)):
        subset = frame[frame["category"].isin(kept)].groupby("category").head(per_class)
        subset[["text", "category"]].to_csv(target / f"{name}.csv", index=False)
    return target
