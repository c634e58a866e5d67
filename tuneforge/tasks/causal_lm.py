"""Task `causal-lm`: supervised fine-tuning of a language model on chat or instruction JSONL.

It trains (and tunes) today; the other stages refuse it with one line until they learn it (issue: LM SFT as a
whole pipeline). The loss counts response tokens only; packing is optional (causal_lm_data.py).
"""

from pathlib import Path

from transformers import DataCollatorForSeq2Seq

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.spec import ModelConfig, TrainConfig
from tuneforge.tasks import causal_lm_data
from tuneforge.tasks.interface import Task, TrainingData
from tuneforge.training.modeling import causal_lm_from_base, check_max_seq_length
from tuneforge.training.telemetry import perplexity

NAME = "causal-lm"


def train_inputs(cfg: TrainConfig, augmented: Path, splits: Path, validated: Path) -> dict[str, Path]:
    files = cfg.causal_lm
    if not files.train_file or not files.val_file:
        raise ConfigError("train.causal_lm: model.task causal-lm needs train_file and val_file (JSONL)")
    return {"train": Path(files.train_file), "val": Path(files.val_file)}


def check_train_inputs(inputs: dict[str, Path]) -> None:
    for name in ("train", "val"):
        causal_lm_data.read_conversations(inputs[name])
    return None


def training_data(
    model_cfg: ModelConfig, cfg: TrainConfig, base_path: Path, tokenizer, labels: None,
    inputs: dict[str, str], pad_multiple: int | None,
) -> TrainingData:
    model, config = causal_lm_from_base(base_path, model_cfg.base, dropout=cfg.dropout)
    check_max_seq_length(model_cfg.max_seq_length, config, tokenizer, model_cfg.base)
    template = causal_lm_data.ensure_chat_template(tokenizer)
    tokenizer.padding_side = "right"  # positions count from the first token; labels mask the padding
    sets, skipped = {}, {}
    for name in ("train", "val"):
        conversations = causal_lm_data.read_conversations(Path(inputs[name]))
        examples, skipped[name] = causal_lm_data.encode_all(conversations, tokenizer, model_cfg.max_seq_length)
        if cfg.causal_lm.packing and name == "train":
            examples = causal_lm_data.pack(examples, model_cfg.max_seq_length)
        if not examples:
            raise StageError(
                f"{inputs[name]}: no conversation keeps a response token within "
                f"model.max_seq_length={model_cfg.max_seq_length}"
            )
        sets[name] = examples
    collator = DataCollatorForSeq2Seq(
        tokenizer, label_pad_token_id=causal_lm_data.IGNORE_INDEX, padding=True, pad_to_multiple_of=pad_multiple
    )
    return TrainingData(
        model=model, train=sets["train"], val=sets["val"], collator=collator,
        extra={"chat_template": template, "skipped_examples": skipped},
    )


def val_scores(entry: dict) -> dict:
    return {"val_perplexity": perplexity(entry["eval_loss"])}


TASK = Task(
    name=NAME, stages=frozenset({"train", "tune"}), metrics=("loss", "perplexity"), peft_task_type="CAUSAL_LM",
    trains_a_head=False, train_inputs=train_inputs, check_train_inputs=check_train_inputs,
    training_data=training_data, compute_metrics=None, val_scores=val_scores, loss_is_batch_mean=False,
)
