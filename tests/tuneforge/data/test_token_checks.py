"""Checks on token rows that name file and line: the tag set, ill-formed continuations, mentions, lengths."""

import json

import pandas as pd
import pytest

from tuneforge.base.errors import StageError
from tuneforge.data.token_checks import (
    continuations,
    fix_continuations,
    mentions_per_type,
    refuse_rare_types,
    refuse_sentence_lengths,
    sentence_lengths,
    tag_set_of,
)
from tuneforge.data.token_files import decode_tags, read_token_file


def conll(tmp_path, text):
    path = tmp_path / "d.conll"
    path.write_text(text, encoding="utf-8")
    return path, read_token_file(path, "tokens", "tags")


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(StageError) as caught:
        call(*args, **kwargs)
    assert "\n" not in caught.value.message
    return caught.value.message


SENTENCES = "Ann\tB-person\nLee\tI-person\nin\tO\nParis\tB-location\n\nhi\tO\n"  # sentences on lines 1 and 6


def test_the_tag_set_is_inferred_from_the_rows_or_built_from_the_declared_types(tmp_path):
    path, frame = conll(tmp_path, SENTENCES)
    assert tag_set_of(path, frame, None, declared_by="data.labels") == [
        "O", "B-location", "I-location", "B-person", "I-person",
    ]
    assert tag_set_of(path, frame, ["person", "location", "group"], declared_by="data.labels") == [
        "O", "B-group", "I-group", "B-location", "I-location", "B-person", "I-person",
    ]


def test_a_tag_outside_the_declared_set_is_refused_on_its_line(tmp_path):
    path, frame = conll(tmp_path, SENTENCES)
    assert refused(tag_set_of, path, frame, ["person"], declared_by="data.labels") == (
        f"{path}: line 4: tag 'B-location' is outside the declared set (type 'location' is not one of the 1 types "
        "of data.labels: person)"
    )
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["O", "B-group"]}) + "\n", encoding="utf-8")
    rows = read_token_file(jsonl, "tokens", "tags")
    assert refused(tag_set_of, jsonl, rows, ["person"], declared_by="data.labels").startswith(
        f"{jsonl}: line 1, token 2: tag 'B-group' is outside the declared set"
    )


ILL_FORMED = "a\tO\nLee\tI-person\n\nAnn\tB-person\nParis\tI-location\n\nx\tB-group\ny\tI-group\n"


def test_ill_formed_continuations_are_found_with_their_sentence_and_position(tmp_path):
    _, frame = conll(tmp_path, ILL_FORMED)
    assert continuations(frame) == [(1, 1, "I-person"), (4, 1, "I-location")]


def test_ill_formed_continuations_are_repaired_by_setting(tmp_path):
    path, frame = conll(tmp_path, ILL_FORMED)
    repaired, count = fix_continuations(path, frame, repair_tags=True)
    assert count == 2 and continuations(repaired) == []
    assert [decode_tags(cell) for cell in repaired["label"]] == [
        ["O", "B-person"], ["B-person", "B-location"], ["B-group", "I-group"],
    ]
    assert repaired["source_row"].tolist() == frame["source_row"].tolist()
    assert fix_continuations(path, repaired, repair_tags=False) == (repaired, 0)


def test_ill_formed_continuations_are_refused_by_setting_on_their_line(tmp_path):
    path, frame = conll(tmp_path, ILL_FORMED)
    assert refused(fix_continuations, path, frame, repair_tags=False) == (
        f"{path}: line 2: tag I-person follows O, not B-person or I-person (an ill-formed IOB2 continuation; 2 in "
        "the file); validate.repair_bio_tags: true makes each a B- tag, as conlleval reads it"
    )
    path, frame = conll(tmp_path, "I-am\tI-person\n")
    assert refused(fix_continuations, path, frame, repair_tags=False).startswith(
        f"{path}: line 1: tag I-person starts the sentence, not B-person or I-person"
    )


def test_mentions_per_type_count_entities(tmp_path):
    _, frame = conll(tmp_path, SENTENCES + "\nBo\tB-person\n")
    assert mentions_per_type(frame["label"]).to_dict() == {"person": 2, "location": 1}
    assert mentions_per_type(pd.Series(['["O"]'])).empty


def test_a_type_with_too_few_mentions_is_refused(tmp_path):
    path, frame = conll(tmp_path, SENTENCES + "\nBo\tB-person\n")
    refuse_rare_types(path, frame["label"], ["location", "person"], 1)
    assert refused(refuse_rare_types, path, frame["label"], ["location", "person"], 2) == (
        f"{path}: entity type 'location' has 1 mention, fewer than validate.min_mentions_per_type (2)"
    )
    # A declared type nobody tagged has none.
    assert refused(refuse_rare_types, path, frame["label"], ["group", "location", "person"], 1) == (
        f"{path}: entity type 'group' has 0 mentions, fewer than validate.min_mentions_per_type (1)"
    )
    assert refused(refuse_rare_types, path, frame["label"], ["group", "location", "person"], 3).endswith(
        "(3) (2 more types too)"
    )


def test_sentence_lengths_are_tokens_and_bounds_name_the_line(tmp_path):
    path, frame = conll(tmp_path, SENTENCES)
    assert sentence_lengths(frame["label"]).tolist() == [4, 1]
    refuse_sentence_lengths(path, frame, 1, 4)
    assert refused(refuse_sentence_lengths, path, frame, 2, 4) == (
        f"{path}: line 6: a sentence of 1 token, fewer than validate.min_sentence_tokens (2); 1 such in the file"
    )
    assert refused(refuse_sentence_lengths, path, frame, 1, 3) == (
        f"{path}: line 1: a sentence of 4 tokens, more than validate.max_sentence_tokens (3); 1 such in the file"
    )
