"""What a model predicts, declared on its endpoint: the task, which output is the prediction,
which outputs are scores, and which column of the labels (ground truth) it is judged against."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mm_dagster.core.errors import MonitoringError


class TaskKind(StrEnum):
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


@dataclass(frozen=True)
class ModelTask:
    """`prediction` is the output column with the predicted class (or value, for regression);
    `target` the ground-truth column, in the labels recorded later and in a labelled reference;
    `scores` maps each class to the output column holding its score/probability (binary: one
    entry, the positive class; multiclass: every class; regression: none)."""

    kind: TaskKind
    prediction: str
    target: str
    scores: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TaskKind(self.kind))
        object.__setattr__(self, "scores", {str(k): str(v) for k, v in dict(self.scores).items()})
        if not self.prediction or not self.target:
            raise MonitoringError("a model task needs a prediction column and a target column")
        if self.kind is TaskKind.regression and self.scores:
            raise MonitoringError("a regression task has no class scores")
        if self.kind is TaskKind.binary and len(self.scores) > 1:
            raise MonitoringError(
                f"a binary task names one score column (the positive class), got {dict(self.scores)}"
            )
        if self.kind is TaskKind.multiclass and len(self.scores) == 1:
            raise MonitoringError("a multiclass task names a score column for every class")

    @property
    def classes(self) -> list[str]:
        return list(self.scores)

    @property
    def positive_class(self) -> str | None:
        return next(iter(self.scores), None) if self.kind is TaskKind.binary else None

    @property
    def output_columns(self) -> list[str]:
        return [self.prediction, *(c for c in self.scores.values() if c != self.prediction)]

    def check_outputs(self, endpoint: str, outputs: Iterable[str]) -> None:
        """Raise naming the endpoint and column when the task refers to an unknown output."""
        known = set(outputs)
        missing = [c for c in self.output_columns if c not in known]
        if missing:
            raise MonitoringError(
                f"endpoint {endpoint!r}: task columns {missing} are not among its outputs {sorted(known)}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "prediction": self.prediction,
            "target": self.target,
            "scores": dict(self.scores),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ModelTask":
        return cls(TaskKind(data["kind"]), data["prediction"], data["target"], data.get("scores") or {})
