"""Promotion gates: what a candidate version must show before an alias moves to it.

Pure functions over VersionInfo, so the policy is testable without a database; registry.api.promote
verifies blobs, records the decision with this evidence, and moves the alias only when every gate passed.
"""

import math
from dataclasses import asdict, dataclass
from typing import Any

from registry.config import PromotionConfig
from registry.versions import VersionInfo

TOLERANCE = 1e-12


@dataclass(frozen=True)
class Gate:
    gate: str
    required: str
    observed: str
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _true(value: Any) -> bool:
    return value is True or (_number(value) == 1.0) or (isinstance(value, str) and value.lower() == "true")


def evaluate_gates(
    candidate: VersionInfo,
    holder: VersionInfo | None,
    alias: str,
    policy: PromotionConfig,
    split_hashes: tuple[str | None, str | None] = (None, None),
) -> list[Gate]:
    """The gate table. `split_hashes` are (candidate, holder) test split hashes (see api.test_split_sha256)."""
    gates = []
    for metric, minimum in sorted(policy.min_metrics.items()):
        value = _number(candidate.metrics.get(metric))
        gates.append(Gate(
            f"min {metric}", f">= {minimum:g}", _show(candidate.metrics.get(metric)),
            value is not None and value >= minimum - TOLERANCE,
        ))
    for label, metric in (("int8 parity", policy.parity_flag), ("data validation", policy.validation_flag)):
        if metric:
            value = candidate.metrics.get(metric)
            gates.append(Gate(f"{label} ({metric})", "true", _show(value), _true(value)))
    if policy.drift_metric:
        value = _number(candidate.metrics.get(policy.drift_metric))
        gates.append(Gate(
            f"drift share ({policy.drift_metric})", f"<= {policy.max_drift_share:g}",
            _show(candidate.metrics.get(policy.drift_metric)),
            value is not None and value <= policy.max_drift_share + TOLERANCE,
        ))
    gates.extend(_holder_gates(candidate, holder, alias, policy, split_hashes))
    return gates


def _holder_gates(candidate, holder, alias: str, policy: PromotionConfig, split_hashes):
    primary, delta = policy.primary_metric, policy.min_improvement
    if holder is None:
        yield Gate(f"beats {alias} holder on {primary}", f"+{delta:g}", f"no current {alias} holder", True)
        return
    role = policy.test_split_role
    mine, theirs = split_hashes
    same_split = mine is not None and theirs is not None and mine == theirs
    yield Gate(
        f"same test split as {holder} ({role})",
        f"sha256 {theirs[:12]}" if theirs else f"{holder} records no {role}",
        f"sha256 {mine[:12]}" if mine else "missing",
        same_split,
    )
    ours, best = _number(candidate.metrics.get(primary)), _number(holder.metrics.get(primary))
    required = f">= {best + delta:.4g} ({holder}: {best:.4g} + {delta:g})" if best is not None else f"{holder}: missing"
    if not same_split:
        observed = f"{_show(candidate.metrics.get(primary))} (not comparable: different test split)"
        yield Gate(f"beats {alias} holder on {primary}", required, observed, False)
        return
    passed = ours is not None and best is not None and ours - best >= delta - TOLERANCE
    yield Gate(f"beats {alias} holder on {primary}", required, _show(candidate.metrics.get(primary)), passed)


def evidence(
    candidate: VersionInfo,
    holder: VersionInfo | None,
    gates: list[Gate],
    policy: PromotionConfig,
    split_hashes: tuple[str | None, str | None] = (None, None),
) -> dict:
    """What the decision was based on, stored with the gate_decided event."""
    return {
        "candidate": str(candidate),
        "holder": str(holder) if holder else None,
        "passed": all(gate.passed for gate in gates),
        "gates": [gate.to_json() for gate in gates],
        "policy": policy.model_dump(),
        "candidate_metrics": candidate.metrics,
        "holder_metrics": holder.metrics if holder else None,
        "test_split_sha256": {"candidate": split_hashes[0], "holder": split_hashes[1]},
    }
