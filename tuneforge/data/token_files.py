"""Token-classification files as rows, one sentence per row, so the text stages work on them unchanged.

Three forms, told apart by the file's suffix and, in JSONL or Parquet, by what a row's text cell holds:
- CoNLL (`.conll`, `.txt`): a token and its tag per line, separated by a tab or spaces; an empty or
  whitespace-only line ends a sentence (a last sentence needs none); a `-DOCSTART-` line is no token: it ends
  the sentence and opens a document. A line of one column, or of three (CoNLL-2003's POS and chunk columns),
  is refused: which column is the tag would be a guess.
- tokens (`.jsonl`, `.parquet`): the text column holds a list of tokens and the label column their tags, names
  or, with `label_names` (data.labels_file), ids 0, 1, ... (Hugging Face exports `ner_tags` as ids).
- spans (`.jsonl`, `.parquet`): the text column holds a string and the label column a list of
  `{"start", "end", "label"}` objects: character offsets into the text (Python string indices, code points, not
  UTF-16 units), end exclusive. They become BIO tags over the text's whitespace-separated words.

A row holds:
- text: the tokens joined by single spaces. A token holds no whitespace (one that does is refused), so
  `sentence_tokens` gives the tokens back and cleaning's normalize_text (NFC, runs of whitespace collapsed)
  moves no token boundary: exact duplicates, conflicts and leakage by text_key compare sentences as they are.
  A spans text is rewritten the same way (its words joined by single spaces).
- label: the tag sequence as one canonical cell, a compact JSON array (`["B-person","I-person","O"]`), one tag
  per token. A string, as label sets are (label_sets.py), so every generic step (cleaning, Parquet splits, equal
  labels) works on it; only the token task decodes it (`decode_tags`).
- source_row: where the sentence starts: its first token's line in CoNLL (token k, from 0, is on line
  source_row + k), its line in JSONL, its row in Parquet; `token_place` says where a token is.
- document: in CoNLL the line of the `-DOCSTART-` that opened the sentence's document (null before the first
  one, and in files without any); null in JSONL and Parquet.

An unlabelled file (read with label_required=False: what a model is asked to tag) is a CoNLL file of one column,
a token per line, or a JSONL or Parquet file without the label column, its text column holding tokens or a text
(split into words as above); its rows' label is None.

Span boundaries: a span that starts or ends inside a word is widened to the whole words it touches. Why widen
rather than refuse: a word here is what whitespace separates, so the commonest off-boundary span, an entity
without the punctuation glued to it ("Paris" in "Paris."), has no other BIO reading, and refusing it would
refuse most annotated text; the model and the server split text the same way, so "Paris." is what they tag.
How many spans were widened is recorded in the frame's attrs (`SPANS_WIDENED`) for the stage's metrics. Spans
that cannot be tags are refused: outside the text, empty, over whitespace only, overlapping, or two in one word.
"""

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.data.bio import BEGIN, INSIDE, TAG_FORMS, is_tag
from tuneforge.data.io import (
    LABEL,
    SOURCE_ROW,
    TEXT,
    Table,
    decode_utf8,
    kind_of,
    label_from_id,
    read_label_names,
    read_table,
    require_columns,
)

DOCUMENT = "document"
CONLL_SUFFIXES = (".conll", ".txt")
ROW_SUFFIXES = (".jsonl", ".parquet")
DOCSTART = "-DOCSTART-"
SPANS_WIDENED = "spans_widened"  # frame.attrs key: spans widened to whole words (spans form only)
SPAN_KEYS = ("start", "end", "label")
_WORD = re.compile(r"\S+")  # a word: what str.split() keeps, so joined words split back the same


def read_token_file(
    path: Path, text_column: str, label_column: str, *, labels_file: Path | None = None, label_required: bool = True
) -> pd.DataFrame:
    """The sentences of a CoNLL, JSONL or Parquet file as rows (text, label, source_row, document), in file
    order; a bad line is refused in one line naming file and line. The columns name a JSONL or Parquet file's
    tokens or text (text_column) and tags or entities (label_column); CoNLL has neither. `labels_file`
    (data.labels_file, one tag per line) names the tags given as ids (tokens form only).

    label_required=False also reads unlabelled files, whose rows get label None: a CoNLL file whose lines hold a
    token only (one column on every line), a JSONL or Parquet file without the label column."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONLL_SUFFIXES + ROW_SUFFIXES:
        raise StageError(
            f"{path}: unsupported file extension '{suffix or '(none)'}' for token classification (use "
            f"{', '.join(CONLL_SUFFIXES + ROW_SUFFIXES)}: a token and its tag per line, or a row per sentence)"
        )
    widened = 0
    if suffix in CONLL_SUFFIXES:
        sentences = _read_conll(path, label_required=label_required)
    else:
        table = read_table(path)
        require_columns(table, text_column, label_column, label_required=label_required)
        if label_column not in table.columns:
            label_column = None
        names = read_label_names(labels_file) if labels_file is not None else None
        sentences, widened = _read_rows(table, text_column, label_column, names, labels_file)
    frame = pd.DataFrame({
        TEXT: [" ".join(tokens) for tokens, _, _, _ in sentences],
        LABEL: [None if tags is None else encode_tags(tags) for _, tags, _, _ in sentences],
        SOURCE_ROW: [line for _, _, line, _ in sentences],
        DOCUMENT: pd.array([document for _, _, _, document in sentences], dtype="Int64"),
    })
    frame.attrs[SPANS_WIDENED] = widened
    return frame


def encode_tags(tags: Sequence[str]) -> str:
    return json.dumps(list(tags), ensure_ascii=False, separators=(",", ":"))


def decode_tags(value) -> list[str]:
    """The tags of one canonical cell (written by encode_tags: the pipeline's own files). Anything else (a label
    of a single-label spec, a number) is one StageError line."""
    try:
        tags = json.loads(value)
    except (TypeError, ValueError):
        tags = None
    if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) for tag in tags):
        raise StageError(
            f"label cell {str(value)[:60]!r} is not a tag sequence (written by another task's spec?); rerun "
            "validate and split with the token-classification task"
        )
    return tags


def sentence_tokens(text: str) -> list[str]:
    """The tokens of a row's text (joined by single spaces by the reader)."""
    return text.split(" ")


def token_place(path: Path, source_row: int, position: int) -> str:
    """Where token `position` (from 0) of the sentence starting at `source_row` is, as error lines say it: its own
    line in CoNLL, the sentence's line (or Parquet row) and the token's number (from 1) otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return f"line {source_row + position}"
    unit = "row" if suffix == ".parquet" else "line"
    return f"{unit} {source_row}, token {position + 1}"


# A sentence as read: (tokens, tags or None when unlabelled, source_row, document line or None).
Sentence = tuple[list[str], list[str] | None, int, int | None]


def _read_conll(path: Path, *, label_required: bool = True) -> list[Sentence]:
    if not path.is_file():
        raise StageError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise StageError(f"{path}: file is empty")
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start, document = 0, None
    # Columns of a token line (2: token and tag; 1 allowed without label_required) and the line that set them: a
    # file is all tagged or all untagged, since a token without its tag in a tagged file is a mistake.
    shape: tuple[int, int] | None = None

    def end_sentence() -> None:
        if tokens:
            sentences.append((list(tokens), list(tags) if shape and shape[0] == 2 else None, start, document))
        tokens.clear()
        tags.clear()

    # Lines end at "\n" only: str.splitlines() would also end one at \x1c, \x85 or U+2028, which a token may hold
    # and an editor does not count, and every later line number would be off.
    for number, line in enumerate(decode_utf8(path).split("\n"), start=1):
        fields = line.split()
        if not fields:
            end_sentence()
        elif fields[0] == DOCSTART:
            end_sentence()
            document = number
        elif len(fields) != 2 and not (len(fields) == 1 and not label_required):
            shown = " | ".join(field[:30] for field in fields[:4]) + (" | ..." if len(fields) > 4 else "")
            raise StageError(
                f"{path}: line {number} has {len(fields)} column{'s' if len(fields) > 1 else ''} ({shown}); a "
                "CoNLL line is a token and its tag, separated by a tab or spaces"
                + ("" if label_required else " (or, untagged, a token alone)")
            )
        else:
            if shape is None:
                shape = (len(fields), number)
            elif shape[0] != len(fields):
                raise StageError(
                    f"{path}: line {number} has {len(fields)} column{'s' if len(fields) > 1 else ''} but line "
                    f"{shape[1]} has {shape[0]}; a file's tokens are all tagged or all untagged"
                )
            if not tokens:
                start = number
            tokens.append(fields[0])
            if len(fields) == 2:
                tags.append(_tag(fields[1], path, f"line {number}"))
    end_sentence()
    if not sentences:
        raise StageError(f"{path}: no sentences (a token and its tag per line)")
    return sentences


def _read_rows(
    table: Table, text_column: str, label_column: str | None, label_names: list[str] | None, labels_file: Path | None
) -> tuple[list[Sentence], int]:
    """label_column None: the file has no label column (an unlabelled file): tokens or words, tags None."""
    sentences: list[Sentence] = []
    widened = 0
    for line, row in table.records:
        where = f"{table.path}: {table.unit} {line}"
        text = row.get(text_column)
        labels = row.get(label_column) if label_column is not None else None
        cells = ((text, text_column, "data.text_column"), (labels, label_column, "data.label_column"))
        for cell, column, key in cells[:1] if label_column is None else cells:
            if _missing(cell):
                raise StageError(f"{where}: column '{column}' ({key}) is missing")
        if label_column is None:
            tokens = _words(text, where) if isinstance(text, str) else _tokens(
                _as_list(text, where, text_column, "tokens (or a text)"), table, line)
            sentences.append((tokens, None, line, None))
            continue
        if isinstance(text, str):
            tokens, tags, count = _spans_row(text, _as_list(labels, where, label_column, "entities"), where)
            widened += count
        else:
            tokens = _tokens(_as_list(text, where, text_column, "tokens (or a text)"), table, line)
            tags = _tags(_as_list(labels, where, label_column, "tags"), table, line, label_names, labels_file)
            if len(tags) != len(tokens):
                raise StageError(f"{where}: {len(tokens)} tokens but {len(tags)} tags; each token has one tag")
        sentences.append((tokens, tags, line, None))
    return sentences, widened


def _missing(cell) -> bool:
    return cell is None or (isinstance(cell, float) and cell != cell)


def _as_list(cell, where: str, column: str, what: str) -> list:
    if isinstance(cell, list | tuple | np.ndarray):
        return list(cell)
    raise StageError(f"{where}: column '{column}' holds {kind_of(cell)}, not a list of {what}")


def _tokens(cells: list, table: Table, line: int) -> list[str]:
    if not cells:
        raise StageError(f"{table.path}: {table.unit} {line}: empty sentence (no tokens)")
    for position, token in enumerate(cells):
        place = token_place(table.path, line, position)
        if not isinstance(token, str):
            raise StageError(f"{table.path}: {place}: the token is {kind_of(token)}, not a string")
        if not token or any(character.isspace() for character in token):
            raise StageError(
                f"{table.path}: {place}: token {token!r} is empty or holds whitespace; a token is one word "
                "(split it, and its tag)"
            )
    return cells


def _tags(
    cells: list, table: Table, line: int, label_names: list[str] | None, labels_file: Path | None
) -> list[str]:
    tags = []
    for position, cell in enumerate(cells):
        place = token_place(table.path, line, position)
        if isinstance(cell, int | np.integer) and not isinstance(cell, bool | np.bool_) and label_names is not None:
            cell = label_from_id(str(int(cell)), label_names, labels_file, table, line)
        elif isinstance(cell, str) and label_names is not None:
            cell = label_from_id(cell, label_names, labels_file, table, line)
        elif not isinstance(cell, str):
            raise StageError(f"{table.path}: {place}: the tag is {kind_of(cell)}, not a string"
                             + ("" if label_names is not None else " (tags given as ids need data.labels_file)"))
        tags.append(_tag(cell, table.path, place))
    return tags


def _tag(tag: str, path: Path, place: str) -> str:
    if not is_tag(tag):
        raise StageError(f"{path}: {place}: tag {tag!r} is not a BIO tag ({TAG_FORMS})")
    return tag


def _words(text: str, where: str) -> list[str]:
    """The words of an unlabelled text."""
    words = _WORD.findall(text)
    if not words:
        raise StageError(f"{where}: empty sentence (the text holds no word)")
    return words


def _spans_row(text: str, entities: list, where: str) -> tuple[list[str], list[str], int]:
    """The words of `text`, their BIO tags from the character spans, and how many spans were widened."""
    words = list(_WORD.finditer(text))
    if not words:
        raise StageError(f"{where}: empty sentence (the text holds no word)")
    spans = sorted((_span(entity, number, len(text), where) for number, entity in enumerate(entities, start=1)))
    for before, after in zip(spans, spans[1:], strict=False):
        if after[0] < before[1]:
            raise StageError(f"{where}: entities {_name(before)} and {_name(after)} overlap; a word has one tag")
    tags = ["O"] * len(words)
    owner: list[tuple | None] = [None] * len(words)
    widened = 0
    for span in spans:
        start, end, label, _ = span
        covered = [index for index, word in enumerate(words) if word.start() < end and start < word.end()]
        if not covered:
            raise StageError(f"{where}: entity {_name(span)} covers only whitespace")
        for index in covered:
            if owner[index] is not None:
                raise StageError(
                    f"{where}: entities {_name(owner[index])} and {_name(span)} are both in the word "
                    f"{words[index].group()!r}; a word has one tag"
                )
            owner[index] = span
        first, last = words[covered[0]], words[covered[-1]]
        widened += first.start() != start or last.end() != end
        tags[covered[0]] = BEGIN + label
        for index in covered[1:]:
            tags[index] = INSIDE + label
    return [word.group() for word in words], tags, widened


def _span(entity, number: int, length: int, where: str) -> tuple[int, int, str, int]:
    """(start, end, label, number) of entity `number` (from 1), refused unless it is a span of the text."""
    if not isinstance(entity, dict) or not all(key in entity for key in SPAN_KEYS):
        raise StageError(
            f"{where}: entity {number} is {kind_of(entity)}"
            + (f" without {', '.join(repr(k) for k in SPAN_KEYS if k not in entity)}" if isinstance(entity, dict)
               else "") + '; an entity is {"start": ..., "end": ..., "label": ...}'
        )
    start, end, label = (entity[key] for key in SPAN_KEYS)
    for key, value in (("start", start), ("end", end)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool | np.bool_):
            raise StageError(f"{where}: entity {number}: '{key}' is {kind_of(value)}, not a character offset")
    if not isinstance(label, str) or not label.strip():
        raise StageError(f"{where}: entity {number}: 'label' is {kind_of(label)}, not an entity type")
    if not 0 <= start < end <= length:
        problem = "is empty or reversed" if start >= end else f"is outside the text ({length} characters)"
        raise StageError(f"{where}: entity {number} ({start}..{end}, {label}) {problem}; offsets are 0 <= start < "
                         "end <= the text's length, end exclusive")
    return int(start), int(end), label, number


def _name(span: tuple) -> str:
    start, end, label, number = span
    return f"{number} ({start}..{end}, {label})"
