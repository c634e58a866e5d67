"""Token-classification data: reading sentences and their BIO tags, checking them, splitting and augmenting them.

A row is a sentence: its text the tokens joined by single spaces, its label the tag sequence as one canonical
cell, a compact JSON array (tuneforge/data/token_files.py), so cleaning, duplicates, conflicts, leakage by
text_key and Parquet splits are the text tasks' own. Only this module and the data layer below it decode a cell.

- The label set is the tag set: `O`, then `B-`/`I-` of each entity type by name (bio.tag_set), inferred from the
  training rows or from a declaration (data.labels or data.labels_file) that may name the types or the tags.
- What the stages count per label (label_counts) is mentions per entity type: an entity of three tokens counts
  once. The summaries say so (`counted`).
- Validate repairs or refuses ill-formed `I-` continuations in every given file (validate.repair_bio_tags), then
  refuses, on its file and line, a tag of an undeclared type, an entity type with fewer than
  validate.min_mentions_per_type mentions and a sentence outside validate.min/max_sentence_tokens; the suite
  (expectations/token_classification.json) checks every file for unknown tags, sentence lengths, sentences seen
  with two tag sequences and leakage.
- Split cuts distinct sentences by iterative stratification over the entity types each holds (as multi-label
  rows over their labels), sentences without an entity being one more stratum; every type reaches every split.
- Augment makes entity-preserving variants (tuneforge/data/token_augmentation.py) and balances by the rarest
  entity type of each sentence (a sentence without an entity is never balanced).
"""

from collections import Counter
from pathlib import Path

import pandas as pd

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import TOKEN_CLASSIFICATION, AugmentConfig, DataConfig, ValidateConfig
from tuneforge.data.augmentation import augment_frame
from tuneforge.data.bio import declared_types, entity_spans, entity_types, tag_set
from tuneforge.data.io import LABEL, TEXT
from tuneforge.data.label_set_columns import rarest_of
from tuneforge.data.splitting import iterative_split
from tuneforge.data.token_augmentation import TOKEN_METHOD_ORDER, mention_pool, token_variant
from tuneforge.data.token_checks import (
    fix_continuations,
    mentions_per_type,
    refuse_rare_types,
    refuse_sentence_lengths,
    tag_set_of,
    with_token_columns,
)
from tuneforge.data.token_files import SPANS_WIDENED, decode_tags, read_token_file

SUITE = "token_classification"
# The stratum of a sentence without any entity in the split (no entity type is empty: a tag is `B-` + a type).
NO_ENTITY = ""


def read_rows(path: Path, data: DataConfig, *, label_required: bool = True) -> pd.DataFrame:
    """Rows (text, label: the tag cell or None, source_row, document) of a CoNLL, JSONL or Parquet file."""
    if data.label_separator is not None:
        raise ConfigError(
            f"data.label_separator: set to {data.label_separator!r}, but model.task {TOKEN_CLASSIFICATION} reads "
            "a tag per token (CoNLL) or a list (JSONL, Parquet); leave it null"
        )
    if data.columns is not None:
        raise ConfigError(
            f"data.columns: names the columns of a headerless CSV/TSV file, which model.task {TOKEN_CLASSIFICATION} "
            "does not read (CoNLL has no columns to name; JSONL and Parquet name their own); leave it null"
        )
    return read_token_file(
        path, data.text_column, data.label_column, labels_file=data.labels_path, label_required=label_required
    )


def fix_rows(path: Path, rows: pd.DataFrame, cfg: ValidateConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """Ill-formed `I-` continuations repaired (validate.repair_bio_tags) or the first refused on its line; the
    facts: tags repaired, and character spans widened to whole words while reading (spans files only)."""
    widened = int(rows.attrs.get(SPANS_WIDENED, 0))
    fixed, repaired = fix_continuations(path, rows, repair_tags=cfg.repair_bio_tags)
    return fixed, {"bio_tags_repaired": repaired, "spans_widened": widened}


def check_rows(path: Path, frame: pd.DataFrame, data: DataConfig, labels: list[str], cfg: ValidateConfig) -> None:
    """The training rows can teach every entity type of the tag set: no tag of another type, enough mentions of
    each, sentences within the token bounds."""
    types = declared_types(labels)
    declared_by = None
    if data.labels is not None:
        declared_by = "data.labels"
    elif data.labels_file is not None:
        declared_by = f"data.labels_file {data.labels_path}"
    if not types:
        raise StageError(
            f"{path}: {declared_by} declares no entity type" if declared_by else
            f"{path}: no entities (every tag is O); token classification needs at least one entity type"
        )
    if declared_by is not None:
        tag_set_of(path, frame, types, declared_by=declared_by)
    refuse_rare_types(path, frame[LABEL], types, cfg.min_mentions_per_type)
    refuse_sentence_lengths(path, frame, cfg.min_sentence_tokens, cfg.max_sentence_tokens)


def label_set(cells: pd.Series) -> list[str]:
    """The tags of the entity types the cells use: `O`, then `B-`/`I-` per type by name."""
    return tag_set(entity_types(tag for cell in cells.dropna() for tag in decode_tags(cell)))


def declared_label_set(declared: list[str]) -> list[str]:
    """Every tag of the declared entity types (the declaration names types, tags, or both)."""
    return tag_set(declared_types(declared))


def label_counts(cells: pd.Series) -> pd.Series:
    """Mentions per entity type (an entity of several tokens counts once)."""
    return mentions_per_type(cells.dropna())


def counted_names(labels: list[str]) -> list[str]:
    return declared_types(labels)


def cardinality(cells: pd.Series) -> dict:
    """How many entities sentences hold: the mean, and sentences per number of entities."""
    sizes = cells.dropna().map(lambda cell: len(entity_spans(decode_tags(cell))))
    return {
        "mean_mentions_per_row": round(float(sizes.mean()), 4) if len(sizes) else 0.0,
        "rows_per_mention_count": {str(size): int(rows) for size, rows in sorted(Counter(sizes).items())},
    }


gx_table = with_token_columns


def label_of(frame: pd.DataFrame) -> pd.Series:
    return frame[LABEL]


def split_units(strata: pd.Series, fractions: dict[str, float], seed: int) -> dict[str, pd.Index]:
    """Distinct sentences (their tag cells, indexed by text) cut by iterative stratification over the entity types
    each holds; a sentence without an entity is its own stratum, spread in proportion but never refused."""
    types = strata.map(lambda cell: entity_types(decode_tags(cell)) or [NO_ENTITY])
    return iterative_split(types, fractions, seed, noun="entity type", unchecked=frozenset({NO_ENTITY}))


def augment(original: pd.DataFrame, cfg: AugmentConfig) -> tuple[pd.DataFrame, dict]:
    """Entity-preserving variants; balancing counts a sentence for its rarest entity type (by sentences), so a rare
    type is topped up without first topping up the frequent types it shares sentences with."""
    types = original[LABEL].map(lambda cell: entity_types(decode_tags(cell)))
    sentences_per_type = Counter(kind for kinds in types for kind in kinds)
    rarest = [rarest_of(kinds, sentences_per_type) for kinds in types]
    pool = mention_pool(list(zip(original[TEXT], original[LABEL], strict=True)))
    frame, facts = augment_frame(original, cfg, balance_by=rarest, vary=token_variant(cfg, pool))
    return frame, facts | {"methods": TOKEN_METHOD_ORDER}  # the metrics count each method, unused ones as 0
