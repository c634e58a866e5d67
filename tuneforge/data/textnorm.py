"""Text normalisation shared by every stage that compares texts (cleaning, split leakage checks)."""

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFC, runs of whitespace collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def text_key(text: str) -> str:
    """What "the same text" means across splits: equal after normalisation and casefolding."""
    return normalize_text(text).casefold()
