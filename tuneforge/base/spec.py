"""The typed schema of params.yaml: every field, its default and a one-line description live here.

Unknown keys, wrong types and out-of-range values are refused with the dotted path of the key, e.g.
`split.val_fraction: must be in (0, 1), got 1.2`. Types are strict: YAML already gives native types,
so a quoted number where a number belongs is a mistake worth reporting, not coercing.
"""

import math
import re
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WrapSerializer,
    model_validator,
)

from tuneforge.base.errors import ConfigError
from tuneforge.base.secrets import mask_text, masked_in_records
from tuneforge.base.spec_yaml import read_spec

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".parquet")  # tables: every task that reads rows of a table
# CoNLL files (a token and its tag per line): token-classification data only (tuneforge/params refuses them, by their
# key, for any other model.task; tuneforge/data/io.read_table refuses them with that hint when called directly).
CONLL_EXTENSIONS = (".conll", ".txt")
TOKEN_CLASSIFICATION = "token-classification"
# Matched with fullmatch: `$` would also accept a name ending in a newline.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _open_unit(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError("must be in (0, 1)")
    return value


def _closed_unit(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be in [0, 1]")
    return value


def _safe_name(value: str) -> str:
    # Names become file names (expectations/<suite>.json): no separators, no "..", bounded length.
    if not _NAME.fullmatch(value) or ".." in value:
        raise ValueError("must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    return value


def _data_file(value: str) -> str:
    # The union of every task's files: which task a file suits is judged with model.task, across sections.
    suffix = Path(value).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS + CONLL_EXTENSIONS:
        raise ValueError(
            f"unsupported file extension '{suffix or '(none)'}' (use {', '.join(SUPPORTED_EXTENSIONS)}; "
            f"{', '.join(CONLL_EXTENSIONS)} for {TOKEN_CLASSIFICATION})"
        )
    return value


OpenFraction = Annotated[float, AfterValidator(_open_unit)]
Probability = Annotated[float, AfterValidator(_closed_unit)]
SafeName = Annotated[str, AfterValidator(_safe_name)]
DataFile = Annotated[str, AfterValidator(_data_file)]
# A URL that may carry a password: the stages connect with it as given; every record of the config
# (tuneforge.base.secrets.for_records: meta.json, the registry, Prefect artifacts) holds it masked.
SecretUrl = Annotated[str, WrapSerializer(masked_in_records)]

# Keys an older params.yaml may still set -> where they are now (the strict schema refuses the old place).
MOVED_KEYS = {
    f"{section}.max_seq_length": "model.max_seq_length" for section in ("train", "evaluate", "export", "monitor")
}
SHOWN_VALUE_CHARS = 80  # an offending value is echoed in an error line up to this many characters
MAX_ERROR_LINE_CHARS = 400  # and a whole error line (a section check may quote what it saw) up to this many
SHOWN_ERRORS = 20  # problems listed under the first one
_SHORT_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 3, 200, 200


class Section(BaseModel):
    # allow_inf_nan=False: every float of the spec is finite (.inf and .nan are YAML floats, and a learning
    # rate or an epoch count of inf trains nothing useful or overflows); a field that means "no limit" is null.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, validate_default=True, allow_inf_nan=False
    )


class DataConfig(Section):
    dir: str = Field("examples", description="Folder holding the input files (a DVC dependency as a whole).")
    train_file: DataFile = Field(
        "intents.csv", description="Labelled file inside `dir` (.csv, .tsv, .jsonl or .parquet; token-classification: "
        ".conll, .txt, .jsonl or .parquet) that is split."
    )
    test_file: DataFile | None = Field(
        None, description="Optional separate test file inside `dir`; when set it is the test split as is."
    )
    val_file: DataFile | None = Field(
        None, description="Optional separate validation file inside `dir`; when set it is the val split as is."
    )
    text_column: str = Field(
        "text", min_length=1,
        description="Column holding the input text (token-classification JSONL/Parquet: its tokens, or a text).",
    )
    label_column: str = Field(
        "label", min_length=1,
        description="Column holding the class label (token-classification JSONL/Parquet: the tags, or entity spans).",
    )
    labels: list[str] | None = Field(
        None, description="Declared label set (token-classification: the entity types or their tags); null infers "
        "it from the training file and records it."
    )
    columns: list[str] | None = Field(
        None, min_length=1,
        description="Column names of a headerless CSV/TSV file, in order; null reads them from its first line.",
    )
    label_separator: str | None = Field(
        None, min_length=1,
        description="multi-label, CSV/TSV: the string between the labels of a cell (e.g. ','); JSONL and Parquet "
        "hold a list.",
    )
    labels_file: str | None = Field(
        None, min_length=1,
        description="File inside `dir` naming one label per line: labels given as ids 0, 1, ... are mapped "
        "through it, and it is the label set.",
    )
    oos_file: DataFile | None = Field(
        None, description="Out-of-scope texts inside `dir` (single-label, with reject.enabled): rows whose label, "
        "where the file has the label column, is outside the label set. split shares them between val "
        "(split.oos_val_fraction, for reject.fit: oos) and test (the out-of-scope metrics).",
    )

    @property
    def train_path(self) -> Path:
        return Path(self.dir) / self.train_file

    @property
    def test_path(self) -> Path | None:
        return Path(self.dir) / self.test_file if self.test_file else None

    @property
    def val_path(self) -> Path | None:
        return Path(self.dir) / self.val_file if self.val_file else None

    @property
    def oos_path(self) -> Path | None:
        return Path(self.dir) / self.oos_file if self.oos_file else None

    @property
    def labels_path(self) -> Path | None:
        return Path(self.dir) / self.labels_file if self.labels_file else None

    @model_validator(mode="after")
    def _one_label_set(self):
        # Two declarations of one label set could disagree; which one wins would be a guess.
        if self.labels is not None and self.labels_file is not None:
            raise ValueError("labels and labels_file both declare the label set; set one of them")
        return self

    @model_validator(mode="after")
    def _files_distinct(self):
        # One file as two splits would score or select the model on its own training rows.
        named = [(key, name) for key, name in (
            ("train_file", self.train_file), ("val_file", self.val_file), ("test_file", self.test_file),
            ("oos_file", self.oos_file),
        ) if name]
        for index, (key, name) in enumerate(named):
            for other, other_name in named[index + 1:]:
                if Path(name) == Path(other_name):
                    raise ValueError(f"{key} and {other} are the same file ({name}); each split needs its own")
        return self


class ValidateConfig(Section):
    suite: SafeName | None = Field(
        None, description="Great Expectations suite, loaded from expectations/<suite>.json; null: the task's own "
        "(text_classification, multi_label, token_classification).",
    )
    min_text_chars: int = Field(
        2, ge=1, description="Shortest text accepted, in characters, after cleaning (token-classification: ignored, "
        "see min_sentence_tokens)."
    )
    max_text_chars: int = Field(
        2000, ge=1, description="Longest text accepted, in characters, after cleaning (token-classification: "
        "ignored, see max_sentence_tokens)."
    )
    min_examples_per_class: int = Field(
        10, ge=1, description="Fewest training examples a class may have (token-classification: ignored, see "
        "min_mentions_per_type)."
    )
    max_duplicate_share: Probability = Field(
        0.01, description="Largest share of rows whose text also appears with another label (they are dropped)."
    )
    drop_test_overlap: bool = Field(
        True,
        description="Drop training rows whose text is in the test or val file (else overlap fails validation).",
    )
    drop_val_test_overlap: bool = Field(
        False, description="Drop the given val file's rows whose text is in the given test file (the test file "
        "stays as given); false refuses files that share a text.",
    )
    allow_empty_labels: bool = Field(
        False, description="multi-label: keep rows whose label list is empty (none of the labels applies); "
        "false refuses them.",
    )
    repair_bio_tags: bool = Field(
        False, description="token-classification: an I- tag that continues no entity (ill-formed IOB2) is made a "
        "B- tag, as conlleval reads it, and counted in the metrics; false refuses it with its file and line.",
    )
    min_mentions_per_type: int = Field(
        10, ge=1, description="token-classification: fewest training entities (mentions) an entity type may have.",
    )
    min_sentence_tokens: int = Field(
        1, ge=1, description="token-classification: shortest sentence accepted, in tokens (words, not subwords).",
    )
    max_sentence_tokens: int = Field(
        512, ge=1, description="token-classification: longest sentence accepted, in tokens (words, not subwords).",
    )

    @model_validator(mode="after")
    def _bounds_ordered(self):
        if self.min_text_chars > self.max_text_chars:
            raise ValueError(
                f"min_text_chars ({self.min_text_chars}) must not exceed max_text_chars ({self.max_text_chars})"
            )
        if self.min_sentence_tokens > self.max_sentence_tokens:
            raise ValueError(
                f"min_sentence_tokens ({self.min_sentence_tokens}) must not exceed max_sentence_tokens "
                f"({self.max_sentence_tokens})"
            )
        return self


class SplitConfig(Section):
    val_fraction: OpenFraction = Field(
        0.1, description="Share of the labelled file held out for validation; ignored when data.val_file is given."
    )
    test_fraction: OpenFraction = Field(
        0.1, description="Share held out for test; ignored when data.test_file is given."
    )
    seed: int = Field(42, description="Seed of the stratified shuffle.")
    oos_val_fraction: Probability = Field(
        0.5, description="Share of the out-of-scope rows (data.oos_file) put in val; the rest are test rows.",
    )

    @model_validator(mode="after")
    def _fractions_leave_training_data(self):
        total = self.val_fraction + self.test_fraction
        if total >= 1:
            raise ValueError(f"val_fraction + test_fraction must be < 1, got {total:g}")
        return self


class NoiseConfig(Section):
    probability: Probability = Field(0.0, description="Chance that this method is applied to a variant.")
    rate: Probability = Field(0.1, description="Share of characters or words it touches when applied.")


class BalanceConfig(Section):
    enabled: bool = Field(True, description="Top minority classes up to `target` with augmented variants.")
    target: int | None = Field(
        None, ge=1, description="Examples per class after balancing; null: the largest class's count after variants."
    )


class AugmentConfig(Section):
    enabled: bool = Field(True, description="Off copies the train split through unchanged.")
    seed: int = Field(13, description="Seed of every random choice, so augmentation is deterministic.")
    variants_per_row: int = Field(1, ge=0, le=20, description="Augmented variants made from each train row.")
    char_noise: NoiseConfig = Field(
        NoiseConfig(probability=0.3, rate=0.04),
        description="Adjacent-key typos, character deletions and swaps (token-classification: in words outside "
        "entities only).",
    )
    word_dropout: NoiseConfig = Field(
        NoiseConfig(probability=0.3, rate=0.1),
        description="Drop words at random (never all of them; token-classification: words outside entities only).",
    )
    word_swap: NoiseConfig = Field(
        NoiseConfig(probability=0.3, rate=0.1),
        description="Swap neighbouring words (token-classification: two neighbours outside entities only).",
    )
    mention_replacement: NoiseConfig = Field(
        NoiseConfig(probability=0.3, rate=0.5),
        description="token-classification: replace entities with other entities of the same type from the train "
        "split (rate: share of a sentence's entities, at least one); ignored by the other tasks.",
    )
    balance: BalanceConfig = Field(BalanceConfig(), description="Class balancing of the train split.")


DEFAULT_PEFT = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": None}


def _below_one(value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError("must be in [0, 1)")
    return value


_EXPONENT_NUMBER = re.compile(r"^[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+$")


def _exponent_number(value: Any) -> Any:
    # YAML 1.1 (PyYAML) reads `2e-4` (no dot) as a string; it is how everyone writes a learning rate.
    if isinstance(value, str) and _EXPONENT_NUMBER.match(value.strip()):
        return float(value)
    return value


Number = Annotated[float, BeforeValidator(_exponent_number)]
UnitInterval = Annotated[Number, AfterValidator(_below_one)]


class ModelConfig(Section):
    base: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", min_length=1,
        description="Base model: a Hugging Face id or a local directory, always resolved offline.",
    )
    task: Literal[
        "sequence-classification", "multi-label-classification", "token-classification", "causal-lm"
    ] = Field(
        "sequence-classification",
        description="sequence-classification (one label per text), multi-label-classification (a set of labels "
        "per text), token-classification (a BIO tag per word: entities; validate through evaluate so far) or "
        "causal-lm (chat JSONL).",
    )
    max_seq_length: int = Field(
        128, ge=8, description="Longest input in tokens, longer ones truncated, in every stage that tokenizes "
        "(tune, train, evaluate, distill, export, monitor); batches pad dynamically. token-classification never "
        "truncates: a longer sentence is read in overlapping windows (stride)."
    )
    stride: int = Field(
        32, ge=0, description="token-classification: sub-tokens of context that consecutive windows of a sentence "
        "longer than max_seq_length share (each word is labelled and predicted in one window only); at most half "
        "of max_seq_length.",
    )

    @model_validator(mode="after")
    def _stride_fits(self):
        # A window must move on by at least half its length, or a long sentence costs windows by the word.
        if self.task == TOKEN_CLASSIFICATION and 2 * self.stride > self.max_seq_length:
            raise ValueError(
                f"stride ({self.stride}) must be at most half of max_seq_length ({self.max_seq_length}) for "
                f"task {TOKEN_CLASSIFICATION}"
            )
        return self


class CausalLmConfig(Section):
    train_file: str | None = Field(
        None, description="JSONL of {instruction, response} or {messages} rows (model.task: causal-lm only)."
    )
    val_file: str | None = Field(None, description="JSONL in the same format, scored by perplexity.")
    packing: bool = Field(False, description="Concatenate examples into full model.max_seq_length blocks.")


# Val metrics a task may select on (each task names its own: tuneforge/tasks, Task.metrics).
TrainMetric = Literal["accuracy", "macro_f1", "micro_f1", "f1", "precision", "recall", "loss", "perplexity"]


class TrainConfig(Section):
    method: Literal["full", "frozen", "lora", "peft"] = Field(
        "full", description="full, frozen (head only), lora, or peft (any peft method from `peft`)."
    )
    peft: dict[str, Any] = Field(
        DEFAULT_PEFT, description="peft config passed to peft as is (method lora or peft); needs peft_type."
    )
    freeze_layers: int = Field(
        0, ge=0, description="Keep the embeddings and the bottom N layers frozen (method full only)."
    )
    learning_rate: Number = Field(2e-4, gt=0, description="Peak learning rate (2e-4 suits MiniLM full tuning).")
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: UnitInterval = Field(0.1, description="Share of the training steps spent warming up.")
    weight_decay: Number = Field(0.01, ge=0, description="AdamW weight decay (not on biases and LayerNorm).")
    max_grad_norm: Number = Field(1.0, ge=0, description="Gradient clipping norm; 0 disables clipping.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches accumulated per optimizer step.")
    optimizer: Literal["adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop"] = Field(
        "adamw_torch", description="Optimizer, by its transformers name."
    )
    dropout: UnitInterval | None = Field(
        None, description="Override every dropout probability of the model; null keeps the model's own."
    )
    label_smoothing: UnitInterval = Field(0.0, description="Label smoothing of the classification loss.")
    pos_weight: bool = Field(
        False, description="multi-label: weigh each label's positives by its negatives/positives ratio in train "
        "(binary cross-entropy's pos_weight), for rare labels.",
    )
    label_all_subtokens: bool = Field(
        False, description="token-classification: also label a word's later sub-tokens (with its tag, B- made "
        "I-) for the loss; false labels its first sub-token only, the others ignored. Predictions read the first.",
    )
    epochs: Number = Field(3.0, gt=0, description="Passes over the training data (unless max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps to run; overrides epochs when set.")
    batch_size: int = Field(32, ge=1, description="Training examples per batch on each process.")
    eval_batch_size: int = Field(64, ge=1, description="Examples per batch when evaluating on val.")
    group_by_length: bool = Field(False, description="Batch texts of similar length together (less padding).")
    seed: int = Field(42, description="Seed of initialisation, data order and dropout.")
    eval_steps: int = Field(
        50, ge=1, description="Evaluate on val and write a checkpoint every N optimizer steps, and at the end."
    )
    keep_checkpoints: int = Field(
        2, ge=1, description="Newest checkpoints kept for resuming after a crash (the best is kept as well)."
    )
    metric: TrainMetric = Field(
        "macro_f1", description="Val metric that picks the best checkpoint and drives early stopping "
        "(token-classification: f1, precision, recall are entity-level, accuracy per token)."
    )
    early_stopping_patience: int | None = Field(
        3, ge=1, description="Stop after N evaluations without improvement; null never stops early."
    )
    early_stopping_threshold: Number = Field(
        0.0, ge=0, description="Smallest change of the metric that counts as an improvement."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on CUDA where supported, else fp16; fp32 on CPU."
    )
    num_processes: int = Field(
        1, ge=1, le=64, description="Processes of data-parallel training (DDP; gloo on CPU) via torchrun."
    )
    causal_lm: CausalLmConfig = Field(CausalLmConfig(), description="Data and packing for model.task causal-lm.")
    use_tuned: bool = Field(
        False, description="Merge the tune stage's best values (models/tune/best_params.yaml) over this section."
    )

    @model_validator(mode="after")
    def _consistent(self):
        peft_type = self.peft.get("peft_type")
        if not isinstance(peft_type, str) or not peft_type:
            raise ValueError("peft: needs a peft_type (e.g. LORA, IA3)")
        if self.method == "lora" and peft_type.upper() != "LORA":
            raise ValueError(f"method lora needs peft.peft_type LORA, got {peft_type} (use method: peft)")
        if self.freeze_layers and self.method != "full":
            raise ValueError(f"freeze_layers applies to method full only, got method {self.method}")
        return self


# train keys a search space may name (peft.* are keys of train.peft, methods lora/peft only).
TUNABLE_KEYS = (
    "learning_rate", "lr_scheduler", "warmup_ratio", "weight_decay", "max_grad_norm", "gradient_accumulation_steps",
    "optimizer", "dropout", "label_smoothing", "epochs", "batch_size", "freeze_layers",
    "peft.r", "peft.lora_alpha", "peft.lora_dropout",
)
DEFAULT_SPACE = {
    "learning_rate": {"type": "float", "low": 5e-5, "high": 1e-3, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    "lr_scheduler": {"type": "categorical", "choices": ["linear", "cosine"]},
}


class SearchDimension(Section):
    type: Literal["float", "int", "categorical"] = Field(
        ..., description="float (uniform, or log-uniform with log), int (integers), or categorical (choices)."
    )
    low: Number | None = Field(None, description="float/int: smallest value (inclusive).")
    high: Number | None = Field(None, description="float/int: largest value (inclusive); must exceed low.")
    log: bool = Field(False, description="float/int: sample on a log scale (low must be > 0).")
    step: Number | None = Field(
        None, gt=0, description="float/int: spacing of the values (finite set: what the grid sampler needs)."
    )
    choices: list[str | int | float | bool | None] | None = Field(
        None, description="categorical: the values tried (at least one, no repeats)."
    )

    @model_validator(mode="after")
    def _well_formed(self):
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("type categorical takes choices only (no low, high, log or step)")
            if not self.choices:
                raise ValueError("empty choices: give at least one value")
            if len({repr(choice) for choice in self.choices}) != len(self.choices):
                raise ValueError(f"choices repeat a value: {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"choices applies to type categorical only, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"type {self.type} needs low and high")
        if self.low >= self.high:
            raise ValueError(f"empty range: low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"log needs low > 0, got {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high, self.step or 1)):
            raise ValueError("type int needs whole numbers for low, high and step")
        if self.step is not None and not _divides(self.step, self.high - self.low):
            raise ValueError(f"step ({self.step:g}) must divide high - low ({self.high - self.low:g})")
        return self

    def grid_points(self) -> list | None:
        """Every value of a finite dimension (categorical, int, float with step); None for a continuous one."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.type == "float" and self.step is not None:
            count = round((self.high - self.low) / self.step) + 1
            return [round(self.low + i * self.step, 12) for i in range(count)]
        return None


def _divides(step: float, span: float) -> bool:
    ratio = span / step
    return abs(ratio - round(ratio)) < 1e-9


def _tunable_space(space: dict[str, SearchDimension | None]) -> dict[str, SearchDimension | None]:
    unknown = [name for name in space if name not in TUNABLE_KEYS]
    if unknown:
        raise ValueError(f"unknown parameter '{unknown[0]}' (tunable: {', '.join(TUNABLE_KEYS)})")
    return space


def _study_storage(value: str) -> str:
    # A study that several workers share and a re-run resumes lives in a database file or server.
    if not (value.startswith("sqlite:///") or re.match(r"^postgresql(\+[a-z0-9_]+)?://", value)):
        raise ValueError("must be sqlite:///<file> or postgresql[+driver]://user:password@host/db")
    return value


class TrialBudget(Section):
    max_steps: int | None = Field(
        None, ge=1, description="Optimizer steps of every trial (null: train.max_steps / train.epochs)."
    )
    epochs: Number | None = Field(
        None, gt=0, description="Epochs of every trial when max_steps is null (null: train's)."
    )
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate (and report to the pruner) every N steps in a trial (null: train's)."
    )


class TuneConfig(Section):
    enabled: bool = Field(False, description="Run the search; off writes a best_params.yaml that says so, at once.")
    sampler: Literal["grid", "random", "tpe"] = Field(
        "tpe", description="grid (every point of a finite space), random, or tpe (Bayesian, Optuna's TPE)."
    )
    pruner: Literal["none", "median", "hyperband"] = Field(
        "median", description="Stop unpromising trials early on their intermediate val metric: none, median, hyperband."
    )
    n_trials: int = Field(
        20, ge=1, description="Trials the study holds when done (complete or pruned), over all workers and re-runs."
    )
    timeout_s: Number | None = Field(
        None, gt=0, description="Time budget of one process: no new trial starts after it; null: no limit."
    )
    metric: TrainMetric | None = Field(
        None, description="Val metric optimised (maximise accuracy/macro_f1/f1, minimise loss); null: train.metric."
    )
    seed: int = Field(42, description="Seed of the sampler (trial k samples with seed + k: reproducible, resumable).")
    include_defaults: bool = Field(
        True, description="First trial: the train section's own values, so the default recipe is measured too."
    )
    budget: TrialBudget = Field(TrialBudget(), description="Per-trial length (the default recipe trial gets it too).")
    space: Annotated[dict[str, SearchDimension | None], AfterValidator(_tunable_space)] = Field(
        DEFAULT_SPACE,
        description="Tunable train key (peft.r for train.peft.r) -> its distribution; null leaves a key out.",
    )
    storage: Annotated[SecretUrl, AfterValidator(_study_storage)] = Field(
        "sqlite:///.tuneforge/optuna.db",
        description="Study database: a SQLite file, or postgresql+psycopg://... that workers on many machines share.",
    )
    study_name: SafeName | None = Field(
        None, description="Study to create or resume; null: tune-<hash of data, model, train and space>."
    )
    tpe_startup_trials: int = Field(10, ge=0, description="tpe: trials sampled at random before TPE takes over.")
    pruner_startup_trials: int = Field(2, ge=0, description="median: trials that complete before any is pruned.")
    pruner_warmup_steps: int = Field(0, ge=0, description="median: optimizer steps before a trial may be pruned.")
    hyperband_min_resource: int = Field(
        1, ge=1, description="hyperband: optimizer steps every trial runs before it may be stopped."
    )
    hyperband_reduction_factor: int = Field(3, ge=2, description="hyperband: 1/factor of trials go on per rung.")
    stale_after_s: int = Field(
        600, ge=4, description="A running trial without a heartbeat this long (a killed worker) is failed and redone."
    )
    busy_timeout_s: float = Field(60.0, gt=0, description="SQLite: how long a writer waits for another's lock.")
    connect_timeout_s: int = Field(5, ge=1, description="Seconds to wait for a database server before giving up.")

    @model_validator(mode="after")
    def _searchable(self):
        space = self.search_space()
        if not space:
            if self.enabled:
                raise ValueError("space: empty; declare at least one parameter to search")
            return self
        if self.sampler != "grid":
            return self
        size = 1
        for name, dimension in space.items():
            points = dimension.grid_points()
            if points is None:
                raise ValueError(
                    f"space.{name}: the grid sampler needs a finite set of values: give a step (without log) "
                    "or use type categorical"
                )
            size *= len(points)
        if self.include_defaults:
            raise ValueError(
                "include_defaults: not with the grid sampler, which runs grid points only "
                "(put the default values among the grid's values instead)"
            )
        if self.n_trials > size:
            raise ValueError(f"n_trials ({self.n_trials}) exceeds the grid's {size} points")
        return self

    def search_space(self) -> dict[str, SearchDimension]:
        """The declared dimensions, without those an overlay switched off with null."""
        return {name: dimension for name, dimension in self.space.items() if dimension is not None}


class EvaluateConfig(Section):
    batch_size: int = Field(64, ge=1, description="Test examples per inference batch.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU.")
    calibration_bins: int = Field(
        15, ge=2, le=100, description="Equal-width confidence bins of the expected calibration error."
    )
    top_confusions: int = Field(10, ge=0, description="Most frequent (true, predicted) confusions listed.")
    examples_per_confusion: int = Field(
        3, ge=0, description="Test texts shown per listed confusion (the most confident mistakes)."
    )
    compare_alias: SafeName | None = Field(
        "production",
        description="Alias of registry.model_name evaluated on the same test split; null turns the comparison off.",
    )
    compare_role: SafeName = Field(
        "teacher", description="Role of the compared version that holds its Hugging Face model directory."
    )
    significance_level: OpenFraction = Field(
        0.05, description="McNemar p-value below which the two models' accuracies are called different."
    )


def _layer_indices(value: list[int]) -> list[int]:
    if not value:
        raise ValueError("keep at least one layer (or null)")
    if any(layer < 0 for layer in value) or len(set(value)) != len(value):
        raise ValueError("must be distinct layer indices >= 0")
    return value


class DistillConfig(Section):
    layers: Annotated[list[int], AfterValidator(_layer_indices)] | None = Field(
        None, description="Teacher layers (0-based) the student keeps; null: num_layers spread over the depth."
    )
    num_layers: int | None = Field(
        None, ge=1, description="Layers kept when `layers` is null; null: a third of the teacher's, rounded up."
    )
    student_config: dict[str, Any] | None = Field(
        None,
        description="Instead of keeping layers: the teacher's config with these keys changed (passed to "
        "transformers as is); weights whose name and shape match the teacher's are copied, the rest are fresh.",
    )
    prune_vocab: bool = Field(
        True, description="Keep only the embedding rows of tokens the training data uses; others read as unknown."
    )
    alpha: Probability = Field(
        0.5, description="Weight of cross-entropy on the true labels; 1 - alpha weighs the KL to the teacher."
    )
    temperature: Number = Field(
        2.0, gt=0, description="Softmax temperature of the distillation term (the term is scaled by T squared)."
    )
    learning_rate: Number = Field(2e-4, gt=0, description="Peak learning rate of the student.")
    epochs: Number = Field(5.0, gt=0, description="Passes over the training data (unless max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps to run; overrides epochs when set.")
    batch_size: int = Field(32, ge=1, description="Training examples per batch.")
    seed: int = Field(42, description="Seed of data order and dropout.")


class ExportConfig(Section):
    source: Literal["student", "teacher"] = Field(
        "student", description="Model shipped in models/onnx: the distilled student or the teacher itself."
    )
    opset: int = Field(17, ge=14, le=20, description="ONNX opset of the exported graph.")
    batch_size: int = Field(64, ge=1, description="Test examples per batch in the parity checks.")
    max_abs_diff: Number = Field(
        1e-3, gt=0, description="Gate: largest |logit difference| of fp32 ONNX vs PyTorch on the test split."
    )
    max_f1_drop: Number = Field(
        1.0, ge=0, description="Gate: largest drop of macro-F1, in points, of int8 vs fp32 ONNX on the test split."
    )
    per_channel: bool = Field(True, description="Quantize weights per output channel instead of per tensor.")
    worst_rows: int = Field(10, ge=1, description="Rows listed when a parity gate fails (the worst ones).")
    benchmark_runs: int = Field(200, ge=1, description="Batch-1 inferences timed per model in the speed report.")
    benchmark_warmup: int = Field(20, ge=0, description="Untimed inferences before each model is timed.")
    throughput_batch_size: int = Field(32, ge=1, description="Batch size of the throughput measurement.")
    threads: int | None = Field(
        None, ge=1, description="CPU threads of PyTorch and onnxruntime in the speed report; null: all cores."
    )
    calibrate: bool = Field(
        True,
        description="Fit the shipped int8 model's calibration (a softmax temperature, minimum NLL) on the val split "
        "and ship it in labels.json: tuneforge predict, the monitor and the server apply it. false: raw scores.",
    )
    calibration_bins: int = Field(
        15, ge=2, le=100, description="Equal-width confidence bins of the ECE reported before and after calibration."
    )


class RejectConfig(Section):
    enabled: bool = Field(
        False, description="Answer out-of-scope texts with `label` instead of their likeliest class (single-label)."
    )
    keep_in_scope: OpenFraction = Field(
        0.95, description="Share of the in-scope val rows kept: the rejection threshold on the calibrated top score "
        "is the highest that keeps at least this share.",
    )
    label: str = Field(
        "out_of_scope", min_length=1, max_length=64,
        description="The answer for a rejected text; it must not be one of the model's labels.",
    )
    fit: Literal["keep_in_scope", "oos"] = Field(
        "keep_in_scope", description="How the threshold is chosen on val: keep_in_scope (the share above, from "
        "in-scope rows only) or oos (the highest macro-F1 over the labels and out-of-scope as one more class, on "
        "the val rows and the out-of-scope val rows of data.oos_file).",
    )


# Evidently's drift tests by the column type they accept (evidently.legacy.calculations.stattests).
NumericDriftTest = Literal[
    "ks", "wasserstein", "psi", "kl_div", "jensenshannon", "hellinger", "anderson", "cramer_von_mises", "ed", "es",
    "mannw", "empirical_mmd", "t_test",
]
CategoricalDriftTest = Literal["chisquare", "jensenshannon", "psi", "kl_div", "hellinger", "TVD", "z", "g_test",
                               "fisher_exact"]
MonitorSignal = Literal["descriptors", "predictions", "embeddings"]


class DescriptorDriftConfig(Section):
    method: NumericDriftTest | None = Field(
        None, description="Evidently test of each text descriptor; null: Evidently's choice by sample size."
    )
    threshold: float | None = Field(None, description="Threshold of that test; null: the test's own default.")
    drift_share: Probability = Field(
        0.5, description="Share of the descriptors (length, word count, non-letter %) that must drift."
    )


# "permutation": the monitor's own test of the predicted labels; the others are Evidently's tests by name.
PredictionDriftTest = Literal[("permutation",) + get_args(CategoricalDriftTest)]


class PredictionDriftConfig(Section):
    method: PredictionDriftTest = Field(
        "permutation", description="permutation: Jensen-Shannon distance with a permutation p-value (holds for "
        "many labels); or an Evidently test by name (its chi-square fires on same-distribution data then)."
    )
    level: OpenFraction = Field(
        0.05, description="Permutation p-value below which the labels drift: the share of healthy batches flagged."
    )
    resamples: int = Field(
        1000, ge=99, le=100_000, description="Random permutations of the pooled rows behind the p-value (seeded)."
    )
    threshold: float | None = Field(
        None, description="Threshold of the Evidently test that `method` names; null: its default. "
        "The permutation test uses `level`."
    )

    @model_validator(mode="after")
    def _threshold_is_evidently_only(self):
        if self.method == "permutation" and self.threshold is not None:
            raise ValueError("threshold applies to Evidently's tests; the permutation test's is level")
        if self.level * (self.resamples + 1) <= 1:  # p-values start at 1 / (resamples + 1)
            raise ValueError(f"level {self.level} needs at least {math.floor(1 / self.level - 1) + 1} resamples, "
                             f"got {self.resamples}")
        return self


class EmbeddingDriftConfig(Section):
    threshold: float = Field(
        0.55, gt=0, lt=1, description="ROC AUC of Evidently's domain classifier (reference vs new) that is drift."
    )
    bootstrap: bool | None = Field(
        None, description="Compare the ROC AUC with random guesses' 95th percentile instead of `threshold`; "
        "null: when the reference sample has fewer than 1,000 rows (Evidently's rule)."
    )
    plot: bool = Field(
        False, description="Add Evidently's t-SNE picture of both samples to the HTML (slow: a minute per 1,000 rows)."
    )


class MonitorConfig(Section):
    reference_alias: SafeName = Field(
        "production", description="Alias of registry.model_name whose model and training data new data meets."
    )
    model_role: SafeName = Field("onnx_int8", description="Role of that version holding the shipped ONNX directory.")
    embedding_role: SafeName = Field(
        "teacher", description="Role holding the Hugging Face model whose mean-pooled hidden states are the embeddings."
    )
    reference_role: SafeName = Field("test_split", description="Role holding the training reference data.")
    reference_file: SafeName = Field(
        "train.parquet", description="File inside that role's folder: the rows the model learnt from."
    )
    incoming_dir: str = Field(
        "data/incoming", min_length=1, description="Where new batches arrive: the nightly deployment's new_data."
    )
    retrain_dir: str = Field(
        "data/retrain", min_length=1, description="Where merged training data for a triggered retrain is written."
    )
    reports_dir: str = Field(
        "reports/monitor", min_length=1, description="Where each check's HTML and JSON report is written."
    )
    signals: list[MonitorSignal] = Field(
        ["descriptors", "predictions", "embeddings"], min_length=1, description="Drift signals computed and counted."
    )
    min_drifted_signals: int = Field(
        2, ge=1, description="How many of `signals` must drift for the batch to count as drifted (1: any)."
    )
    descriptors: DescriptorDriftConfig = Field(
        DescriptorDriftConfig(), description="Evidently text descriptors, reference vs new."
    )
    predictions: PredictionDriftConfig = Field(
        PredictionDriftConfig(), description="The production model's predicted-label distribution, reference vs new."
    )
    embeddings: EmbeddingDriftConfig = Field(
        EmbeddingDriftConfig(), description="Evidently's embedding drift (domain classifier) on sentence embeddings."
    )
    min_new_rows: int = Field(20, ge=2, description="Fewest non-empty new texts a check accepts.")
    max_new_rows: int = Field(1000, ge=2, description="New texts compared at most (a seeded sample beyond that).")
    max_reference_rows: int = Field(1000, ge=2, description="Reference rows compared at most (a seeded sample).")
    seed: int = Field(0, description="Seed of both samples.")
    batch_size: int = Field(32, ge=1, description="Texts per inference batch (ONNX predictions and embeddings).")

    @model_validator(mode="after")
    def _enough_signals(self):
        if len(set(self.signals)) != len(self.signals):
            raise ValueError(f"signals must not repeat, got {self.signals}")
        if self.min_drifted_signals > len(self.signals):
            raise ValueError(
                f"min_drifted_signals ({self.min_drifted_signals}) exceeds the {len(self.signals)} signals computed"
            )
        return self


class TrafficConfig(Section):
    enabled: bool = Field(True, description="Append a sample of served inputs to batch files for the drift monitor.")
    dir: str | None = Field(None, description="Folder the batch files go to; null: monitor.incoming_dir.")
    sample: Probability = Field(0.1, description="Share of served inputs written (each input drawn on its own).")
    rotate_rows: int = Field(500, ge=1, description="A batch file is closed once it holds this many rows ...")
    rotate_s: float = Field(300.0, gt=0, description="... or once its oldest row is this many seconds old.")
    store_text: bool = Field(
        True, description="Write the text itself; false: only its sha256 (the text signals then cannot run)."
    )


class ServeConfig(Section):
    host: str = Field("127.0.0.1", min_length=1, description="Interface the HTTP server listens on (0.0.0.0: all).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port of the HTTP server (0: any free port).")
    workers: int = Field(
        1, ge=1, description="Server processes sharing the port; each loads the model and follows the alias."
    )
    model_role: SafeName = Field("onnx_int8", description="Role of a registered version holding the ONNX folder.")
    variant: Literal["int8", "fp32"] = Field("int8", description="model.int8.onnx (int8) or model.onnx (fp32).")
    threads: int | None = Field(
        None, ge=1, description="onnxruntime intra-op threads per process; null: usable cores / workers."
    )
    batching: bool = Field(True, description="Run requests that arrive together as one batch; false: one by one.")
    max_batch: int = Field(32, ge=1, description="Most texts in one inference batch.")
    max_wait_ms: float = Field(
        2.0, ge=0, description="How long the first request of a batch waits for others to join it."
    )
    max_texts: int = Field(64, ge=1, description="Most texts in one request (more: 413).")
    max_chars: int = Field(2000, ge=1, description="Most characters in one text (more: 413).")
    max_body_kb: int = Field(1024, ge=1, description="Largest request body in KiB (more: 413).")
    top_k: int = Field(5, ge=1, description="Scores returned per input: the k most probable labels.")
    follow: bool = Field(True, description="For NAME@ALIAS: load the new version when the alias moves.")
    poll_s: float = Field(2.0, gt=0, description="Seconds between two reads of the alias in the registry.")
    drain_s: float = Field(10.0, gt=0, description="On shutdown, how long requests in flight may take to finish.")
    traffic: TrafficConfig = Field(TrafficConfig(), description="The traffic log the drift monitor reads.")


def parse_spec(model: type[BaseModel], raw: Any, source: str = "params.yaml"):
    """Validate a params mapping against `model` (the whole spec, or some of its sections); every problem is
    reported by its dotted path."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of sections, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_describe(model, error) for error in errors[:SHOWN_ERRORS + 1]]
        if len(errors) > len(lines):
            lines.append(f"... and {len(errors) - len(lines)} more")
        raise ConfigError(f"{source}: {lines[0]}", detail="\n".join(lines[1:])) from None


def load_spec(model: type[BaseModel], path: Path | str = "params.yaml"):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    return parse_spec(model, read_spec(path, yaml.safe_load), source=str(path))


def shown_value(value: Any, limit: int = SHOWN_VALUE_CHARS) -> str:
    """A value as an error line echoes it: its repr, passwords masked, cut to `limit` characters."""
    # reprlib stops early in long strings and deep or long containers: the full repr of a huge value
    # (or of one YAML aliases made exponentially big) would cost its whole size before being cut.
    return _cut(mask_text(_SHORT_REPR.repr(value)), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _describe(root: type[BaseModel], error: dict) -> str:
    path = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        if path in MOVED_KEYS:
            return f"{path}: moved to {MOVED_KEYS[path]}; set it there (once, for every stage)"
        allowed = _allowed_keys(root, error["loc"][:-1])
        return f"{path}: unknown key (expected one of: {', '.join(allowed)})"
    if kind == "missing":
        return f"{path}: required"
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    # Section-level checks (a whole mapping as input) already say what they saw.
    if "got" not in message and not isinstance(error["input"], dict):
        message = f"{message}, got {shown_value(error['input'])}"
    # A check across sections (loc empty) names its keys itself.
    return _cut(mask_text(f"{path}: {message}" if path else message), MAX_ERROR_LINE_CHARS)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = _field_by_key(model, part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [field.alias or name for name, field in model.model_fields.items()]


def _field_by_key(model: type[BaseModel], key: Any):
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def describe_sections(root: type[BaseModel]) -> dict[str, dict[str, tuple[Any, str]]]:
    """Every section's fields with default and description (used by docs and `tuneforge params`)."""
    sections = {}
    for name, field in root.model_fields.items():
        model = field.annotation
        sections[field.alias or name] = {
            key: (sub.default, sub.description or "") for key, sub in model.model_fields.items()
        }
    return sections
