"""What the tune stage writes from the study: the trials table, the study summary, metrics and plots.

Everything is read back from the study's storage, so the outputs cover the trials of every worker and
every earlier run of the same study, not only this process's.
"""

import csv
import io
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuneforge.tuning.files import TRIAL_COLUMNS
from tuneforge.tuning.study import DEFAULT_ATTR


def default_trial(study: optuna.Study) -> FrozenTrial | None:
    """The default recipe's trial (include_defaults), its latest attempt that did not fail."""
    found = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(DEFAULT_ATTR)]
    finished = [t for t in found if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return (finished or found or [None])[-1]


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if complete else None


def trial_rows(study: optuna.Study, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        row = {
            "number": trial.number, "state": trial.state.name, "value": trial.value,
            "default_recipe": bool(trial.user_attrs.get(DEFAULT_ATTR)),
            "best_step": trial.user_attrs.get("best_step"), "pruned_step": trial.user_attrs.get("pruned_step"),
            "last_step": trial.last_step, "duration_s": round(duration, 3) if duration is not None else None,
        }
        # Params are recorded as the trial suggests them: a trial that failed early may miss some.
        row.update({name: trial.params.get(name) for name in names})
        rows.append(row)
    return rows


def trials_csv(rows: list[dict[str, Any]], names: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*TRIAL_COLUMNS, *names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summary(study: optuna.Study, metric: str) -> dict[str, Any]:
    """Headline numbers: best, default recipe, counts by state."""
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    best, default = best_trial(study), default_trial(study)
    default_value = default.value if default is not None and default.state == TrialState.COMPLETE else None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    improvement = None
    if best is not None and default_value is not None:
        improvement = (best.value - default_value) if maximize else (default_value - best.value)
    return {
        "study": study.study_name, "metric": metric, "direction": "maximize" if maximize else "minimize",
        "best_trial": best.number if best else None, "best_value": best.value if best else None,
        "best_params": dict(best.params) if best else {},
        "default_trial": default.number if default else None, "default_state": default.state.name if default else None,
        "default_value": default_value, "improvement_over_default": improvement,
        "n_trials": len(states), "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED), "n_failed": states.count(TrialState.FAIL),
        "n_running": states.count(TrialState.RUNNING), "n_waiting": states.count(TrialState.WAITING),
    }


def plots_html(study: optuna.Study, seed: int) -> str:
    """One self-contained HTML page: history, intermediate values, importances, parallel coordinates."""
    from optuna import visualization

    sections = [
        ("Optimisation history", lambda: visualization.plot_optimization_history(study)),
        ("Intermediate values (what the pruner saw)", lambda: visualization.plot_intermediate_values(study)),
        ("Parameter importances (fANOVA over complete trials)", lambda: _importances(study, seed)),
        ("Parallel coordinates", lambda: visualization.plot_parallel_coordinate(study)),
    ]
    parts, with_library = [], True
    for title, figure in sections:
        try:
            html = figure().to_html(full_html=False, include_plotlyjs=with_library)
            with_library = False  # plotly.js once, inline: the page works offline
        except (ValueError, RuntimeError) as exc:  # too few trials for this plot, or nothing varies
            html = f"<p>Not drawn: {_escape(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}</p>"
        parts.append(f"<h2>{title}</h2>\n{html}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Study {_escape(study.study_name)}</title></head>"
        f"<body><h1>Study {_escape(study.study_name)}</h1>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _importances(study: optuna.Study, seed: int):
    from optuna import visualization
    from optuna.importance import FanovaImportanceEvaluator

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        raise ValueError("parameter importances need at least 2 complete trials")
    return visualization.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
