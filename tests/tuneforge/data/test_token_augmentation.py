"""Entity-preserving variants of tagged sentences: noise on the words outside entities only, and mention
replacement by another entity of the same type; every variant keeps a tag per token."""

import random

import pytest

from tuneforge.base.spec import AugmentConfig, NoiseConfig
from tuneforge.data.bio import entity_spans, ill_formed
from tuneforge.data.token_augmentation import (
    drop_outside,
    mention_pool,
    noise_outside,
    replace_mentions,
    swap_outside,
    token_variant,
)
from tuneforge.data.token_files import decode_tags, encode_tags

TOKENS = "yesterday Ada Lovelace flew to New York with Linus".split()
TAGS = ["O", "B-person", "I-person", "O", "O", "B-location", "I-location", "O", "B-person"]


def entities(tokens, tags):
    return [(kind, tokens[start:end]) for start, end, kind in entity_spans(tags)]


@pytest.mark.parametrize("method", [drop_outside, swap_outside, noise_outside])
@pytest.mark.parametrize("seed", range(20))
def test_noise_leaves_every_entity_and_its_tags_as_they_were(method, seed):
    tokens, tags = method(TOKENS, TAGS, 0.5, random.Random(seed))
    assert len(tokens) == len(tags) and all(tokens) and not any(" " in token for token in tokens)
    assert entities(tokens, tags) == entities(TOKENS, TAGS)
    assert (tokens, tags) != (TOKENS, TAGS)


def test_dropout_never_drops_every_word_and_swap_needs_two_outside_neighbours():
    tokens, tags = drop_outside(["a", "b"], ["O", "O"], 1.0, random.Random(0))
    assert len(tokens) == 1
    assert drop_outside(["Paris"], ["B-location"], 1.0, random.Random(0)) == (["Paris"], ["B-location"])
    assert swap_outside(["to", "Paris", "now"], ["O", "B-location", "O"], 1.0, random.Random(0)) == (
        ["to", "Paris", "now"], ["O", "B-location", "O"])
    assert noise_outside(["Paris", "!"], ["B-location", "O"], 1.0, random.Random(0)) == (
        ["Paris", "!"], ["B-location", "O"])  # no letter outside the entity


def test_a_mention_is_replaced_by_another_of_its_type_with_its_own_length():
    pool = mention_pool([("Ada Lovelace met Linus", encode_tags(["B-person", "I-person", "O", "B-person"])),
                         ("Oslo and New York", encode_tags(["B-location", "O", "B-location", "I-location"]))])
    assert pool == {"person": [("Ada", "Lovelace"), ("Linus",)], "location": [("Oslo",), ("New", "York")]}
    for seed in range(10):
        tokens, tags = replace_mentions(TOKENS, TAGS, pool, 1.0, random.Random(seed))
        assert len(tokens) == len(tags) and not ill_formed(tags)
        found = entities(tokens, tags)
        assert [kind for kind, _ in found] == ["person", "location", "person"]
        assert found == [("person", ["Linus"]), ("location", ["Oslo"]), ("person", ["Ada", "Lovelace"])]
        assert [t for t, tag in zip(tokens, tags, strict=True) if tag == "O"] == ["yesterday", "flew", "to", "with"]
    alone = {"person": [("Linus",)]}
    assert replace_mentions(["Linus"], ["B-person"], alone, 1.0, random.Random(0)) == (["Linus"], ["B-person"])


def test_a_variant_is_seeded_and_names_the_methods_that_changed_it():
    on = NoiseConfig(probability=1.0, rate=0.3)
    cfg = AugmentConfig(char_noise=on, word_dropout=on, word_swap=on, mention_replacement=on)
    pool = {"person": [("Linus",), ("Grace", "Hopper")], "location": [("Oslo",), ("New", "York")]}
    vary = token_variant(cfg, pool)
    text, label = " ".join(TOKENS), encode_tags(TAGS)
    first = vary(text, label, random.Random(3), False)
    assert first == vary(text, label, random.Random(3), False)
    new_text, new_label, applied = first
    assert applied == ["mention_replacement", "word_dropout", "word_swap", "char_noise"]
    assert len(new_text.split(" ")) == len(decode_tags(new_label))
    off = AugmentConfig(char_noise=NoiseConfig(), word_dropout=NoiseConfig(), word_swap=NoiseConfig(),
                        mention_replacement=NoiseConfig())
    assert token_variant(off, pool)(text, label, random.Random(0), False) == (text, label, [])
    forced = token_variant(off, pool)(text, label, random.Random(0), True)
    assert len(forced[2]) == 1 and forced[0] != text  # balancing forces one method
