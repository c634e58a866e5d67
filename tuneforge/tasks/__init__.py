"""One module per task behind one interface (interface.py); `model.task` selects it through `get_task`."""

from tuneforge.tasks import causal_lm, text_classification
from tuneforge.tasks.interface import Task, require

TASKS: dict[str, Task] = {task.name: task for task in (text_classification.TASK, causal_lm.TASK)}

__all__ = ["TASKS", "Task", "get_task", "require"]


def get_task(name: str) -> Task:
    # model.task is a Literal in the spec, so an unknown name never gets here from params.yaml.
    return TASKS[name]
