"""Entity-level scores (conlleval's definition) against hand-worked examples and seqeval, and the error kinds."""

import json
import random

import pandas as pd
import pytest
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

from tuneforge.data.token_files import encode_tags
from tuneforge.evaluation.entities import entity_errors, entity_scores, per_type_scores
from tuneforge.evaluation.entity_report import error_rows, write_error_table
from tuneforge.tasks.token_classification_model import per_label_table, score

# A worked example in conlleval's reading. Truth: PER(0,2), LOC(3,4), ORG(5,7). Predicted: PER(0,2), ORG(3,4), and
# ORG(5,7), whose first tag is an I- after O: ill-formed, it starts an entity (conlleval), so it matches.
# Correct 2 of 3 predicted and of 3 true: precision = recall = f1 = 2/3. Tokens right: all but 3 (B-LOC / B-ORG)
# and 5 (B-ORG / I-ORG): 5 of 7. Per type: PER 1/1; LOC 0 predicted, 0 of 1 found; ORG 1 of 2 predicted, 1 of 1.
WORKED_TRUTH = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"]]
WORKED_PREDICTED = [["B-PER", "I-PER", "O", "B-ORG", "O", "I-ORG", "I-ORG"]]

# Every error kind once. Sentence A: "Ada Lovelace met Alan Turing in New York with NASA"; B: "Grace Hopper visited
# Oslo". True entities: A person(0,2) person(3,5) location(6,8) group(9,10), B person(0,2) location(3,4): 6.
# Predicted: A person(0,1) location(3,5) location(6,8) group(8,9) group(9,10), B group(0,1): 6. Correct: location(6,8)
# and group(9,10): precision = recall = f1 = 2/6. Tokens right: A 6 of 10, B 1 of 4: 7/14.
# Per type: person 0 of 1 predicted, 0 of 3 true; location 1 of 2 and 1 of 2 (f1 1/2); group 1 of 3 and 1 of 1
# (f1 = 2 (1/3)(1) / (4/3) = 1/2). macro-F1 (0 + 1/2 + 1/2) / 3 = 1/3.
ERRORS_TEXT = ["Ada Lovelace met Alan Turing in New York with NASA", "Grace Hopper visited Oslo"]
ERRORS_TRUTH = [
    ["B-person", "I-person", "O", "B-person", "I-person", "O", "B-location", "I-location", "O", "B-group"],
    ["B-person", "I-person", "O", "B-location"],
]
ERRORS_PREDICTED = [
    ["B-person", "O", "O", "B-location", "I-location", "O", "B-location", "I-location", "B-group", "B-group"],
    ["B-group", "O", "O", "O"],
]


def test_the_worked_conlleval_example():
    scores = entity_scores(WORKED_TRUTH, WORKED_PREDICTED)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3) and scores["accuracy"] == pytest.approx(5 / 7)
    rows = {row["type"]: row for row in per_type_scores(WORKED_TRUTH, WORKED_PREDICTED, ["LOC", "ORG", "PER"])}
    assert (rows["PER"]["precision"], rows["PER"]["recall"], rows["PER"]["f1"]) == (1.0, 1.0, 1.0)
    assert (rows["LOC"]["precision"], rows["LOC"]["recall"], rows["LOC"]["predicted"]) == (0.0, 0.0, 0)
    assert (rows["ORG"]["precision"], rows["ORG"]["recall"]) == (0.5, 1.0)
    assert rows["ORG"]["f1"] == pytest.approx(2 / 3) and rows["ORG"]["support"] == 1


def test_the_error_example_every_number():
    scores = entity_scores(ERRORS_TRUTH, ERRORS_PREDICTED)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3) and scores["accuracy"] == pytest.approx(0.5)
    assert scores["macro_f1"] == pytest.approx(1 / 3) and scores["sentence_accuracy"] == 0.0
    rows = {row["type"]: row for row in per_type_scores(ERRORS_TRUTH, ERRORS_PREDICTED, ["group", "location",
                                                                                         "person"])}
    assert [rows[kind]["f1"] for kind in ("group", "location", "person")] == pytest.approx([0.5, 0.5, 0.0])
    assert [(rows[kind]["support"], rows[kind]["predicted"]) for kind in ("group", "location", "person")] == [
        (1, 3), (2, 2), (3, 1)]


def test_seqevals_readme_example():
    # seqeval's README: f1_score 0.50, accuracy_score 0.80 (MISC predicted one token early: wrong boundary).
    truth = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    scores = entity_scores(truth, predicted)
    assert scores["f1"] == pytest.approx(0.5) and scores["accuracy"] == pytest.approx(0.8)


def random_tags(rng: random.Random, length: int) -> list[str]:
    # Ill-formed sequences included (an I- after O or after another type): both scorers read them as conlleval does.
    return [rng.choice(["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]) for _ in range(length)]


@pytest.mark.parametrize("seed", range(5))
def test_equal_to_seqeval_on_random_sequences(seed):
    rng = random.Random(seed)
    truth = [random_tags(rng, rng.randint(1, 12)) for _ in range(60)]
    predicted = [[tag if rng.random() < 0.7 else rng.choice(["O", "B-PER", "I-LOC", "B-ORG"]) for tag in row]
                 for row in truth]
    ours = entity_scores(truth, predicted)
    assert ours["f1"] == pytest.approx(f1_score(truth, predicted), abs=1e-12)
    assert ours["precision"] == pytest.approx(precision_score(truth, predicted), abs=1e-12)
    assert ours["recall"] == pytest.approx(recall_score(truth, predicted), abs=1e-12)
    assert ours["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    report = classification_report(truth, predicted, output_dict=True, zero_division=0)
    types = sorted(key for key in report if "avg" not in key)
    for row in per_type_scores(truth, predicted, types):
        theirs = report[row["type"]]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (theirs["precision"], theirs["recall"], theirs["f1-score"], theirs["support"]), abs=1e-12)
    assert ours["macro_f1"] == pytest.approx(report["macro avg"]["f1-score"], abs=1e-12)


def test_no_entities_anywhere_scores_zero_not_an_error():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert (scores["f1"], scores["precision"], scores["recall"], scores["accuracy"]) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="sequence 0: 2 true tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])


def test_every_error_kind_on_a_hand_case():
    first = entity_errors(ERRORS_TRUTH[0], ERRORS_PREDICTED[0])
    assert [(e["kind"], e["true"], e["predicted"]) for e in first] == [
        ("wrong_boundary", (0, 2, "person"), (0, 1, "person")),
        ("wrong_type", (3, 5, "person"), (3, 5, "location")),
        ("spurious", None, (8, 9, "group")),
    ]
    second = entity_errors(ERRORS_TRUTH[1], ERRORS_PREDICTED[1])
    assert [(e["kind"], e["true"], e["predicted"]) for e in second] == [
        ("wrong_type_and_boundary", (0, 2, "person"), (0, 1, "group")),
        ("missed", (3, 4, "location"), None),
    ]
    assert entity_errors(WORKED_TRUTH[0], WORKED_TRUTH[0]) == []


def test_a_true_entity_split_in_two_is_one_wrong_boundary_and_not_spurious():
    errors = entity_errors(["B-person", "I-person", "I-person"], ["B-person", "B-person", "I-person"])
    assert [(e["kind"], e["predicted"]) for e in errors] == [("wrong_boundary", (0, 1, "person"))]


def test_the_error_table_files(tmp_path):
    frame = pd.DataFrame({
        "text": ERRORS_TEXT, "label": [encode_tags(t) for t in ERRORS_TRUTH],
        "predicted": [encode_tags(t) for t in ERRORS_PREDICTED], "source_row": [3, 15],
    })
    counts = write_error_table(frame, frame.assign(predicted=frame["label"]), tmp_path)
    assert counts["total"] == 5 and set(counts["by_kind"].values()) == {1}
    assert counts["by_type"]["person"] == {"missed": 0, "spurious": 0, "wrong_type": 1, "wrong_boundary": 1,
                                           "wrong_type_and_boundary": 1}
    assert counts["by_type"]["group"]["spurious"] == 1 and counts["by_type"]["location"]["missed"] == 1
    table = pd.read_csv(tmp_path / "errors.csv")
    assert list(table["kind"]) == ["wrong_boundary", "wrong_type", "spurious", "wrong_type_and_boundary", "missed"]
    assert list(table["source_row"]) == [3, 3, 3, 15, 15]
    first = table.iloc[0]
    assert (first["true_text"], first["predicted_text"]) == ("Ada Lovelace", "Ada")
    assert table.iloc[2]["predicted_text"] == "with" and pd.isna(table.iloc[2]["true_type"])
    written = json.loads((tmp_path / "errors.json").read_text())
    assert written["counts"] == counts and written["sentences_with_errors"] == 2
    assert written["production_counts"]["total"] == 0  # the reference predicted every tag right
    assert written["examples"]["missed"] == [{
        "source_row": 15, "kind": "missed", "true_type": "location", "true_text": "Oslo", "true_start": 3,
        "true_end": 4, "predicted_type": None, "predicted_text": None, "predicted_start": None,
        "predicted_end": None, "text": "Grace Hopper visited Oslo"}]
    markdown = (tmp_path / "errors.md").read_text()
    assert "5 errors in 2 of 2 sentences" in markdown and "| wrong type and boundary | 1 | 0 |" in markdown
    assert "- row 15: true `Oslo` (location, words 3..4), predicted none: Grace Hopper visited Oslo" in markdown
    assert len(error_rows(frame.assign(predicted=frame["label"]))) == 0


def test_the_tasks_score_and_table_read_tag_cells():
    truth, predicted = [encode_tags(t) for t in ERRORS_TRUTH], [encode_tags(t) for t in ERRORS_PREDICTED]
    assert score(truth, predicted) == entity_scores(ERRORS_TRUTH, ERRORS_PREDICTED)
    table = per_label_table(truth, predicted, ["O", "B-group", "I-group", "B-person", "I-person"])
    # The model's types only (location is not among its tags), in its order.
    assert list(table["label"]) == ["group", "person"]
    assert list(table["support"]) == [1, 3] and list(table["predicted"]) == [3, 1]
