"""Reading CoNLL, JSONL (tokens and tags, or text and character spans) and Parquet into one row per sentence, and
naming the file and line of what cannot be read."""

import json

import pandas as pd
import pytest

from tuneforge.base.errors import StageError
from tuneforge.data.cleaning import clean_table, conflicts
from tuneforge.data.textnorm import text_key
from tuneforge.data.token_files import (
    SPANS_WIDENED,
    decode_tags,
    encode_tags,
    read_token_file,
    sentence_tokens,
    token_place,
)


def read(path):
    return read_token_file(path, "tokens", "tags")


def refused(path, *, text_column="tokens", label_column="tags", labels_file=None) -> str:
    with pytest.raises(StageError) as caught:
        read_token_file(path, text_column, label_column, labels_file=labels_file)
    assert "\n" not in caught.value.message
    return caught.value.message


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_conll_file_reads_one_row_per_sentence(tmp_path):
    path = tmp_path / "d.conll"
    path.write_text(
        "-DOCSTART- -X- -X- O\n"  # line 1: CoNLL-2003's document marker, with its columns
        "\n"
        "Empire\tB-location\n"  # line 3
        "State   I-location\n"  # spaces separate as well as a tab
        "\t\n"  # whitespace-only: ends the sentence (WNUT 2017 train has 2,394 such lines)
        "\n"  # a second blank line is no empty sentence
        "hi\tO\n"  # line 7
        "-DOCSTART-\tO\n"  # line 8: a document marker ends the sentence it interrupts
        "Paris\tB-location\r\n"  # line 9, a Windows line end
        "!\tO",  # the last sentence needs no blank line after it
        encoding="utf-8",
    )
    frame = read(path)
    assert frame["text"].tolist() == ["Empire State", "hi", "Paris !"]
    assert frame["label"].tolist() == ['["B-location","I-location"]', '["O"]', '["B-location","O"]']
    assert frame["source_row"].tolist() == [3, 7, 9]
    assert frame["document"].tolist() == [1, 1, 8]
    assert frame.attrs[SPANS_WIDENED] == 0


def test_a_conll_file_without_document_markers_has_no_documents_and_txt_reads_as_conll(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes("\ufeffcafé\tO\n\nRT\tO\n@x\tO\n".encode())  # a byte order mark is no part of the token
    frame = read(path)
    assert frame["text"].tolist() == ["café", "RT @x"] and frame["source_row"].tolist() == [1, 3]
    assert frame["document"].isna().all()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a\tO\nNew York\tB-location\n", "line 2 has 3 columns (New | York | B-location); a CoNLL line is a token "
                                           "and its tag, separated by a tab or spaces"),
        (b"a\tO\nEU NNP B-NP B-ORG\n", "line 2 has 4 columns (EU | NNP | B-NP | B-ORG)"),
        (b"a\tO\n\nlonely\n", "line 3 has 1 column (lonely)"),
        (b"a\tO\nb\tPER\n", "line 2: tag 'PER' is not a BIO tag (O, B-<type> or I-<type>)"),
        (b"a\tO\nb\tS-person\n", "line 2: tag 'S-person' is not a BIO tag"),
        (b"a\tO\ncaf\xe9\tO\n", "not valid UTF-8 at line 2 (byte 0xe9)"),
        (b"", "file is empty"),
        (b"-DOCSTART- -X- -X- O\n\n \n", "no sentences (a token and its tag per line)"),
    ],
)
def test_a_bad_conll_file_is_refused_on_its_line(tmp_path, content, message):
    path = tmp_path / "d.conll"
    path.write_bytes(content)
    assert refused(path).startswith(f"{path}: {message}")


def unlabelled(path, text_column="tokens"):
    return read_token_file(path, text_column, "tags", label_required=False)


def test_unlabelled_files_read_with_label_none(tmp_path):
    """What a model is asked to tag: a CoNLL file of tokens alone, JSONL tokens or texts without the label column.
    A tagged file reads as tagged all the same."""
    conll = tmp_path / "u.conll"
    conll.write_text("Empire\nState\n\n!\n", encoding="utf-8")
    frame = unlabelled(conll)
    assert frame["text"].tolist() == ["Empire State", "!"] and frame["source_row"].tolist() == [1, 4]
    assert frame["label"].isna().all()
    tokens = write_jsonl(tmp_path / "t.jsonl", [{"tokens": ["Empire", "State"]}, {"tokens": ["!"]}])
    assert unlabelled(tokens)["text"].tolist() == ["Empire State", "!"] and unlabelled(tokens)["label"].isna().all()
    texts = write_jsonl(tmp_path / "s.jsonl", [{"text": " Empire  State "}])
    frame = unlabelled(texts, "text")
    assert frame["text"].tolist() == ["Empire State"] and frame["label"].isna().all()
    tagged = tmp_path / "d.conll"
    tagged.write_text("Paris\tB-location\n", encoding="utf-8")
    assert unlabelled(tagged)["label"].tolist() == ['["B-location"]']


@pytest.mark.parametrize("content, message", [
    ("a\nb\tO\n", "line 2 has 2 columns but line 1 has 1; a file's tokens are all tagged or all untagged"),
    ("a\tO\n\nb\n", "line 3 has 1 column but line 1 has 2"),
    ("a b c\n", "line 1 has 3 columns (a | b | c); a CoNLL line is a token and its tag, separated by a tab or "
                 "spaces (or, untagged, a token alone)"),
])
def test_an_unlabelled_conll_file_is_untagged_throughout(tmp_path, content, message):
    path = tmp_path / "u.conll"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StageError) as caught:
        unlabelled(path)
    assert caught.value.message.startswith(f"{path}: {message}")


@pytest.mark.parametrize("name, message", [
    ("d.conll", "file not found"),
    ("d.csv", "unsupported file extension '.csv' for token classification (use .conll, .txt, .jsonl, .parquet"),
])
def test_a_missing_file_or_another_format_is_refused(tmp_path, name, message):
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_text("tokens,tags\na,O\n")
    assert refused(path).startswith(f"{path}: {message}")


def test_jsonl_tokens_and_tags_read_as_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"tokens": ["Empire", "State"], "tags": ["B-location", "I-location"]},
        {"tokens": ["hi"], "tags": ["O"], "id": 7},
    ])
    frame = read(path)
    assert frame["text"].tolist() == ["Empire State", "hi"] and frame["source_row"].tolist() == [1, 2]
    assert [decode_tags(cell) for cell in frame["label"]] == [["B-location", "I-location"], ["O"]]
    assert frame["document"].isna().all()


def test_tags_given_as_ids_are_named_through_the_labels_file(tmp_path):
    labels = tmp_path / "tags.txt"
    labels.write_text("O\nB-person\nI-person\n", encoding="utf-8")
    path = write_jsonl(tmp_path / "d.jsonl", [{"tokens": ["Ann", "Lee", "!"], "ner_tags": [1, 2, 0]}])
    frame = read_token_file(path, "tokens", "ner_tags", labels_file=labels)
    assert decode_tags(frame["label"].iloc[0]) == ["B-person", "I-person", "O"]

    write_jsonl(path, [{"tokens": ["Ann"], "ner_tags": [3]}])
    assert refused(path, label_column="ner_tags", labels_file=labels) == (
        f"{path}: line 1: label id 3 is not in {labels} (3 labels: ids 0-2; data.labels_file)"
    )
    assert refused(path, label_column="ner_tags") == (
        f"{path}: line 1, token 1: the tag is a number, not a string (tags given as ids need data.labels_file)"
    )


def test_parquet_rows_read_like_jsonl_and_name_their_row(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"tokens": [["a", "b"], ["c"]], "tags": [["B-x", "I-x"], ["x"]]}).to_parquet(path)
    assert refused(path) == f"{path}: row 2, token 1: tag 'x' is not a BIO tag (O, B-<type> or I-<type>)"
    pd.DataFrame({"tokens": [["a", "b"]], "tags": [["B-x", "I-x"]]}).to_parquet(path)
    frame = read(path)
    assert frame["text"].tolist() == ["a b"] and decode_tags(frame["label"].iloc[0]) == ["B-x", "I-x"]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"tokens": ["a", "b"], "tags": ["O"]}, "line 2: 2 tokens but 1 tags; each token has one tag"),
        ({"tokens": [], "tags": []}, "line 2: empty sentence (no tokens)"),
        ({"tokens": ["New York"], "tags": ["B-location"]}, "line 2, token 1: token 'New York' is empty or holds "
                                                            "whitespace; a token is one word (split it, and its tag)"),
        ({"tokens": ["a", ""], "tags": ["O", "O"]}, "line 2, token 2: token '' is empty or holds whitespace"),
        ({"tokens": ["a", 3], "tags": ["O", "O"]}, "line 2, token 2: the token is a number, not a string"),
        ({"tokens": ["a", "b"], "tags": ["O", "B-"]}, "line 2, token 2: tag 'B-' is not a BIO tag"),
        ({"tokens": ["a"], "tags": "O"}, "line 2: column 'tags' holds a string, not a list of tags"),
        ({"tokens": 5, "tags": ["O"]}, "line 2: column 'tokens' holds a number, not a list of tokens (or a text)"),
        ({"tokens": ["a"], "tags": None}, "line 2: column 'tags' (data.label_column) is missing"),
        ({"tags": ["O"]}, "line 2: column 'tokens' (data.text_column) is missing"),
    ],
)
def test_a_bad_tokens_row_is_refused_on_its_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "d.jsonl", [{"tokens": ["ok"], "tags": ["O"]}, row])
    assert refused(path).startswith(f"{path}: {message}")


def test_a_file_without_the_columns_names_the_keys(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"words": ["a"], "tags": ["O"]}])
    assert refused(path) == f"{path}: no column 'tokens' (data.text_column); columns are: words, tags"


def spans(text, *entities):
    return {"text": text, "entities": [{"start": s, "end": e, "label": label} for s, e, label in entities]}


def read_spans(path):
    return read_token_file(path, "text", "entities")


def test_character_spans_become_bio_over_whitespace_words(tmp_path):
    text = "I  love New York\nand Paris."
    path = write_jsonl(tmp_path / "d.jsonl", [
        spans(text, (20, 25, "location"), (8, 16, "location")),  # in any order
        spans("nothing here", ),
    ])
    frame = read_spans(path)
    assert frame["text"].tolist() == ["I love New York and Paris.", "nothing here"]  # words joined by one space
    assert [decode_tags(cell) for cell in frame["label"]] == [
        ["O", "O", "B-location", "I-location", "O", "B-location"], ["O", "O"],
    ]
    # "Paris" (20-25) ends inside the word "Paris.": widened to the word, and counted.
    assert frame.attrs[SPANS_WIDENED] == 1


def test_a_span_inside_or_across_words_is_widened_to_whole_words(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [spans("the #NewYork-based firm", (5, 12, "location"))])
    frame = read_spans(path)
    assert decode_tags(frame["label"].iloc[0]) == ["O", "B-location", "O"]
    write_jsonl(path, [spans("at Acme Corp today", (4, 10, "corporation"))])  # "cme Co"
    frame = read_spans(path)
    assert decode_tags(frame["label"].iloc[0]) == ["O", "B-corporation", "I-corporation", "O"]
    assert frame.attrs[SPANS_WIDENED] == 1


@pytest.mark.parametrize(
    "row, message",
    [
        (spans("Paris", (0, 9, "location")), "entity 1 (0..9, location) is outside the text (5 characters); offsets "
                                             "are 0 <= start < end <= the text's length, end exclusive"),
        (spans("Paris", (-1, 3, "location")), "entity 1 (-1..3, location) is outside the text"),
        (spans("Paris", (3, 3, "location")), "entity 1 (3..3, location) is empty or reversed"),
        (spans("New York City", (0, 8, "location"), (4, 13, "location")),
         "entities 1 (0..8, location) and 2 (4..13, location) overlap; a word has one tag"),
        (spans("Paris/London", (0, 5, "location"), (6, 12, "location")),
         "entities 1 (0..5, location) and 2 (6..12, location) are both in the word 'Paris/London'; a word has one tag"),
        (spans("a   b", (1, 3, "location")), "entity 1 (1..3, location) covers only whitespace"),
        (spans("   ", ), "empty sentence (the text holds no word)"),
        ({"text": "Paris", "entities": [{"start": 0, "end": 5}]},
         "entity 1 is an object without 'label'; an entity is {\"start\": ..., \"end\": ..., \"label\": ...}"),
        ({"text": "Paris", "entities": [[0, 5, "location"]]}, "entity 1 is a list; an entity is"),
        ({"text": "Paris", "entities": [{"start": "0", "end": 5, "label": "x"}]},
         "entity 1: 'start' is a string, not a character offset"),
        ({"text": "Paris", "entities": [{"start": 0, "end": 5, "label": " "}]},
         "entity 1: 'label' is a string, not an entity type"),
        ({"text": "Paris", "entities": {"start": 0}}, "column 'entities' holds an object, not a list of entities"),
    ],
)
def test_a_bad_span_is_refused_on_its_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "d.jsonl", [spans("fine"), row])
    assert refused(path, text_column="text", label_column="entities").startswith(f"{path}: line 2: {message}")


def test_a_tag_cell_is_a_compact_json_array_and_only_such_a_cell_decodes():
    cell = encode_tags(["B-créative-work", "O"])
    assert cell == '["B-créative-work","O"]' and decode_tags(cell) == ["B-créative-work", "O"]
    for wrong in ("person", "[]", '["a", 1]', None, 3):
        with pytest.raises(StageError, match="is not a tag sequence"):
            decode_tags(wrong)


def test_tokens_come_back_from_the_text_and_token_places_name_lines(tmp_path):
    assert sentence_tokens("RT @x :") == ["RT", "@x", ":"]
    assert token_place(tmp_path / "d.conll", 10, 2) == "line 12"
    assert token_place(tmp_path / "d.jsonl", 10, 2) == "line 10, token 3"
    assert token_place(tmp_path / "d.parquet", 10, 0) == "row 10, token 1"


def test_the_text_stages_see_whole_sentences(tmp_path):
    """Cleaning moves no token boundary; exact duplicates, conflicts and text_key work on sentences unchanged."""
    path = tmp_path / "d.conll"
    path.write_text("Paris\tB-location\n\nParis\tB-location\n\nParis\tB-person\n\ncafe\u0301\tO\n", encoding="utf-8")
    cleaned = clean_table(read(path).drop(columns="document"))
    assert cleaned.dropped_duplicates == 1
    assert conflicts(cleaned.frame) == [
        {"text": "Paris", "labels": ['["B-location"]', '["B-person"]'], "lines": [1, 5]},
    ]
    assert cleaned.frame["text"].iloc[-1] == "café"  # NFC: the same one token
    assert text_key("PARIS") == text_key(cleaned.frame["text"].iloc[0])
