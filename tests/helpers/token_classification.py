"""Token-classification test data: small tagged sentences for the data stages, written as CoNLL or JSONL, or as
the rows validate writes."""

import json
from pathlib import Path

import pandas as pd

from tuneforge.data.token_files import encode_tags

PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Linus", "Barbara Liskov", "Ken Thompson"]
PLACES = ["Paris", "New York", "Lagos", "Oslo", "Rio de Janeiro"]
GROUPS = ["Arsenal", "the Beatles", "NASA", "Radiohead"]
TYPES = ["group", "location", "person"]
TAGS = ["O", "B-group", "I-group", "B-location", "I-location", "B-person", "I-person"]

# A sentence as the helpers build it: (tokens, tags).
Sentence = tuple[list[str], list[str]]


def _entity(words: str, kind: str) -> Sentence:
    tokens = words.split()
    return tokens, ["B-" + kind] + ["I-" + kind] * (len(tokens) - 1)


def _join(*parts) -> Sentence:
    tokens, tags = [], []
    for part in parts:
        if isinstance(part, str):
            tokens += part.split()
            tags += ["O"] * len(part.split())
        else:
            tokens += part[0]
            tags += part[1]
    return tokens, tags


def sentences(count: int = 60, prefix: str = "") -> list[Sentence]:
    """`count` distinct sentences cycling through four shapes: a person and a place, a group, a person, none.
    With 60: person 30 mentions, location 15, group 15; 15 sentences without an entity. Deterministic."""
    out = []
    for i in range(count):
        person = _entity(PEOPLE[i % len(PEOPLE)], "person")
        shape = i % 4
        if shape == 0:
            out.append(_join(f"{prefix}yesterday", person, "flew to", _entity(PLACES[i % len(PLACES)], "location"),
                             f"on day {i}"))
        elif shape == 1:
            out.append(_join(f"{prefix}fans of", _entity(GROUPS[i // 4 % len(GROUPS)], "group"), f"met on day {i} ."))
        elif shape == 2:
            out.append(_join(f"{prefix}a letter from", person, f"arrived on day {i}"))
        else:
            out.append(_join(f"{prefix}nothing much happened on day {i} at all"))
    return out


def conll(items: list[Sentence]) -> str:
    """CoNLL text: a token and its tag per line (tab-separated), a blank line after each sentence."""
    return "".join("".join(f"{token}\t{tag}\n" for token, tag in zip(*item, strict=True)) + "\n" for item in items)


def first_lines(items: list[Sentence]) -> list[int]:
    """The line of each sentence's first token in conll(items)."""
    lines, line = [], 1
    for tokens, _ in items:
        lines.append(line)
        line += len(tokens) + 1
    return lines


def write_conll(path: Path, items: list[Sentence]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(conll(items), encoding="utf-8")
    return path


def token_rows(items: list[Sentence]) -> list[dict]:
    """JSONL rows of the tokens form: {"tokens": [...], "tags": [...]}."""
    return [{"tokens": tokens, "tags": tags} for tokens, tags in items]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def validated_frame(items: list[Sentence]) -> pd.DataFrame:
    """The rows validate writes (text, label, source_row), source rows 1, 2, ..."""
    return pd.DataFrame({
        "text": [" ".join(tokens) for tokens, _ in items],
        "label": [encode_tags(tags) for _, tags in items],
        "source_row": range(1, len(items) + 1),
    })


def write_token_data(root: Path, *, train: int = 60, val: int = 20, test: int = 20) -> Path:
    """What validate, split and augment leave for the model stages: data/validated/labels.json (TAGS),
    data/splits/{train,val,test}.parquet and data/augmented/train.parquet, from `sentences` (distinct days per
    split)."""
    items = sentences(train + val + test)
    parts = {"train": items[:train], "val": items[train:train + val], "test": items[train + val:]}
    for directory in ("data/validated", "data/splits", "data/augmented"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "data/validated/labels.json").write_text(json.dumps({"labels": TAGS, "source": "inferred"}))
    for name, part in parts.items():
        validated_frame(part).to_parquet(root / f"data/splits/{name}.parquet", index=False)
    validated_frame(parts["train"]).to_parquet(root / "data/augmented/train.parquet", index=False)
    return root
