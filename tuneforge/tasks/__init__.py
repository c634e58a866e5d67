"""One module per task behind one interface (interface.py); `model.task` selects it through `get_task`."""

from tuneforge.base.spec import ModelConfig
from tuneforge.tasks import causal_lm, multi_label, text_classification, token_classification
from tuneforge.tasks.interface import Task, require

TASKS: dict[str, Task] = {
    task.name: task
    for task in (text_classification.TASK, multi_label.TASK, token_classification.TASK, causal_lm.TASK)
}

__all__ = ["TASKS", "Task", "get_task", "require", "task_for"]


def get_task(name: str) -> Task:
    # model.task is a Literal in the spec, so an unknown name never gets here from params.yaml.
    return TASKS[name]


def task_for(model_cfg: ModelConfig | None, stage: str) -> Task:
    """The task of `model_cfg` (default: the spec's), refused in one line when it does not go through `stage`:
    a stage's run() asks here, so a caller that skips the stage's main() (a flow, a test) meets the same line."""
    task = get_task((model_cfg or ModelConfig()).task)
    require(task, stage)
    return task
