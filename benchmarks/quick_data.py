"""Small inputs for the benchmarks' `--quick` mode (CI): a stratified subset of banking77, a subset of GoEmotions
(every label kept) and a tiny BERT.

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


# --- GoEmotions (benchmarks/goemotions.py --quick, and through it CI's run of configs/goemotions.yaml) ---------------

GOEMOTIONS = REPO_ROOT.parent / "shared" / "datasets" / "goemotions"
GOEMOTIONS_LABELS = 28
GOEMOTIONS_PER_LABEL = {"train.tsv": 14, "dev.tsv": 3, "test.tsv": 3}


def write_goemotions_subset(target: Path, source: Path = GOEMOTIONS) -> Path:
    """Up to GOEMOTIONS_PER_LABEL rows carrying each label, from each file of `source`, written to `target` as the
    dataset ships them (headerless TSV: text, label ids joined by commas, comment id; and labels.txt). Returns
    `target`."""
    import shutil

    import pandas as pd

    if not (source / "train.tsv").is_file():
        raise FileNotFoundError(f"{source}: no GoEmotions train.tsv (../shared/datasets/goemotions beside the repo)")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "labels.txt", target / "labels.txt")
    for name, per_label in GOEMOTIONS_PER_LABEL.items():
        frame = pd.read_csv(source / name, sep="\t", header=None, names=["text", "ids", "id"], dtype=str,
                            quoting=3, keep_default_na=False)
        ids = frame["ids"].str.split(",")
        keep = set()
        for label in range(GOEMOTIONS_LABELS):
            keep |= set(ids[ids.map(lambda row, label=label: str(label) in row)].index[:per_label])
        frame.loc[sorted(keep)].to_csv(target / name, sep="\t", header=False, index=False, quoting=3)
    return target


# A random tiny model cannot hold int8 parity on a metric of a few percent (one row moves it by points): quick
# runs prove that the chain runs, so its gate is opened; tests/stages/test_export.py tests the gate itself.
QUICK_EXPORT = ["export.max_f1_drop=100"]


def goemotions_quick_overrides(subset: Path, tiny_model: Path) -> list[str]:
    """`--set` assignments that shrink configs/goemotions.yaml to CI size: the subset, the tiny BERT, a few steps."""
    return [f"data.dir={subset}", f"model.base={tiny_model}", "validate.min_examples_per_class=5",
            "train.max_steps=6", "train.eval_steps=3", "train.batch_size=16", "distill.max_steps=6",
            "distill.num_layers=1", "export.benchmark_runs=5", "export.benchmark_warmup=1", *QUICK_EXPORT]
