"""BIO (IOB2) tag sequences: types, the tag set, ill-formed continuations, their repair, decoding into entities."""

import pytest

from tuneforge.data.bio import (
    declared_types,
    entity_spans,
    entity_types,
    ill_formed,
    is_tag,
    mention_counts,
    repair,
    tag_set,
    tag_type,
)


def test_a_tag_is_o_or_a_prefix_and_a_type():
    assert tag_type("O") is None
    assert tag_type("B-person") == "person" and tag_type("I-creative-work") == "creative-work"
    for wrong in ("PER", "S-PER", "E-PER", "B-", "I-", "o", "b-person", "", None, 3):
        assert not is_tag(wrong)
        with pytest.raises(ValueError, match="is not a BIO tag"):
            tag_type(wrong)


def test_the_tag_set_is_o_then_b_and_i_of_each_type_by_name():
    assert entity_types(["O", "I-product", "B-group", "B-product"]) == ["group", "product"]
    assert tag_set(["person", "corporation", "person"]) == [
        "O", "B-corporation", "I-corporation", "B-person", "I-person",
    ]
    assert tag_set([]) == ["O"]


def test_a_declared_set_may_name_types_or_tags():
    assert declared_types(["person", "B-location", "I-location", "O", "I-group"]) == ["group", "location", "person"]


@pytest.mark.parametrize(
    "tags, positions",
    [
        (["B-x", "I-x", "I-x", "O"], []),
        (["I-x"], [0]),  # starts the sentence
        (["O", "I-x", "I-x"], [1]),  # the second continues the first
        (["B-x", "I-y"], [1]),  # another type
        (["B-x", "O", "I-x"], [2]),
        (["B-x", "B-x", "I-x"], []),
    ],
)
def test_ill_formed_continuations_follow_no_b_or_i_of_their_type(tags, positions):
    assert ill_formed(tags) == positions


def test_repair_makes_an_ill_formed_i_a_b_and_decodes_to_the_same_entities():
    tags = ["I-x", "I-x", "O", "B-y", "I-x", "I-y"]
    repaired = repair(tags)
    assert repaired == ["B-x", "I-x", "O", "B-y", "B-x", "B-y"]
    assert ill_formed(repaired) == []
    assert entity_spans(repaired) == entity_spans(tags)


@pytest.mark.parametrize(
    "tags, spans",
    [
        (["O", "O"], []),
        (["B-per", "I-per", "O", "B-loc"], [(0, 2, "per"), (3, 4, "loc")]),
        (["B-per", "B-per", "I-per"], [(0, 1, "per"), (1, 3, "per")]),
        (["B-per", "I-loc"], [(0, 1, "per"), (1, 2, "loc")]),  # conlleval: the I- starts an entity
        (["O", "I-per", "I-per"], [(1, 3, "per")]),
        (["I-per"], [(0, 1, "per")]),
    ],
)
def test_entity_spans_decode_tags_as_conlleval_does(tags, spans):
    assert entity_spans(tags) == spans


def test_entity_spans_refuse_a_non_bio_tag():
    with pytest.raises(ValueError, match="'S-per' is not a BIO tag"):
        entity_spans(["O", "S-per"])


def test_mentions_count_entities_not_tokens():
    counts = mention_counts([["B-per", "I-per", "O", "B-loc"], ["B-per"], ["O"]])
    assert counts == {"per": 2, "loc": 1}
