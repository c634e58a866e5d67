"""Checks on token-classification rows (token_files.py) that name the file and line of what they refuse.

The row-level side of tuneforge/data/bio.py: the tag set (declared or inferred, then recorded), ill-formed `I-`
continuations (repaired or refused by a setting), mentions per entity type, sentence lengths in tokens.
Duplicate sentences and leakage between files need nothing here: a row's text is its tokens joined by single
spaces and its label one canonical cell, so cleaning's exact duplicates and conflicts and the leakage check by
text_key compare whole sentences as they stand.

Each function takes the file the rows were read from only to name it; `token_place` says where a token is.
The keys the error lines name are the validate settings the token task reads (constants below). The derived
columns of expectations/token_classification.json (`with_token_columns`) are here too: the suite checks every
given file (val and test as well) where the functions above check the training rows.
"""

from pathlib import Path

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.data.bio import entity_types, ill_formed, mention_counts, repair, tag_set, tag_type
from tuneforge.data.cleaning import LABELS_PER_TEXT, labels_per_text
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.label_set_columns import UNKNOWN_LABELS
from tuneforge.data.label_sets import encode_label_set
from tuneforge.data.token_files import decode_tags, encode_tags, sentence_tokens, token_place

REPAIR_KEY = "validate.repair_bio_tags"
MIN_MENTIONS_KEY = "validate.min_mentions_per_type"
MIN_TOKENS_KEY, MAX_TOKENS_KEY = "validate.min_sentence_tokens", "validate.max_sentence_tokens"
TOKEN_COUNT = "token_count"  # derived: words (tokens) in the row's sentence


def tag_set_of(path: Path, frame: pd.DataFrame, declared: list[str] | None, *, declared_by: str) -> list[str]:
    """The tag set to record (bio.tag_set: `O`, then `B-`/`I-` per type): of the declared entity types
    (bio.declared_types of data.labels, which may name types or tags), or, with `declared` None, of the types the
    rows use. A tag of an undeclared type is refused on its line; `declared_by` says where the declaration is
    (`data.labels`, or data.labels_file with its path)."""
    if declared is None:
        return tag_set(entity_types(tag for cell in frame[LABEL] for tag in decode_tags(cell)))
    known = set(declared)
    for line, cell in zip(frame[SOURCE_ROW], frame[LABEL], strict=True):
        for position, tag in enumerate(decode_tags(cell)):
            kind = tag_type(tag)
            if kind is not None and kind not in known:
                raise StageError(
                    f"{path}: {token_place(path, line, position)}: tag {tag!r} is outside the declared set (type "
                    f"{kind!r} is not one of the {len(known)} types of {declared_by}: {', '.join(sorted(known))})"
                )
    return tag_set(known)


def continuations(frame: pd.DataFrame) -> list[tuple[int, int, str]]:
    """The ill-formed `I-` tags of the rows: (the sentence's source_row, the token's position from 0, the tag)."""
    return [(line, position, tags[position]) for line, tags, position in _ill_formed(frame)]


def _ill_formed(frame: pd.DataFrame) -> list[tuple[int, list[str], int]]:
    found = []
    for line, cell in zip(frame[SOURCE_ROW], frame[LABEL], strict=True):
        tags = decode_tags(cell)
        found += [(int(line), tags, position) for position in ill_formed(tags)]
    return found


def fix_continuations(path: Path, frame: pd.DataFrame, *, repair_tags: bool) -> tuple[pd.DataFrame, int]:
    """The rows with their ill-formed `I-` tags made `B-` (the entity conlleval reads there) and how many there
    were, or, unless `repair_tags`, the first one refused on its line."""
    found = _ill_formed(frame)
    if not found:
        return frame, 0
    if not repair_tags:
        line, tags, position = found[0]
        tag = tags[position]
        after = f"follows {tags[position - 1]}" if position else "starts the sentence"
        raise StageError(
            f"{path}: {token_place(path, line, position)}: tag {tag} {after}, not B-{tag[2:]} or {tag} (an "
            f"ill-formed IOB2 continuation; {len(found)} in the file); {REPAIR_KEY}: true makes each a B- tag, as "
            "conlleval reads it"
        )
    repaired = frame[LABEL].map(lambda cell: encode_tags(repair(decode_tags(cell))))
    return frame.assign(**{LABEL: repaired}), len(found)


def mentions_per_type(cells: pd.Series) -> pd.Series:
    """Entities per type in the label cells (an entity of several tokens counts once), most frequent first."""
    counts = mention_counts(decode_tags(cell) for cell in cells)
    return pd.Series(counts, dtype="int64").sort_values(ascending=False, kind="stable")


def refuse_rare_types(path: Path, cells: pd.Series, types: list[str], minimum: int) -> None:
    """Refuse the rows when an entity type of the tag set has fewer than `minimum` mentions (none at all for a
    declared type nobody tagged): too few to learn it or to score it."""
    counts = mentions_per_type(cells)
    rare = sorted((int(counts.get(kind, 0)), kind) for kind in types if counts.get(kind, 0) < minimum)
    if rare:
        mentions, kind = rare[0]
        others = f" ({len(rare) - 1} more types too)" if len(rare) > 1 else ""
        raise StageError(
            f"{path}: entity type '{kind}' has {mentions} mention{'' if mentions == 1 else 's'}, fewer than "
            f"{MIN_MENTIONS_KEY} ({minimum}){others}"
        )


def sentence_lengths(cells: pd.Series) -> pd.Series:
    """Tokens per sentence (a tag per token), aligned with the cells."""
    return cells.map(lambda cell: len(decode_tags(cell))).astype("int64")


def refuse_sentence_lengths(path: Path, frame: pd.DataFrame, shortest: int, longest: int) -> None:
    """Refuse the first sentence shorter than `shortest` or longer than `longest` tokens, on its line."""
    lengths = sentence_lengths(frame[LABEL])
    outside = frame[(lengths < shortest) | (lengths > longest)]
    if len(outside):
        line, tokens = int(outside[SOURCE_ROW].iloc[0]), int(lengths[outside.index[0]])
        bound, key = (shortest, MIN_TOKENS_KEY) if tokens < shortest else (longest, MAX_TOKENS_KEY)
        unit = "row" if Path(path).suffix.lower() == ".parquet" else "line"
        raise StageError(
            f"{path}: {unit} {line}: a sentence of {tokens} token{'' if tokens == 1 else 's'}, "
            f"{'fewer' if tokens < shortest else 'more'} than {key} ({bound}); {len(outside)} such in the file"
        )


def with_token_columns(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The frame expectations/token_classification.json checks: the cleaned rows plus token_count (tokens in the
    sentence), unknown_labels (the row's tags outside the tag set `labels`, as a label-set cell: "[]" when none, as
    in the multi-label suite) and labels_per_text (the tag sequences the sentence is seen with). A missing label
    cell gets missing derived values (the suite's not-null expectation on `label` reports it)."""
    known = set(labels)
    missing = frame[LABEL].isna()
    tags = frame[LABEL].map(lambda cell: decode_tags(cell) if isinstance(cell, str) else [])
    tokens = frame[TEXT].map(lambda text: len(sentence_tokens(text)) if isinstance(text, str) else None)
    return frame.assign(**{
        LABELS_PER_TEXT: labels_per_text(frame),
        TOKEN_COUNT: tokens.astype("Int64"),
        UNKNOWN_LABELS: tags.map(lambda row: encode_label_set(set(row) - known)).mask(missing),
    })
