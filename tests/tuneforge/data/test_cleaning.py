"""Cleaning rules on their own: normalisation, empty texts, exact duplicates, conflicts, class counts."""

import pandas as pd

from tuneforge.data.cleaning import class_counts, clean_table, conflicts, labels_per_text, with_derived_columns


def table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "label", "source_row"])


def test_clean_table_normalises_then_drops_empty_texts_and_exact_duplicates():
    raw = table([
        ("  Cafe\u0301   open ", " a ", 2),  # decomposed é, padded label
        ("Café open", "a", 3),  # the same text and label once normalised: an exact duplicate
        ("Café open", "b", 4),  # the same text, another label: kept (a conflict, not a duplicate)
        ("   ", "a", 5),
        (None, "b", 6),
        ("no label", "  ", 7),
    ])
    cleaned = clean_table(raw)
    expected = [["Café open", "a", 2], ["Café open", "b", 4], ["no label", None, 7]]
    assert cleaned.frame.values.tolist() == expected
    assert (cleaned.rows_in, cleaned.dropped_empty, cleaned.dropped_duplicates) == (6, 2, 1)

    kept = clean_table(raw, drop_duplicates=False)
    assert len(kept.frame) == 4 and kept.dropped_duplicates == 0


def test_conflicts_name_the_text_its_labels_and_lines():
    frame = table([("same", "b", 2), ("other", "a", 3), ("same", "a", 4), ("same", "b", 5)])
    assert conflicts(frame) == [{"text": "same", "labels": ["a", "b"], "lines": [2, 4, 5]}]
    assert labels_per_text(frame).tolist() == [2, 1, 2, 2]


def test_class_count_counts_what_will_be_written():
    frame = table([("x", "a", 2), ("y", "a", 3), ("x", "b", 4), ("z", "b", 5), ("w", None, 6)])
    derived = with_derived_columns(frame)
    # "x" is a conflict and will be dropped, so each class keeps one row; the unlabelled row has no class.
    assert derived["class_count"].tolist() == [1, 1, 1, 1, pd.NA]
    assert derived["labels_per_text"].tolist() == [2, 1, 2, 1, 0]
    assert class_counts(frame).tolist() == [2, 2, 2, 2, pd.NA]
