"""Stage `augment`: noisy variants of the train split, then class balancing. Never reads val or test.

Input: data/splits/train.parquet only (columns text, label, source_row). Output: data/augmented/train.parquet
with columns
    text, label   the example
    source_row    line of the original in the input data file (carried from the split)
    origin        0-based index of the original row in data/splits/train.parquet
    method        "original"; or the methods that changed the text, joined by "+" in the order applied
                  (e.g. "word_swap+char_noise"); balancing rows carry a "balance:" prefix
                  (e.g. "balance:char_noise")
Originals come first in train order, then the variants in origin order, then the balancing rows by class.

Variants: for each train row, `variants_per_row` variants; each applies word_dropout, word_swap and
char_noise (in that order) independently with its configured probability. A variant nothing changed, or
whose text already exists in the output, is skipped, so the output has no duplicate texts beyond any
already in the train split.

Balancing (balance.enabled): every class is topped up to `balance.target` rows with variants of its own
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
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow

from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, write_meta, write_metrics
from tuneforge.base.spec import AugmentConfig
from tuneforge.data.drift import write_drift_report
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.text_noise import METHODS
from tuneforge.data.textnorm import normalize_text
from tuneforge.pipeline.runner import stage_main

STAGE = "augment"
ORIGIN, METHOD = "origin", "method"
ORIGINAL = "original"
BALANCE_PREFIX = "balance:"
METHOD_ORDER = ("word_dropout", "word_swap", "char_noise")
REPORT_NAME = "augmented_vs_original"
# Attempts per missing balancing row before a class is given up on (short texts run out of new variants).
BALANCE_ATTEMPTS_PER_ROW = 20


def run(cfg: AugmentConfig, *, workspace: Workspace = Workspace()) -> Produced:
    started = time.time()
    train_path = workspace.splits / "train.parquet"
    out_dir, reports, metrics_path = workspace.augmented, workspace.reports(STAGE), workspace.metrics(STAGE)
    original = read_train_split(train_path)

    augmented, extra = augment_frame(original, cfg) if cfg.enabled else (with_provenance(original), {})
    metrics = augment_metrics(original, augmented, extra)

    with atomic_dirs(out_dir, reports) as (out_tmp, reports_tmp):
        augmented.to_parquet(out_tmp / "train.parquet", index=False)
        drift = write_drift_report(
            original[[TEXT, LABEL]],
            augmented[[TEXT, LABEL]],
            reports_tmp,
            REPORT_NAME,
            "Augmented vs original train split",
        )
        metrics["drift_share"] = drift.get("drift_share")
        write_meta(
            out_tmp,
            stage=STAGE,
            config=cfg,
            inputs={"train": train_path},
            metrics=metrics,
            started=started,
            extra={"columns": [TEXT, LABEL, SOURCE_ROW, ORIGIN, METHOD]},
        )
    # After the rename: a failure above leaves the previous metrics beside the previous outputs.
    write_metrics(metrics_path, metrics)
    return Produced(
        stage=STAGE,
        outputs={
            "train": out_dir / "train.parquet",
            "meta": out_dir / "meta.json",
            "report_html": reports / f"{REPORT_NAME}.html",
            "report_json": reports / f"{REPORT_NAME}.json",
            "metrics": metrics_path,
        },
        inputs={"train": train_path},
        metrics=metrics,
    )


def read_train_split(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StageError(f"{path}: not found; run the split stage first (python -m stages.split)")
    try:
        # Opened here rather than by path inside pyarrow, so every file this stage reads is visible
        # to Python's audit hooks (the test that proves val and test are never read relies on it).
        with open(path, "rb") as handle:
            frame = pd.read_parquet(handle)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise StageError(f"{path}: not a readable Parquet file ({reason})") from None
    missing = [c for c in (TEXT, LABEL, SOURCE_ROW) if c not in frame.columns]
    if missing:
        raise StageError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"columns are: {', '.join(map(str, frame.columns))} (rerun the split stage)"
        )
    if frame.empty:
        raise StageError(f"{path}: has no rows; rerun the split stage")
    for column in (TEXT, LABEL):
        nulls = frame.index[frame[column].isna()]
        if len(nulls):
            row = frame.loc[nulls[0], SOURCE_ROW]
            raise StageError(f"{path}: empty {column} at source row {row}; rerun validate and split")
    return pd.DataFrame(
        {
            TEXT: frame[TEXT].astype(str),
            LABEL: frame[LABEL].astype(str),
            SOURCE_ROW: frame[SOURCE_ROW].astype("int64"),
        }
    ).reset_index(drop=True)


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


def augment_frame(original: pd.DataFrame, cfg: AugmentConfig) -> tuple[pd.DataFrame, dict]:
    texts, labels = original[TEXT].tolist(), original[LABEL].tolist()
    seen = set(texts)
    rows: list[tuple[str, str, int, str]] = []  # text, label, origin, method
    skipped = Counter()

    def add(text: str, origin: int, applied: list[str], prefix: str = "") -> bool:
        if not applied or text == texts[origin] or not text:
            skipped["unchanged"] += 1
            return False
        if text in seen:
            skipped["duplicate"] += 1
            return False
        seen.add(text)
        rows.append((text, labels[origin], origin, prefix + "+".join(applied)))
        return True

    for origin, text in enumerate(texts):
        for variant in range(cfg.variants_per_row):
            rng = random.Random(f"{cfg.seed}:row:{origin}:variant:{variant}")
            variant_text, applied = make_variant(text, cfg, rng)
            add(variant_text, origin, applied)

    target = None
    shortfall: dict[str, int] = {}
    if cfg.balance.enabled:
        counts = Counter(labels) + Counter(label for _, label, _, _ in rows)
        target = cfg.balance.target or max(counts.values())
        by_class: dict[str, list[int]] = {}
        for origin, label in enumerate(labels):
            by_class.setdefault(label, []).append(origin)
        for label in sorted(by_class):
            missing = target - counts[label]
            if missing <= 0:
                continue
            order = list(by_class[label])
            random.Random(f"{cfg.seed}:balance:{label}:order").shuffle(order)
            attempts = missing * BALANCE_ATTEMPTS_PER_ROW
            for attempt in range(attempts):
                if missing == 0:
                    break
                origin = order[attempt % len(order)]
                rng = random.Random(f"{cfg.seed}:balance:{label}:attempt:{attempt}")
                variant, applied = make_variant(texts[origin], cfg, rng, force=True)
                if add(variant, origin, applied, prefix=BALANCE_PREFIX):
                    missing -= 1
            if missing > 0:
                shortfall[label] = missing

    added = pd.DataFrame(rows, columns=[TEXT, LABEL, ORIGIN, METHOD])
    added.insert(2, SOURCE_ROW, original[SOURCE_ROW].to_numpy()[added[ORIGIN].to_numpy(dtype="int64")])
    frame = pd.concat([with_provenance(original), added], ignore_index=True)
    frame = frame.astype({SOURCE_ROW: "int64", ORIGIN: "int64"})
    return frame[[TEXT, LABEL, SOURCE_ROW, ORIGIN, METHOD]], {
        "target": target,
        "shortfall": shortfall,
        "skipped": dict(skipped),
    }


def augment_metrics(original: pd.DataFrame, augmented: pd.DataFrame, extra: dict) -> dict:
    methods = augmented[METHOD]
    variants = methods[methods != ORIGINAL]
    applied = Counter(name for method in variants for name in method.removeprefix(BALANCE_PREFIX).split("+"))
    per_method = {name: applied[name] for name in METHODS}
    return {
        "rows_original": len(original),
        "rows_augmented": len(augmented),
        "rows_added": len(augmented) - len(original),
        "variants": int((~variants.str.startswith(BALANCE_PREFIX)).sum()),
        "balance_variants": int(variants.str.startswith(BALANCE_PREFIX).sum()),
        "per_method": per_method,
        "class_counts_before": _class_counts(original),
        "class_counts_after": _class_counts(augmented),
        "balance_target": extra.get("target"),
        "balance_shortfall": extra.get("shortfall", {}),
        "skipped_variants": extra.get("skipped", {}),
    }


def _class_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(label): int(count) for label, count in sorted(Counter(frame[LABEL]).items())}


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.augment), argv)


if __name__ == "__main__":
    raise SystemExit(main())
