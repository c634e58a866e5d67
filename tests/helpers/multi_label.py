"""Multi-label test data: small label-set rows for the data stages, and keyword rows (in the pipeline's canonical
cells) that a tiny model can learn, for the model stages."""

import json
import random
from pathlib import Path

import pandas as pd

from tuneforge.data.label_sets import encode_label_set

EMOTIONS = ("anger", "fear", "joy", "love", "surprise")


def label_set_rows(rows: int = 80, labels: tuple[str, ...] = EMOTIONS, prefix: str = "") -> list[dict]:
    """`rows` rows ({"text", "labels": list}); every label is on at least rows / 4 rows, many rows hold two or
    three labels. Deterministic."""
    out = []
    for i in range(rows):
        size = 1 + (i % 3 == 0) + (i % 7 == 0)
        chosen = [labels[(i + step * 2) % len(labels)] for step in range(size)]
        text = f"{prefix}comment {i} says {' and '.join(chosen)} about the match on day {i % 11}"
        out.append({"text": text, "labels": sorted(set(chosen))})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


ML_LABELS = ["billing", "login", "shipping"]
ML_KEYWORDS = {
    "billing": ["invoice", "charge", "refund", "billed"],
    "login": ["password", "login", "locked", "signin"],
    "shipping": ["parcel", "delivery", "courier", "tracking"],
}
FILLERS = ["my", "the", "is", "not", "working", "since", "today", "please", "help", "again", "why", "where", "still"]


def multi_label_frame(rows: int, seed: int) -> pd.DataFrame:
    """Rows with one label (half) or two (half); each label's keyword is in the text, fillers around it."""
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        picked = rng.sample(ML_LABELS, 1 if i % 2 else 2)
        words = rng.sample(FILLERS, rng.randint(3, 7))
        for label in picked:
            words.insert(rng.randrange(len(words) + 1), rng.choice(ML_KEYWORDS[label]))
        records.append({"text": " ".join(words), "label": encode_label_set(picked)})
    frame = pd.DataFrame(records)
    frame["source_row"] = range(2, len(frame) + 2)
    return frame


def write_multi_label_data(root: Path, *, train_rows: int = 120, val_rows: int = 40, test_rows: int = 40) -> Path:
    """What validate, split and augment leave for the model stages: data/validated/labels.json,
    data/splits/{train,val,test}.parquet and data/augmented/train.parquet."""
    train, val, test = (multi_label_frame(n, seed) for n, seed in ((train_rows, 1), (val_rows, 2), (test_rows, 3)))
    for directory in ("data/validated", "data/splits", "data/augmented"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "data/validated/labels.json").write_text(json.dumps({"labels": ML_LABELS, "source": "inferred"}))
    train.to_parquet(root / "data/augmented/train.parquet", index=False)
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame.to_parquet(root / f"data/splits/{name}.parquet", index=False)
    return root
