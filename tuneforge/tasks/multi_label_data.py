"""Multi-label data: reading label lists, checking them, splitting and augmenting rows that carry a label set.

(To be written: read_rows, check_rows, rarest_label, augment.)
"""
