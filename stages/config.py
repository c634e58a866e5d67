"""The typed schema of params.yaml: every field, its default and a one-line description live here.

Unknown keys, wrong types and out-of-range values are refused with the dotted path of the key, e.g.
`split.val_fraction: must be in (0, 1), got 1.2`. Types are strict: YAML already gives native types,
so a quoted number where a number belongs is a mistake worth reporting, not coercing.
"""

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from stages.errors import ConfigError

SUPPORTED_EXTENSIONS = (".csv", ".jsonl", ".parquet")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    if not _NAME.match(value) or ".." in value:
        raise ValueError("must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    return value


def _data_file(value: str) -> str:
    suffix = Path(value).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"unsupported file extension '{suffix or '(none)'}' (use {', '.join(SUPPORTED_EXTENSIONS)})"
        )
    return value


OpenFraction = Annotated[float, AfterValidator(_open_unit)]
Probability = Annotated[float, AfterValidator(_closed_unit)]
SafeName = Annotated[str, AfterValidator(_safe_name)]
DataFile = Annotated[str, AfterValidator(_data_file)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


class DataConfig(Section):
    dir: str = Field("examples", description="Folder holding the input files (a DVC dependency as a whole).")
    train_file: DataFile = Field(
        "intents.csv", description="Labelled file inside `dir` (.csv, .jsonl or .parquet) that is split."
    )
    test_file: DataFile | None = Field(
        None, description="Optional separate test file inside `dir`; when set it is the test split as is."
    )
    text_column: str = Field("text", min_length=1, description="Column holding the input text.")
    label_column: str = Field("label", min_length=1, description="Column holding the class label.")
    labels: list[str] | None = Field(
        None, description="Declared label set; null infers it from the training file and records it."
    )

    @property
    def train_path(self) -> Path:
        return Path(self.dir) / self.train_file

    @property
    def test_path(self) -> Path | None:
        return Path(self.dir) / self.test_file if self.test_file else None


class ValidateConfig(Section):
    suite: SafeName = Field(
        "text_classification", description="Great Expectations suite, loaded from expectations/<suite>.json."
    )
    min_text_chars: int = Field(2, ge=1, description="Shortest text accepted, in characters, after cleaning.")
    max_text_chars: int = Field(2000, ge=1, description="Longest text accepted, in characters, after cleaning.")
    min_examples_per_class: int = Field(10, ge=1, description="Fewest training examples a class may have.")
    max_duplicate_share: Probability = Field(
        0.01, description="Largest share of rows whose text also appears with a different label."
    )
    drop_test_overlap: bool = Field(
        True, description="Drop training rows whose text is in the test file (else overlap fails validation)."
    )

    @model_validator(mode="after")
    def _bounds_ordered(self):
        if self.min_text_chars > self.max_text_chars:
            raise ValueError(
                f"min_text_chars ({self.min_text_chars}) must not exceed max_text_chars ({self.max_text_chars})"
            )
        return self


class SplitConfig(Section):
    val_fraction: OpenFraction = Field(0.1, description="Share of the labelled file held out for validation.")
    test_fraction: OpenFraction = Field(
        0.1, description="Share held out for test; ignored when data.test_file is given."
    )
    seed: int = Field(42, description="Seed of the stratified shuffle.")

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
        description="Adjacent-key typos, character deletions and swaps.",
    )
    word_dropout: NoiseConfig = Field(
        NoiseConfig(probability=0.3, rate=0.1), description="Drop words at random (never all of them)."
    )
    word_swap: NoiseConfig = Field(
        NoiseConfig(probability=0.3, rate=0.1), description="Swap neighbouring words."
    )
    balance: BalanceConfig = Field(BalanceConfig(), description="Class balancing of the train split.")


class RegistryConfig(Section):
    enabled: bool = Field(True, description="Record every stage's outputs in the registry after it succeeds.")
    url: str = Field(
        "sqlite:///.tuneforge/registry.db",
        description="SQLAlchemy URL of the registry database (a SQLite file, or postgresql+psycopg://...).",
    )
    artifacts: str = Field(
        ".tuneforge/artifacts", description="Root of the content-addressed blob store: folder or fsspec URL."
    )
    cache: str = Field(
        ".tuneforge/cache", description="Local folder where resolved model versions are placed, verified."
    )
    busy_timeout_s: float = Field(
        60.0, gt=0, description="How long a SQLite writer waits for another writer's lock before failing."
    )
    connect_timeout_s: int = Field(
        5, ge=1, description="Seconds to wait for a database server before reporting it unreachable."
    )


class PromotionConfig(Section):
    min_metrics: dict[str, float] = Field(
        {"metrics.f1_macro": 0.5}, description="Least value of each version metric (role.metric) to promote."
    )
    primary_metric: str = Field(
        "metrics.f1_macro", min_length=1, description="Metric a candidate must improve on (higher is better)."
    )
    min_improvement: float = Field(
        0.0,
        description="Least gain in primary_metric over the alias's holder, measured on the same test split.",
    )
    test_split_role: SafeName = Field(
        "test_split", description="Role of the test split artifact whose hash both versions must share."
    )
    parity_flag: str | None = Field(
        "onnx_int8.parity_passed",
        description="Metric that must be true: the int8 ONNX model matches the model; null turns it off.",
    )
    validation_flag: str | None = Field(
        "validated.success",
        description="Metric that must be true: the data passed validation; null turns it off.",
    )
    drift_metric: str | None = Field(
        "test_split.drift_share.test_vs_train", description="Drift share metric to bound; null turns it off."
    )
    max_drift_share: Probability = Field(0.5, description="Largest drift_metric value a promotion accepts.")


class Params(Section):
    data: DataConfig = Field(DataConfig(), description="Where the labelled data is and which columns to read.")
    validate_: ValidateConfig = Field(
        ValidateConfig(), alias="validate", description="Cleaning and Great Expectations validation."
    )
    split: SplitConfig = Field(SplitConfig(), description="Stratified train/val/test split.")
    augment: AugmentConfig = Field(AugmentConfig(), description="Augmentation of the train split only.")
    registry: RegistryConfig = Field(RegistryConfig(), description="Where artifacts and records are kept.")
    promotion: PromotionConfig = Field(PromotionConfig(), description="Gates a version passes for an alias.")

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; every problem is reported by its dotted path."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors()]
        raise ConfigError(f"{source}: {lines[0]}", detail="\n".join(lines[1:])) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    return parse_params(raw, source=str(path))


def _describe(error: dict) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(error["loc"][:-1])
        return f"{path}: unknown key (expected one of: {', '.join(allowed)})"
    if kind == "missing":
        return f"{path}: required"
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    # Section-level checks (a whole mapping as input) already say what they saw.
    if "got" not in message and not isinstance(error["input"], dict):
        message = f"{message}, got {error['input']!r}"
    return f"{path}: {message}"


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Params
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


def describe_schema() -> dict[str, dict[str, tuple[Any, str]]]:
    """Every section's fields with default and description (used by docs and `tuneforge params`)."""
    sections = {}
    for name, field in Params.model_fields.items():
        model = field.annotation
        sections[field.alias or name] = {
            key: (sub.default, sub.description or "") for key, sub in model.model_fields.items()
        }
    return sections
