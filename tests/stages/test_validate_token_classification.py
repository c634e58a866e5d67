"""Stage validate with model.task token-classification: sentences read from CoNLL or JSONL, their BIO tags checked
(on the training rows, then by expectations/token_classification.json on every file), summarised as mentions per
entity type; every bad input refused in one line naming file and line (or key), with the earlier outputs
untouched."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from stages import validate
from tests.helpers.project import REPO_ROOT
from tests.helpers.token_classification import (
    TAGS,
    TYPES,
    conll,
    first_lines,
    sentences,
    token_rows,
    write_conll,
    write_jsonl,
)
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import DataConfig, ModelConfig, ValidateConfig

TOKEN = ModelConfig(task="token-classification")
OUTPUTS = ("data/validated", "reports/validate", "reports/metrics/validate.json")
TRAIN = sentences(60)
TRAIN_LINES = first_lines(TRAIN)


def run_in(directory, data: dict, validate_section: dict | None = None):
    config = DataConfig(**{"dir": str(directory / "in"), "train_file": "train.conll", **data})
    workspace = Workspace(root=directory, expectations=REPO_ROOT / "expectations")
    return validate.run(config, ValidateConfig(**(validate_section or {})), model_cfg=TOKEN, workspace=workspace)


def test_conll_sentences_are_validated_counted_and_written_as_tag_cells(tmp_path):
    write_conll(tmp_path / "in/train.conll", [*TRAIN, TRAIN[5]])  # the last sentence repeats the sixth
    write_conll(tmp_path / "in/test.conll", sentences(20, prefix="test "))

    produced = run_in(tmp_path, {"test_file": "test.conll"})

    metrics = produced.metrics
    assert (metrics["rows_in"], metrics["rows_out"], metrics["dropped_duplicates"]) == (61, 60, 1)
    assert (metrics["test_rows_in"], metrics["test_rows_out"]) == (20, 20)
    assert metrics["classes"] == 7 and metrics["expectations_evaluated"] == 16  # 8 per file
    assert (metrics["bio_tags_repaired"], metrics["test_bio_tags_repaired"], metrics["spans_widened"]) == (0, 0, 0)
    assert metrics["label_cardinality"]["train"] == {
        "mean_mentions_per_row": 1.0, "rows_per_mention_count": {"0": 15, "1": 30, "2": 15},
    }
    train = pd.read_parquet(tmp_path / "data/validated/train.parquet")
    assert list(train.columns) == ["text", "label", "source_row"]
    assert train["text"].iloc[0] == "yesterday Ada Lovelace flew to Paris on day 0"
    assert train["label"].iloc[0] == '["O","B-person","I-person","O","O","B-location","O","O","O"]'
    assert train["source_row"].tolist() == TRAIN_LINES  # each sentence's first line
    assert json.loads((tmp_path / "data/validated/labels.json").read_text()) == {"labels": TAGS, "source": "inferred"}
    meta = json.loads((tmp_path / "data/validated/meta.json").read_text())
    assert meta["inputs"]["suite"]["path"].endswith("expectations/token_classification.json")
    summary = (tmp_path / "reports/validate/summary.md").read_text()
    assert "8 of 8 expectations of" in summary and "token_classification.json` passed" in summary
    assert "## Labels: 7, inferred from the training file" in summary and "Mentions per entity type:" in summary
    assert "| entity type | train | test |" in summary
    assert "| person | 30 | 10 |" in summary and "| group | 15 | 5 |" in summary  # mentions, train then test
    assert "## Mentions per row" in summary and "| 2 | 15 | 5 |" in summary and "| mean | 1.000 | 1.000 |" in summary
    assert "Fixed while reading" not in summary


def test_declared_types_record_every_tag_of_those_types(tmp_path):
    write_conll(tmp_path / "in/train.conll", TRAIN)
    run_in(tmp_path, {"labels": ["person", "B-location", "I-location", "group"]})  # types, tags, or both
    assert json.loads((tmp_path / "data/validated/labels.json").read_text()) == {"labels": TAGS, "source": "declared"}


def test_jsonl_tokens_with_tag_ids_read_through_the_labels_file(tmp_path):
    ids = [{"tokens": row["tokens"], "tags": [TAGS.index(tag) for tag in row["tags"]]} for row in token_rows(TRAIN)]
    write_jsonl(tmp_path / "in/train.jsonl", ids)
    (tmp_path / "in/tags.txt").write_text("\n".join(TAGS) + "\n", encoding="utf-8")
    produced = run_in(tmp_path, {"train_file": "train.jsonl", "text_column": "tokens", "label_column": "tags",
                                 "labels_file": "tags.txt"})
    assert produced.metrics["rows_out"] == 60
    assert json.loads((tmp_path / "data/validated/labels.json").read_text())["source"] == "labels_file"
    train = pd.read_parquet(tmp_path / "data/validated/train.parquet")
    assert train["source_row"].tolist()[:3] == [1, 2, 3]


def test_ill_formed_continuations_are_repaired_when_asked_and_counted(tmp_path):
    broken = [(tokens, ["I-" + tag[2:] if tag.startswith("B-person") and i % 8 == 2 else tag for tag in tags])
              for i, (tokens, tags) in enumerate(TRAIN)]  # 8 sentences whose person entity starts with I-
    write_conll(tmp_path / "in/train.conll", broken)
    write_conll(tmp_path / "in/dev.conll", [(["Linus", "spoke"], ["I-person", "O"]),
                                             *sentences(9, prefix="dev ")])
    produced = run_in(tmp_path, {"val_file": "dev.conll"}, {"repair_bio_tags": True})
    assert (produced.metrics["bio_tags_repaired"], produced.metrics["val_bio_tags_repaired"]) == (8, 1)
    train = pd.read_parquet(tmp_path / "data/validated/train.parquet")
    assert train["label"].tolist() == [json.dumps(tags, separators=(",", ":")) for _, tags in TRAIN]
    assert pd.read_parquet(tmp_path / "data/validated/val.parquet")["label"].iloc[0] == '["B-person","O"]'
    summary = (tmp_path / "reports/validate/summary.md").read_text()
    assert "Fixed while reading:" in summary and "train.conll`: bio tags repaired: 8, spans widened: 0" in summary


def test_a_sentence_tagged_two_ways_is_a_conflict_within_the_duplicate_share(tmp_path):
    tokens, tags = TRAIN[2]
    write_conll(tmp_path / "in/train.conll", [*TRAIN, (tokens, ["O"] * len(tokens))])
    produced = run_in(tmp_path, {}, {"max_duplicate_share": 0.05})
    assert produced.metrics["dropped_conflicts"] == 2 and produced.metrics["rows_out"] == 59
    summary = (tmp_path / "reports/validate/summary.md").read_text()
    assert f"on lines {TRAIN_LINES[2]}, {TRAIN_LINES[-1] + len(TRAIN[-1][0]) + 1} (dropped)" in summary


@pytest.fixture(scope="module")
def good_outputs(tmp_path_factory):
    """Outputs of one good token-classification validate run, copied into each bad-input test."""
    directory = tmp_path_factory.mktemp("good")
    write_conll(directory / "in/train.conll", TRAIN)
    run_in(directory, {})
    return directory


def tagged(items, line_of_sentence: int, position: int, tag: str):
    """The sentences with one tag changed: token `position` of sentence `line_of_sentence` (an index)."""
    changed = [(list(tokens), list(tags)) for tokens, tags in items]
    changed[line_of_sentence][1][position] = tag
    return changed


END = TRAIN_LINES[-1] + len(TRAIN[-1][0]) + 1  # the first line after train.conll's last sentence
SPANS = {"train_file": "train.jsonl", "text_column": "text", "label_column": "entities"}
TOKENS = {"train_file": "train.jsonl", "text_column": "tokens", "label_column": "tags"}
# name -> (files under in/, data keys, validate keys, model.task, first error line contains)
BAD_INPUTS = {
    "a line with three columns": (
        {"train.conll": conll(TRAIN) + "Paris\tNNP\tB-location\n"}, {}, {}, TOKEN.task,
        f"in/train.conll: line {END} has 3 columns (Paris | NNP | B-location); a CoNLL line is a token and its tag",
    ),
    "a tag outside the declared set": (
        {"train.conll": conll(TRAIN)}, {"labels": ["person", "location"]}, {}, TOKEN.task,
        f"in/train.conll: line {TRAIN_LINES[1] + 2}: tag 'B-group' is outside the declared set (type 'group' is not "
        "one of the 2 types of data.labels: location, person)",
    ),
    "an I- continuation refused by setting": (
        {"train.conll": conll(tagged(TRAIN, 2, 3, "I-person"))}, {}, {}, TOKEN.task,
        f"in/train.conll: line {TRAIN_LINES[2] + 3}: tag I-person follows O, not B-person or I-person (an ill-formed "
        "IOB2 continuation; 1 in the file); validate.repair_bio_tags: true makes each a B- tag",
    ),
    "an I- continuation in the val file": (
        {"train.conll": conll(TRAIN), "dev.conll": conll([(["Linus", "spoke"], ["O", "I-person"])])},
        {"val_file": "dev.conll"}, {}, TOKEN.task,
        "in/dev.conll: line 2: tag I-person follows O",
    ),
    "an empty sentence": (
        {"train.jsonl": [*token_rows(TRAIN), {"tokens": [], "tags": []}]}, TOKENS, {}, TOKEN.task,
        "in/train.jsonl: line 61: empty sentence (no tokens)",
    ),
    "tokens and tags of different lengths": (
        {"train.jsonl": [*token_rows(TRAIN), {"tokens": ["Paris", "!"], "tags": ["B-location"]}]}, TOKENS, {},
        TOKEN.task, "in/train.jsonl: line 61: 2 tokens but 1 tags; each token has one tag",
    ),
    "a span outside its text": (
        {"train.jsonl": [{"text": "Ada flew", "entities": [{"start": 0, "end": 3, "label": "person"}]},
                         {"text": "Ada wrote", "entities": [{"start": 4, "end": 40, "label": "person"}]}]},
        SPANS, {}, TOKEN.task,
        "in/train.jsonl: line 2: entity 1 (4..40, person) is outside the text (9 characters)",
    ),
    "overlapping spans": (
        {"train.jsonl": [{"text": "Ada Lovelace wrote", "entities": [{"start": 0, "end": 12, "label": "person"},
                                                                     {"start": 4, "end": 18, "label": "work"}]}]},
        SPANS, {}, TOKEN.task,
        "in/train.jsonl: line 1: entities 1 (0..12, person) and 2 (4..18, work) overlap; a word has one tag",
    ),
    "a CoNLL file for a classification spec": (
        {"train.conll": conll(TRAIN)}, {}, {}, "sequence-classification",
        "data.train_file: train.conll is a CoNLL file (a token and its tag per line), data for model.task "
        "token-classification, not sequence-classification; set model.task: token-classification",
    ),
    "a CoNLL test file for a multi-label spec": (
        {"train.jsonl": [{"text": "a b", "label": ["x"]}], "test.txt": conll(TRAIN)},
        {"train_file": "train.jsonl", "test_file": "test.txt"}, {}, "multi-label-classification",
        "data.test_file: test.txt is a CoNLL file",
    ),
    "a file without tags": (
        {"train.conll": "".join(f"{token}\n" for token in TRAIN[0][0])}, {}, {}, TOKEN.task,
        "in/train.conll: line 1 has 1 column (yesterday); a CoNLL line is a token and its tag",
    ),
    "an entity type below the minimum": (
        {"train.conll": conll(TRAIN)}, {}, {"min_mentions_per_type": 16}, TOKEN.task,
        "in/train.conll: entity type 'group' has 15 mentions, fewer than validate.min_mentions_per_type (16) "
        "(1 more types too)",
    ),
    "a declared type nobody tagged": (
        {"train.conll": conll(TRAIN)}, {"labels": [*TYPES, "product"]}, {}, TOKEN.task,
        "in/train.conll: entity type 'product' has 0 mentions, fewer than validate.min_mentions_per_type (10)",
    ),
    "a sentence too long": (
        {"train.conll": conll(TRAIN)}, {}, {"max_sentence_tokens": 10}, TOKEN.task,
        f"in/train.conll: line {TRAIN_LINES[4]}: a sentence of 11 tokens, more than validate.max_sentence_tokens "
        "(10); 3 such in the file",
    ),
    "a test sentence too long": (
        {"train.conll": conll(TRAIN), "test.conll": conll([(["word"] * 30, ["O"] * 30)])},
        {"test_file": "test.conll"}, {"max_sentence_tokens": 20}, TOKEN.task,
        "in/test.conll: 1 of 8 expectations failed: token_count 1..20 tokens per sentence "
        "(validate.min_sentence_tokens, validate.max_sentence_tokens): 1 of 1 row (100.0%), first at line 1: "
        "'word word word word word word word word word word word word…' ([\"O\",\"O\",",
    ),
    "a test tag of a type train has not": (
        {"train.conll": conll(TRAIN), "test.conll": conll([(["IBM", "rose"], ["B-corporation", "O"])])},
        {"test_file": "test.conll"}, {}, TOKEN.task,
        "in/test.conll: 1 of 8 expectations failed: unknown_labels no label outside the label set: 1 of 1 row "
        """(100.0%), first at line 1: 'IBM rose' (["B-corporation","O"]; unknown: B-corporation)""",
    ),
    "no entity at all": (
        {"train.conll": conll([(tokens, ["O"] * len(tokens)) for tokens, _ in TRAIN])}, {}, {}, TOKEN.task,
        "in/train.conll: no entities (every tag is O); token classification needs at least one entity type",
    ),
    "a label separator": (
        {"train.conll": conll(TRAIN)}, {"label_separator": ","}, {}, TOKEN.task,
        "data.label_separator: set to ',', but model.task token-classification reads a tag per token",
    ),
}


def write_inputs(directory, files: dict) -> None:
    for name, content in files.items():
        path = directory / "in" / name
        if isinstance(content, list):
            write_jsonl(path, content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_leaves_outputs_untouched(case, good_outputs, in_tmp_dir, capsys):
    files, data, validate_section, task, first_line = BAD_INPUTS[case]
    for path in ("data", "reports"):
        shutil.copytree(good_outputs / path, in_tmp_dir / path)
    shutil.copytree(REPO_ROOT / "expectations", in_tmp_dir / "expectations")
    before = {path: sha256_path(in_tmp_dir / path) for path in OUTPUTS}
    write_inputs(in_tmp_dir, files)
    params = {
        "model": {"task": task}, "registry": {"enabled": False}, "validate": validate_section,
        "data": {"dir": "in", "train_file": "train.conll", **data},
    }
    (in_tmp_dir / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    code = validate.main(["--params", "params.yaml"])

    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.splitlines()[0].startswith("validate: error: ") and first_line in err.splitlines()[0], err
    assert {path: sha256_path(in_tmp_dir / path) for path in OUTPUTS} == before
