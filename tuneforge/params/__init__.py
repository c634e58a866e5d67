"""The whole spec: params.yaml's sections composed into one model (the sections are in tuneforge/base/spec.py,
the registry's own in registry/config.py), read and validated by dotted path."""

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from registry.config import PromotionConfig, RegistryConfig
from tuneforge.base.spec import (
    CONLL_EXTENSIONS,
    TOKEN_CLASSIFICATION,
    AugmentConfig,
    DataConfig,
    DistillConfig,
    EvaluateConfig,
    ExportConfig,
    ModelConfig,
    MonitorConfig,
    RejectConfig,
    Section,
    ServeConfig,
    SplitConfig,
    TrainConfig,
    TuneConfig,
    ValidateConfig,
    describe_sections,
    load_spec,
    parse_spec,
)


class Params(Section):
    data: DataConfig = Field(DataConfig(), description="Where the labelled data is and which columns to read.")
    validate_: ValidateConfig = Field(
        ValidateConfig(), alias="validate", description="Cleaning and Great Expectations validation."
    )
    split: SplitConfig = Field(SplitConfig(), description="Stratified train/val/test split.")
    augment: AugmentConfig = Field(AugmentConfig(), description="Augmentation of the train split only.")
    model: ModelConfig = Field(ModelConfig(), description="The base model and the task it is tuned for.")
    train: TrainConfig = Field(TrainConfig(), description="Fine-tuning: method and hyperparameters.")
    tune: TuneConfig = Field(TuneConfig(), description="Hyperparameter search over train keys (Optuna).")
    evaluate: EvaluateConfig = Field(
        EvaluateConfig(), description="Test-split metrics, calibration, and the comparison with production."
    )
    reject: RejectConfig = Field(
        RejectConfig(), description="Out-of-scope rejection by a threshold on calibrated scores, fitted on val."
    )
    distill: DistillConfig = Field(DistillConfig(), description="Knowledge distillation into a smaller student.")
    export: ExportConfig = Field(
        ExportConfig(), description="ONNX export, int8 quantization, parity gates and the speed report."
    )
    registry: RegistryConfig = Field(RegistryConfig(), description="Where artifacts and records are kept.")
    promotion: PromotionConfig = Field(PromotionConfig(), description="Gates a version passes for an alias.")
    monitor: MonitorConfig = Field(
        MonitorConfig(), description="Drift monitor: new data vs production's training data; retrain on drift."
    )
    serve: ServeConfig = Field(
        ServeConfig(), description="HTTP model server (tuneforge serve-model): batching, limits, the traffic log."
    )

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, populate_by_name=True, allow_inf_nan=False
    )

    @model_validator(mode="after")
    def _out_of_scope_rows_need_rejection(self):
        # Out-of-scope rows are scored by the rejection and fit its threshold; without it they would only be
        # validated and split, for nothing.
        if self.data.oos_file is not None and not self.reject.enabled:
            raise ValueError("data.oos_file: out-of-scope rows are scored by the rejection; set reject.enabled: true")
        if self.reject.fit == "oos" and self.data.oos_file is None:
            raise ValueError("reject.fit: oos fits the threshold on out-of-scope val rows; set data.oos_file")
        if self.reject.fit == "oos" and self.split.oos_val_fraction == 0:
            raise ValueError("reject.fit: oos needs out-of-scope val rows, but split.oos_val_fraction is 0")
        return self

    @model_validator(mode="after")
    def _conll_files_are_token_data(self):
        # data.*_file accepts every task's extensions; a CoNLL file holds a tag per token, which only the token
        # task reads (any other reader would take its lines for rows of a table).
        if self.model.task == TOKEN_CLASSIFICATION:
            return self
        for key in ("train_file", "val_file", "test_file", "oos_file"):
            name = getattr(self.data, key)
            if name and Path(name).suffix.lower() in CONLL_EXTENSIONS:
                raise ValueError(
                    f"data.{key}: {name} is a CoNLL file (a token and its tag per line), data for model.task "
                    f"{TOKEN_CLASSIFICATION}, not {self.model.task}; set model.task: {TOKEN_CLASSIFICATION}"
                )
        return self


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    return parse_spec(Params, raw, source)


def load_params(path: Path | str = "params.yaml") -> Params:
    return load_spec(Params, path)


def describe_schema() -> dict[str, dict[str, tuple[Any, str]]]:
    return describe_sections(Params)
