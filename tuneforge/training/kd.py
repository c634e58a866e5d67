"""Knowledge distillation with the Hugging Face Trainer: only the loss hook is replaced.

The loss is the task's (Task.kd_loss); for single-label classification it is `distillation_loss`:
loss = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The T^2 factor keeps the soft term's gradients on the scale of the hard term's when T changes
(Hinton et al., 2015). The teacher's logits are computed once, before training, and travel with each
example as `teacher_logits`: the teacher is never run again, in any epoch.

Why a Trainer subclass and not `compute_loss_func`: the Trainer hands `compute_loss_func` only the model
outputs and `labels`, and passes every other batch key to the model's forward, so the teacher's logits
cannot reach it without being smuggled inside `labels`. Overriding `compute_loss` alone keeps the rest of
the Trainer (checkpoints, evaluation, early stopping, mixed precision, resuming) untouched.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import Trainer

TEACHER_LOGITS = "teacher_logits"
LABELS = "labels"


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *, alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Batch mean of alpha * CE + (1 - alpha) * T^2 * KL on temperature-scaled logits."""
    student_logits = student_logits.float()
    hard = F.cross_entropy(student_logits, labels)
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits.float() / temperature, dim=-1),
        reduction="batchmean", log_target=True,
    )
    return alpha * hard + (1 - alpha) * temperature**2 * soft


class DistillationTrainer(Trainer):
    """The Trainer with a distillation loss (the task's: `kd_loss(student logits, teacher logits, labels, *,
    alpha, temperature)`, a batch mean); batches carry `teacher_logits` beside `labels`."""

    # A per-batch mean: the Trainer divides it by the gradient accumulation steps itself.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, kd_loss: Callable[..., torch.Tensor], alpha: float, temperature: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.kd_loss, self.alpha, self.temperature = kd_loss, alpha, temperature
        # The forward of a classification head takes **kwargs; that must not make the Trainer think the
        # loss is normalised over the accumulated batch already.
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Copy, never pop: prediction_step reads the labels from the same dict after this returns.
        features = {key: value for key, value in inputs.items() if key not in (TEACHER_LOGITS, LABELS)}
        outputs = model(**features)
        loss = self.kd_loss(
            outputs.logits, inputs[TEACHER_LOGITS], inputs[LABELS], alpha=self.alpha, temperature=self.temperature
        )
        return (loss, outputs) if return_outputs else loss


def distillation_collator(tokenizer, pad_id: int | None = None):
    """Pads the token inputs like DataCollatorWithPadding and stacks the labels and the teacher's logits.
    `pad_id` is the student's padding id when its vocabulary was pruned (ids are remapped)."""

    def collate(examples: list[dict]) -> dict:
        token_keys = [key for key in examples[0] if key not in (TEACHER_LOGITS, LABELS)]
        batch = tokenizer.pad([{key: e[key] for key in token_keys} for e in examples], return_tensors="pt")
        if pad_id is not None:
            # Position ids of some models (RoBERTa) are derived from where the padding id is.
            batch["input_ids"][batch["attention_mask"] == 0] = pad_id
        # Class ids stay integers (int64), multi-hot rows floats: the task's loss reads them as its head does.
        batch[LABELS] = torch.tensor([e[LABELS] for e in examples])
        batch[TEACHER_LOGITS] = torch.tensor([e[TEACHER_LOGITS] for e in examples], dtype=torch.float32)
        return dict(batch)

    return collate
