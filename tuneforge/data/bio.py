"""BIO (IOB2) tag sequences: their entity types, ill-formed continuations and their repair, decoding into entities.

A tag is `O` (outside any entity), `B-<type>` (the first token of an entity) or `I-<type>` (a token continuing
the entity of that type just before it). IOB2, the scheme of WNUT 2017 and of most published token
classification data, starts every entity with `B-`, so an `I-` that follows neither a `B-` nor an `I-` of its
own type continues nothing: it is ill-formed. conlleval, the reference scorer, reads such a tag as the start of
a new entity; `repair` writes that reading down (the `I-` becomes `B-`) and `entity_spans` decodes the same
way, so a sequence and its repair decode to the same entities, and a model's raw predictions (which may hold
ill-formed tags) are scored as conlleval would score them.

These functions see tag sequences, never a file: the callers name the file and line (token_checks.py).
`entity_spans` is the one decoding of tags into entities: mentions per type here, and evaluate, predict and the
server once the task is wired.
"""

from collections import Counter
from collections.abc import Iterable, Sequence

OUTSIDE = "O"
BEGIN, INSIDE = "B-", "I-"
TAG_FORMS = "O, B-<type> or I-<type>"  # how error lines say what a BIO tag looks like


def tag_type(tag: str) -> str | None:
    """The entity type of a BIO tag, None for `O`; ValueError for anything else (`PER`, `S-PER`, `B-`, `o`):
    the schemes this refuses (IOBES, bare types) would be read wrongly, not approximately."""
    if tag == OUTSIDE:
        return None
    if isinstance(tag, str) and tag[:2] in (BEGIN, INSIDE) and len(tag) > 2:
        return tag[2:]
    raise ValueError(f"{tag!r} is not a BIO tag ({TAG_FORMS})")


def is_tag(tag) -> bool:
    try:
        tag_type(tag)
    except ValueError:
        return False
    return True


def entity_types(tags: Iterable[str]) -> list[str]:
    """The entity types the tags use, sorted (`O` has none)."""
    return sorted({kind for kind in map(tag_type, tags) if kind is not None})


def tag_set(types: Iterable[str]) -> list[str]:
    """All tags of the entity types: `O`, then `B-`/`I-` of each type by name. This is the model's label list, in
    the order published datasets use (Hugging Face's wnut_17 ids are exactly these), and holds `I-` of a type
    even when no entity of it spans two tokens: a model may still predict it."""
    return [OUTSIDE] + [prefix + kind for kind in sorted(set(types)) for prefix in (BEGIN, INSIDE)]


def declared_types(labels: Iterable[str]) -> list[str]:
    """The entity types of a declared label set, which may name the types (`person`) or the tags (`B-person`,
    `I-person`, `O`), or mix them: a tag stands for its type, `O` for nothing. Sorted, each once."""
    return sorted({label[2:] if is_tag(label) and label != OUTSIDE else label for label in labels} - {OUTSIDE})


def ill_formed(tags: Sequence[str]) -> list[int]:
    """Positions of the `I-` tags that follow neither a `B-` nor an `I-` of their own type."""
    positions = []
    for position, tag in enumerate(tags):
        if tag.startswith(INSIDE):
            before = tags[position - 1] if position else OUTSIDE
            if before not in (BEGIN + tag[2:], tag):
                positions.append(position)
    return positions


def repair(tags: Sequence[str]) -> list[str]:
    """The tags with each ill-formed `I-` made a `B-`: the entity conlleval reads there, now written IOB2."""
    repaired = list(tags)
    for position in ill_formed(tags):
        repaired[position] = BEGIN + tags[position][2:]
    return repaired


def entity_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """The entities of a tag sequence as (first token, end token exclusive, type), in order. An ill-formed `I-`
    starts an entity, as in conlleval and `repair`."""
    spans: list[tuple[int, int, str]] = []
    start, kind = None, None
    for position, tag in enumerate(tags):
        tag_kind = tag_type(tag)
        continues = tag.startswith(INSIDE) and tag_kind == kind
        if start is not None and not continues:
            spans.append((start, position, kind))
            start, kind = None, None
        if tag_kind is not None and not continues:
            start, kind = position, tag_kind
    if start is not None:
        spans.append((start, len(tags), kind))
    return spans


def mention_counts(sequences: Iterable[Sequence[str]]) -> Counter:
    """Entities per type over the sequences (an entity of three tokens counts once)."""
    return Counter(kind for tags in sequences for _, _, kind in entity_spans(tags))
