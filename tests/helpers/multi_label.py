"""Small multi-label data for tests: distinct texts, each with a set of one to three emotions."""

import json
from pathlib import Path

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
