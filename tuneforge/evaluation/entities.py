"""Entity-level scores of BIO tag sequences, as conlleval computes them, and the errors behind them.

An entity is a (first token, end token, type) span decoded by tuneforge/data/bio.py `entity_spans` (conlleval's
reading: an `I-` that continues nothing starts an entity). A predicted entity is correct when a true entity has
exactly its span and type. Over every sentence:

    precision = correct / predicted entities, recall = correct / true entities, f1 = 2 p r / (p + r)

(0 where a denominator is 0), micro-averaged over entity types (conlleval's "overall", seqeval's default
`f1_score`), and per type; `accuracy` is the share of tokens whose tag is exactly right, `O` included (conlleval's
accuracy). seqeval 1.2.2 in its default (conlleval) mode gives the same numbers (tests compare them).

Errors (`entity_errors`): every true entity that is not predicted exactly and every predicted entity that matches
no true entity, in one of five kinds:
- missed: a true entity no predicted entity overlaps;
- spurious: a predicted entity that overlaps no true entity;
- wrong_type: a predicted entity with the true entity's span but another type;
- wrong_boundary: a predicted entity of the true entity's type that overlaps it with another span;
- wrong_type_and_boundary: only predicted entities of another type overlap it, with another span.
A true entity is counted once (its closest overlapping prediction shown); a predicted entity that overlaps a true
one is accounted for there, so it is never also spurious.
"""

from collections import Counter
from collections.abc import Sequence

from tuneforge.data.bio import entity_spans

Span = tuple[int, int, str]
ERROR_KINDS = ("missed", "spurious", "wrong_type", "wrong_boundary", "wrong_type_and_boundary")


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _pairs(truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]):
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true tag sequences but {len(predicted)} predicted")
    for number, (true_tags, predicted_tags) in enumerate(zip(truth, predicted, strict=True)):
        if len(true_tags) != len(predicted_tags):
            raise ValueError(f"sequence {number}: {len(true_tags)} true tags but {len(predicted_tags)} predicted")
        yield true_tags, predicted_tags


def entity_counts(truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Per entity type: true, predicted and correct entities; and tokens, tokens right."""
    true, found, correct = Counter(), Counter(), Counter()
    tokens = right = 0
    for true_tags, predicted_tags in _pairs(truth, predicted):
        gold, guess = set(entity_spans(true_tags)), set(entity_spans(predicted_tags))
        true.update(kind for _, _, kind in gold)
        found.update(kind for _, _, kind in guess)
        correct.update(kind for _, _, kind in gold & guess)
        tokens += len(true_tags)
        right += sum(a == b for a, b in zip(true_tags, predicted_tags, strict=True))
    return {"true": true, "predicted": found, "correct": correct, "tokens": tokens, "tokens_right": right}


def entity_scores(truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """f1, precision, recall (entity-level, micro over types), accuracy (per token); macro_f1 (the mean of the
    per-type F1 over the types either side holds); sentence_accuracy (sequences entirely right)."""
    counts = entity_counts(truth, predicted)
    precision = _ratio(sum(counts["correct"].values()), sum(counts["predicted"].values()))
    recall = _ratio(sum(counts["correct"].values()), sum(counts["true"].values()))
    types = sorted(set(counts["true"]) | set(counts["predicted"]))
    per_type = [_f1(_ratio(counts["correct"][kind], counts["predicted"][kind]),
                    _ratio(counts["correct"][kind], counts["true"][kind])) for kind in types]
    pairs = list(_pairs(truth, predicted))
    return {
        "f1": _f1(precision, recall), "precision": precision, "recall": recall,
        "accuracy": _ratio(counts["tokens_right"], counts["tokens"]),
        "macro_f1": sum(per_type) / len(per_type) if per_type else 0.0,
        "sentence_accuracy": _ratio(sum(list(a) == list(b) for a, b in pairs), len(pairs)),
    }


def per_type_scores(
    truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], types: Sequence[str]
) -> list[dict]:
    """One row per type of `types`: type, precision, recall, f1, support (true entities), predicted (entities)."""
    counts = entity_counts(truth, predicted)
    rows = []
    for kind in types:
        correct, true, found = counts["correct"][kind], counts["true"][kind], counts["predicted"][kind]
        precision, recall = _ratio(correct, found), _ratio(correct, true)
        rows.append({"type": kind, "precision": precision, "recall": recall, "f1": _f1(precision, recall),
                     "support": true, "predicted": found})
    return rows


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def entity_errors(true_tags: Sequence[str], predicted_tags: Sequence[str]) -> list[dict]:
    """The errors of one sentence (see the module's docstring), in token order: {"kind", "true": span or None,
    "predicted": span or None}."""
    gold, guess = entity_spans(true_tags), entity_spans(predicted_tags)
    exact = set(gold) & set(guess)
    errors = []
    for span in gold:
        if span in exact:
            continue
        near = [other for other in guess if other not in exact and _overlaps(span, other)]
        same_span = [other for other in near if other[:2] == span[:2]]
        same_type = [other for other in near if other[2] == span[2]]
        if not near:
            errors.append({"kind": "missed", "true": span, "predicted": None})
        elif same_span:
            errors.append({"kind": "wrong_type", "true": span, "predicted": same_span[0]})
        elif same_type:
            errors.append({"kind": "wrong_boundary", "true": span, "predicted": same_type[0]})
        else:
            errors.append({"kind": "wrong_type_and_boundary", "true": span, "predicted": near[0]})
    errors += [{"kind": "spurious", "true": None, "predicted": span} for span in guess
               if span not in exact and not any(_overlaps(span, other) for other in gold)]
    return sorted(errors, key=lambda error: (error["true"] or error["predicted"])[:2])
