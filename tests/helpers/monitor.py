"""A project whose registry holds a production version, built once per test session, and batches of new data.

The production version comes from the real pipeline (`dvc repro` of the fast spec: tiny BERT, a few
steps) with the register stage promoting to `production`. The monitor tests only add reports, events and
retrain folders to it and never assume they are alone in it, so every test module of the session shares
one build (about two minutes on a loaded 2-core box).
"""

import os
import random
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from tests.helpers.project import copy_project, dvc, git, use_fast_spec

_BUILT: dict[str, Path] = {}

TOPICS = ["quarterly earnings call", "football final", "chemistry lecture", "gardening club", "orchestra rehearsal",
          "mountain expedition", "poetry reading", "chess tournament"]


@contextmanager
def one_thread():
    # Tiny models gain nothing from a second thread; on a busy 2-core box two OpenMP threads wait on each other.
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


def production_project(tmp_path_factory) -> Path:
    """The project after `dvc repro` with intents:1 promoted to production, plus batches/ (see write_batches)."""
    if "project" not in _BUILT:
        from tuneforge.params.overrides import apply_to_params_file

        root = tmp_path_factory.mktemp("monitor-project")
        clone = use_fast_spec(copy_project(root / "clone"), root / "tiny-bert")
        apply_to_params_file(clone / "params.yaml", ["promotion.promote_to=production"])
        git(clone, "commit", "-q", "-am", "the register stage promotes to production")
        with one_thread():
            dvc(clone, "repro")
        write_batches(clone, clone / "batches")
        _BUILT["project"] = clone
    return _BUILT["project"]


def held_out_rows(project: Path) -> pd.DataFrame:
    """Rows of the same source the production model never trained on: its val and test splits."""
    splits = project / "data" / "splits"
    frames = [pd.read_parquet(splits / name)[["text", "label"]] for name in ("test.parquet", "val.parquet")]
    return pd.concat(frames, ignore_index=True)


def shifted_rows(count: int = 80, seed: int = 3, labels: list[str] | None = None) -> pd.DataFrame:
    """Another domain: long letters about events, not short support messages; labels skewed to two classes."""
    rng = random.Random(seed)
    labels = labels or ["card_lost", "exchange_rate"]
    rows = []
    for i in range(count):
        topic = rng.choice(TOPICS)
        text = (
            f"Dear editor, a few thoughts on the {topic} held on {rng.randint(1, 28)} March {rng.randint(1990, 2020)}: "
            f"the organisers had prepared everything meticulously, and the audience of {rng.randint(20, 900)} "
            f"people seemed delighted throughout the whole afternoon session, number {i}."
        )
        rows.append({"text": text, "label": labels[i % len(labels)]})
    return pd.DataFrame(rows)


def write_batches(project: Path, folder: Path) -> None:
    """batches/in_distribution.csv (held-out rows), batches/shifted.csv (labelled), batches/unlabelled/ (a
    folder: shifted texts as JSONL without labels, and a README that is not data)."""
    folder.mkdir(parents=True, exist_ok=True)
    held_out_rows(project).to_csv(folder / "in_distribution.csv", index=False)
    shifted_rows().to_csv(folder / "shifted.csv", index=False)
    unlabelled = folder / "unlabelled"
    unlabelled.mkdir()
    shifted_rows(60, seed=5)[["text"]].to_json(unlabelled / "texts.jsonl", orient="records", lines=True)
    (unlabelled / "README.md").write_text("new texts, not labelled yet\n")
