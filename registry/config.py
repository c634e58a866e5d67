"""The registry's own sections of params.yaml, `registry:` and `promotion:`: the registry owns them, and reads
them without the rest of the spec (tuneforge/params composes them into the whole)."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.base.spec import Probability, SafeName, SecretUrl, Section, load_spec


class RegistryConfig(Section):
    enabled: bool = Field(True, description="Record every stage's outputs in the registry after it succeeds.")
    model_name: SafeName = Field(
        "classifier", description="Registered model that a pipeline run's versions belong to (and are compared with)."
    )
    url: SecretUrl = Field(
        "sqlite:///.tuneforge/registry.db",
        description="SQLAlchemy URL of the registry database (a SQLite file, or postgresql+psycopg://...).",
    )
    artifacts: SecretUrl = Field(
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
        {"metrics.macro_f1": 0.5}, description="Least value of each version metric (role.metric) to promote."
    )
    primary_metric: str = Field(
        "metrics.macro_f1", min_length=1, description="Metric a candidate must improve on (higher is better)."
    )
    min_improvement: float = Field(
        0.0,
        description="Least gain in primary_metric over the alias's holder, measured on the same test split.",
    )
    test_split_role: SafeName = Field(
        "test_split", description="Role of the test split artifact whose hash both versions must share."
    )
    test_split_file: str | None = Field(
        "test.parquet", description="File whose hash is compared when that artifact is a folder; null: whole."
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
    promote_to: SafeName | None = Field(
        None, description="Alias the register stage moves to each new version whose gates pass; null: none."
    )


class RegistrySections(BaseModel):
    """The two sections a registry command needs; the other sections of the file are not its business."""

    registry: RegistryConfig = Field(RegistryConfig())
    promotion: PromotionConfig = Field(PromotionConfig())

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


def load_registry_sections(path: Path | str) -> RegistrySections:
    return load_spec(RegistrySections, path)
