"""WNUT 2017 as shipped (CoNLL, tab-separated, IOB2 tags), read in place from ../shared/datasets/wnut17 with no
code of its own: the counts below were measured on those files and match the published ones (entities: 1,975
train, 836 dev, 1,079 test)."""

import pytest

from tests.helpers.project import BANKING77
from tuneforge.data.cleaning import clean_table, conflicts
from tuneforge.data.textnorm import text_key
from tuneforge.data.token_checks import continuations, mentions_per_type, sentence_lengths, tag_set_of
from tuneforge.data.token_files import read_token_file

WNUT17 = BANKING77.parent / "wnut17"
TYPES = ["corporation", "creative-work", "group", "location", "person", "product"]
# file: (sentences, tokens, mentions per type in TYPES order, longest sentence in tokens)
MEASURED = {
    "train": (3394, 62730, [221, 140, 264, 548, 660, 142], 41),
    "dev": (1009, 15733, [34, 105, 39, 74, 470, 114], 82),
    "test": (1287, 23394, [66, 142, 165, 150, 429, 127], 105),
}


@pytest.fixture(scope="module")
def wnut17():
    if not (WNUT17 / "train.conll").is_file():
        pytest.skip("../shared/datasets/wnut17 is not beside the repo")
    return {name: read_token_file(WNUT17 / f"{name}.conll", "tokens", "tags") for name in MEASURED}


def test_wnut17_reads_as_shipped_with_the_published_counts(wnut17):
    for name, (sentences, tokens, mentions, longest) in MEASURED.items():
        frame, path = wnut17[name], WNUT17 / f"{name}.conll"
        lengths = sentence_lengths(frame["label"])
        assert (len(frame), int(lengths.sum()), int(lengths.max())) == (sentences, tokens, longest), name
        assert mentions_per_type(frame["label"]).reindex(TYPES).tolist() == mentions, name
        assert frame["document"].isna().all()  # no -DOCSTART- lines
        # IOB2 throughout: 6 types, 13 tags, and no I- that continues nothing.
        assert tag_set_of(path, frame, None, declared_by="data.labels") == tag_set_of(
            path, frame, TYPES, declared_by="data.labels"
        )
        assert len(tag_set_of(path, frame, None, declared_by="data.labels")) == 13
        assert continuations(frame) == [], name
    assert wnut17["train"]["source_row"].iloc[-1] == 66113  # the last sentence's first line


def test_wnut17_sentences_as_the_text_stages_see_them(wnut17):
    """What validate will find: 91 exact duplicate sentences and 11 sentences seen with two tag sequences (23
    rows, 0.7%) in train; none shared between the files, ignoring case."""
    train = clean_table(wnut17["train"].drop(columns="document"))
    assert (train.dropped_duplicates, len(conflicts(train.frame))) == (91, 11)
    assert sum(len(conflict["lines"]) for conflict in conflicts(train.frame)) == 23
    keys = {name: set(frame["text"].map(text_key)) for name, frame in wnut17.items()}
    assert not keys["train"] & keys["dev"] and not keys["train"] & keys["test"] and not keys["dev"] & keys["test"]
