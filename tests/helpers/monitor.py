"""A project whose registry holds a production version, built once per test session, and batches of new data;
one for single-label (the example intents) and one for multi-label (label sets of emotions).

The production version comes from the real pipeline (`dvc repro` of the fast spec: tiny BERT, seeded, a few
steps) with the register stage promoting to `production`. The monitor tests only add reports, events and
retrain folders to it and never assume they are alone in it, so every test module of the session shares
one build of each (about two minutes each on a loaded 2-core box).
"""

import os
import random
import shutil
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from tests.helpers.multi_label import label_set_rows, write_jsonl
from tests.helpers.project import copy_project, dvc, git, use_fast_spec
from tuneforge.data.label_sets import label_lists

_BUILT: dict[str, Path] = {}
TINY_MODEL_SEED = 1
MULTI_LABEL_ROWS = 200  # 160 training rows: the reference; val and test, 20 each, the same-distribution batch
# Enough steps (seconds on the tiny model) for the teacher and the student to predict different label sets for
# different texts (after the fast spec's 6 steps they predict every label for every text), so the prediction
# signal has sets to compare.
LEARNS_LABEL_SETS = ["train.max_steps=200", "train.eval_steps=50", "train.learning_rate=0.003",
                     "distill.max_steps=200", "distill.learning_rate=0.003"]

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
        clone = _built_in_production(tmp_path_factory.mktemp("monitor-project"), [])
        write_batches(clone, clone / "batches")
        _BUILT["project"] = clone
    return _BUILT["project"]


def multi_label_production_project(tmp_path_factory) -> Path:
    """A multi-label project (examples/emotions.jsonl: label_set_rows, lists in column `labels`) after `dvc repro`
    with emotions:1 promoted to production, plus batches/ (see write_multi_label_batches)."""
    if "multi-label" not in _BUILT:
        root = tmp_path_factory.mktemp("monitor-multi-label")
        data = root / "emotions.jsonl"
        write_jsonl(data, label_set_rows(MULTI_LABEL_ROWS))
        clone = _built_in_production(root, [
            "model.task=multi-label-classification", f"data.train_file={data.name}", "data.label_column=labels",
            "registry.model_name=emotions", *LEARNS_LABEL_SETS,
        ], data_files=[data])
        write_multi_label_batches(clone, clone / "batches")
        _BUILT["multi-label"] = clone
    return _BUILT["multi-label"]


def _built_in_production(root: Path, spec: list[str], data_files: list[Path] = ()) -> Path:
    """A clone with the fast spec, `spec` and `data_files` (into data.dir) committed, after `dvc repro` with the
    register stage promoting to production."""
    import torch

    from tuneforge.params.overrides import apply_to_params_file

    with torch.random.fork_rng():
        # The tiny model's weights are random: seeded, every build trains the same model and predicts the same.
        torch.manual_seed(TINY_MODEL_SEED)
        clone = use_fast_spec(copy_project(root / "clone"), root / "tiny-bert")
    for file in data_files:
        shutil.copy(file, clone / "examples" / file.name)
    apply_to_params_file(clone / "params.yaml", [*spec, "promotion.promote_to=production"])
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "the register stage promotes to production")
    with one_thread():
        dvc(clone, "repro")
    return clone


def in_project(project: Path, monkeypatch):
    """Generator for an autouse fixture: the test runs in the project's root (stages do: the spec, the registry
    and data paths are relative to it), on one thread."""
    from tests.helpers.training import single_thread

    monkeypatch.chdir(project)
    yield from single_thread()


def checked_batches(project: Path, names: tuple[str, ...]) -> dict[str, dict]:
    """Each of batches/<name> checked once against production (the checks take seconds each): {name: summary}."""
    import pytest

    from stages import monitor
    from tuneforge.params import load_params

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        params = load_params("params.yaml")
        return {name: monitor.check(params, f"batches/{name}") for name in names}


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


def held_out_label_set_rows(project: Path) -> list[dict]:
    """The multi-label production model's val and test rows, as a batch holds them: label sets as lists."""
    rows = held_out_rows(project)
    return [{"text": text, "labels": labels} for text, labels in zip(rows["text"], label_lists(rows["label"]),
                                                                      strict=True)]


def shifted_label_set_rows(count: int = 60, seed: int = 3) -> list[dict]:
    """shifted_rows' letters (another topic), every one labelled fear, half of them surprise too."""
    texts = shifted_rows(count, seed=seed)["text"]
    return [{"text": text, "labels": ["fear", "surprise"] if i % 2 else ["fear"]} for i, text in enumerate(texts)]


def write_multi_label_batches(project: Path, folder: Path) -> None:
    """batches/in_distribution.jsonl (held-out rows) and batches/shifted.jsonl (labelled, a few rows not)."""
    write_jsonl(folder / "in_distribution.jsonl", held_out_label_set_rows(project))
    shifted = shifted_label_set_rows()
    write_jsonl(folder / "shifted.jsonl", [*shifted[:-5], *({"text": row["text"]} for row in shifted[-5:])])
