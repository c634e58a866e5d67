"""Noisy variants of labelled texts, then balancing: the augment stage's work for text tasks.

Output rows are the input rows, then the variants, each with its provenance (`origin`, the input row it
came from, and `method`, what changed it); the columns are described in stages/augment.py. A variant carries
its original's label, unless the task makes its variants itself (`vary`: token classification's variants change
tags with the tokens, tuneforge/data/token_augmentation.py); balancing, provenance and deduplication stay here.

Variants: for each train row, `variants_per_row` variants; each applies word_dropout, word_swap and
char_noise (in that order) independently with its configured probability. A variant nothing changed, or
whose text already exists in the output, is skipped, so the output has no duplicate texts beyond any
already in the train split.

Balancing (balance.enabled): every class (or other key a task balances by, such as a multi-label row's
rarest label) is topped up to `balance.target` rows with variants of its own
rows, taken round-robin over a shuffled order so each row contributes about equally. A balancing variant
applies the methods by probability like any other and, if none changed the text, one method chosen at
random, so balancing still works with every probability at 0. A null target means the largest class's
count AFTER the variants were added: the output is then balanced (with the count of the original largest
class, variants_per_row > 0 would leave the original imbalance in place). Classes are never trimmed. A
class whose texts cannot yield enough distinct variants stops short; the metrics record the shortfall.

Randomness: every variant has its own rng seeded from (seed, row index, variant number), and every
balancing variant from (seed, label, attempt), so no result depends on another's draws.
"""

import random
from collections import Counter
from collections.abc import Callable

import pandas as pd

from tuneforge.base.spec import AugmentConfig
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.text_noise import METHODS
from tuneforge.data.textnorm import normalize_text

ORIGIN, METHOD = "origin", "method"
ORIGINAL = "original"
BALANCE_PREFIX = "balance:"
METHOD_ORDER = ("word_dropout", "word_swap", "char_noise")
# Attempts per missing balancing row before a class is given up on (short texts run out of new variants).
BALANCE_ATTEMPTS_PER_ROW = 20


def with_provenance(original: pd.DataFrame) -> pd.DataFrame:
    frame = original.copy()
    frame[ORIGIN] = range(len(frame))
    frame[METHOD] = ORIGINAL
    return frame


def make_variant(text: str, cfg: AugmentConfig, rng: random.Random, *, force: bool = False):
    """(new text, methods that changed it); `force` applies one random method when none fired."""
    # Which methods fire is drawn up front, one draw each, so whether one fires never depends on
    # how many draws another method's edits consumed.
    fired = [name for name in METHOD_ORDER if rng.random() < getattr(cfg, name).probability]
    applied = []
    for name in fired:
        changed = METHODS[name](text, getattr(cfg, name).rate, rng)
        if changed != text:
            text, applied = changed, [*applied, name]
    if force and not applied:
        for name in rng.sample(METHOD_ORDER, len(METHOD_ORDER)):
            changed = METHODS[name](text, getattr(cfg, name).rate, rng)
            if changed != text:
                text, applied = changed, [name]
                break
    return normalize_text(text), applied


# (text, label, rng, force) -> (new text, its label, the methods that changed it): how one variant is made.
Vary = Callable[[str, str, random.Random, bool], tuple[str, str, list[str]]]


def text_variant(cfg: AugmentConfig) -> Vary:
    """The text tasks' variant: make_variant's noise on the text, the label carried as it is."""
    def vary(text: str, label: str, rng: random.Random, force: bool) -> tuple[str, str, list[str]]:
        changed, applied = make_variant(text, cfg, rng, force=force)
        return changed, label, applied
    return vary


def augment_frame(
    original: pd.DataFrame, cfg: AugmentConfig, balance_by: list[str] | None = None, vary: Vary | None = None
) -> tuple[pd.DataFrame, dict]:
    """(original rows then variants, with provenance; {target, shortfall, skipped}). `balance_by`: the key of
    each original row that balancing counts and tops up (default: its label, one class per row); a row whose
    key is None (a row without any label) is never counted or topped up. `vary` makes one variant (default: noise
    on the text, the label carried); a variant keeps its original's balancing key."""
    vary = vary or text_variant(cfg)
    texts, labels = original[TEXT].tolist(), original[LABEL].tolist()
    keys = list(balance_by) if balance_by is not None else labels
    seen = set(texts)
    rows: list[tuple[str, str, int, str]] = []  # text, label, origin, method
    skipped = Counter()

    def add(variant: tuple[str, str, list[str]], origin: int, prefix: str = "") -> bool:
        text, label, applied = variant
        if not applied or text == texts[origin] or not text:
            skipped["unchanged"] += 1
            return False
        if text in seen:
            skipped["duplicate"] += 1
            return False
        seen.add(text)
        rows.append((text, label, origin, prefix + "+".join(applied)))
        return True

    for origin, text in enumerate(texts):
        for variant in range(cfg.variants_per_row):
            rng = random.Random(f"{cfg.seed}:row:{origin}:variant:{variant}")
            add(vary(text, labels[origin], rng, False), origin)

    target = None
    shortfall: dict[str, int] = {}
    if cfg.balance.enabled:
        counts = Counter(keys) + Counter(keys[origin] for _, _, origin, _ in rows)
        counts.pop(None, None)
        target = cfg.balance.target or max(counts.values(), default=0)
        by_class: dict[str, list[int]] = {}
        for origin, key in enumerate(keys):
            if key is not None:
                by_class.setdefault(key, []).append(origin)
        for key in sorted(by_class):
            missing = target - counts[key]
            if missing <= 0:
                continue
            order = list(by_class[key])
            random.Random(f"{cfg.seed}:balance:{key}:order").shuffle(order)
            attempts = missing * BALANCE_ATTEMPTS_PER_ROW
            for attempt in range(attempts):
                if missing == 0:
                    break
                origin = order[attempt % len(order)]
                rng = random.Random(f"{cfg.seed}:balance:{key}:attempt:{attempt}")
                if add(vary(texts[origin], labels[origin], rng, True), origin, prefix=BALANCE_PREFIX):
                    missing -= 1
            if missing > 0:
                shortfall[key] = missing

    added = pd.DataFrame(rows, columns=[TEXT, LABEL, ORIGIN, METHOD])
    added.insert(2, SOURCE_ROW, original[SOURCE_ROW].to_numpy()[added[ORIGIN].to_numpy(dtype="int64")])
    frame = pd.concat([with_provenance(original), added], ignore_index=True)
    frame = frame.astype({SOURCE_ROW: "int64", ORIGIN: "int64"})
    return frame[[TEXT, LABEL, SOURCE_ROW, ORIGIN, METHOD]], {
        "target": target,
        "shortfall": shortfall,
        "skipped": dict(skipped),
    }


def augment_metrics(
    original: pd.DataFrame, augmented: pd.DataFrame, extra: dict, label_counts: Callable[[pd.Series], pd.Series]
) -> dict:
    """The stage's metrics; `label_counts` (the task's) counts rows per label, before and after."""
    methods = augmented[METHOD]
    variants = methods[methods != ORIGINAL]
    applied = Counter(name for method in variants for name in method.removeprefix(BALANCE_PREFIX).split("+"))
    # Every method (0 when unused): the text methods, or those a task's augmentation names in its facts
    per_method = {name: applied[name] for name in extra.get("methods", METHODS)}
    return {
        "rows_original": len(original),
        "rows_augmented": len(augmented),
        "rows_added": len(augmented) - len(original),
        "variants": int((~variants.str.startswith(BALANCE_PREFIX)).sum()),
        "balance_variants": int(variants.str.startswith(BALANCE_PREFIX).sum()),
        "per_method": per_method,
        "class_counts_before": _class_counts(original, label_counts),
        "class_counts_after": _class_counts(augmented, label_counts),
        "balance_target": extra.get("target"),
        "balance_shortfall": extra.get("shortfall", {}),
        "skipped_variants": extra.get("skipped", {}),
    }


def _class_counts(frame: pd.DataFrame, label_counts: Callable[[pd.Series], pd.Series]) -> dict[str, int]:
    return {str(label): int(count) for label, count in sorted(label_counts(frame[LABEL]).items())}
