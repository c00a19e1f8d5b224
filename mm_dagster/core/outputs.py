"""What `do_tracking` returns: results and metrics (spec §2), validated where they are made."""

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from mm_dagster.core import json_codec
from mm_dagster.core.errors import AppOutputError
from mm_dagster.core.names import VALUE_NAME
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp

MAX_EXTRA_DATA_BYTES = 64 * 1024
EnumT = TypeVar("EnumT", bound=Enum)


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not VALUE_NAME.fullmatch(name):
        raise AppOutputError(f"{what} name {name!r} must match {VALUE_NAME.pattern}")
    return name


def _check_value(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            if isinstance(value, np.integer | np.floating):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise AppOutputError(
                f"{name!r}: value must be a finite float, got {type(value).__name__} {value!r}"
            ) from None
    value = float(value)
    if not math.isfinite(value):
        raise AppOutputError(f"{name!r}: value must be finite, got {value!r}")
    return value


def _coerce_enum(enum: type[EnumT], value: object, name: str, field_name: str) -> EnumT:
    if isinstance(value, enum):
        return value
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return enum(value)
        if isinstance(value, str):
            return enum[value]
    except (ValueError, KeyError):
        pass
    choices = ", ".join(f"{m.name}={m.value}" for m in enum)
    raise AppOutputError(f"{name!r}: unknown {field_name} {value!r} (one of {choices})")


def _checked_json(extra_data: object, name: str) -> bytes:
    """`extra_data` encoded, or AppOutputError naming what is wrong with it."""
    if not isinstance(extra_data, dict):
        raise AppOutputError(f"{name!r}: extra_data must be a dict, got {type(extra_data).__name__}")
    try:
        encoded = json_codec.dumps_bytes(extra_data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AppOutputError(f"{name!r}: extra_data is not JSON-serialisable: {exc}") from exc
    if len(encoded) > MAX_EXTRA_DATA_BYTES:
        raise AppOutputError(
            f"{name!r}: extra_data is {len(encoded)} bytes encoded, "
            f"over the {MAX_EXTRA_DATA_BYTES}-byte limit"
        )
    return encoded


def encode_extra_data(extra_data: object, name: str) -> dict[str, Any]:
    """`extra_data` as it reads back once stored (tuples as lists, numpy numbers as Python's),
    or AppOutputError."""
    decoded: dict[str, Any] = json_codec.loads(_checked_json(extra_data, name))
    return decoded


@dataclass
class ModelMonitoringApplicationResult:
    name: str
    value: float
    kind: ResultKindApp
    status: ResultStatusApp
    extra_data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_fields()
        self.extra_data = encode_extra_data(self.extra_data, self.name)

    def _check_fields(self) -> None:
        """Name, value, kind and status checked and made plain (not extra_data)."""
        self.name = _check_name(self.name, "result")
        self.value = _check_value(self.value, self.name)
        self.kind = _coerce_enum(ResultKindApp, self.kind, self.name, "kind")
        self.status = _coerce_enum(ResultStatusApp, self.status, self.name, "status")

    @classmethod
    def of_json_values(
        cls,
        name: str,
        value: float,
        kind: ResultKindApp,
        status: ResultStatusApp,
        extra_data: dict[str, Any],
    ) -> "ModelMonitoringApplicationResult":
        """A result whose `extra_data` holds JSON's own values only (str keys; dicts, lists, str,
        int, float, bool and None), as a built-in app makes it, and is not changed afterwards:
        checked as any result is, but its extra_data is encoded once, kept as it is (it reads
        back equal) and the encoding is what the results store writes (`extra_data_json`)."""
        result = cls.stored(name, value, kind, status, extra_data)
        result._check_fields()
        result.__dict__["_json"] = _checked_json(extra_data, result.name).decode()
        return result

    def extra_data_json(self) -> str:
        """`extra_data` encoded as the results store writes it (the encoding kept by
        `of_json_values`, else made now)."""
        encoded: str | None = self.__dict__.get("_json")
        return json_codec.dumps(self.extra_data) if encoded is None else encoded

    @classmethod
    def stored(
        cls,
        name: str,
        value: float,
        kind: ResultKindApp,
        status: ResultStatusApp,
        extra_data: dict[str, Any],
    ) -> "ModelMonitoringApplicationResult":
        """A result read back from the results store: checked when it was stored, not again."""
        result = object.__new__(cls)
        result.name, result.value, result.kind, result.status = name, value, kind, status
        result.extra_data = extra_data
        return result


@dataclass
class ModelMonitoringApplicationMetric:
    name: str
    value: float

    def __post_init__(self) -> None:
        self.name = _check_name(self.name, "metric")
        self.value = _check_value(self.value, self.name)


AppOutput = ModelMonitoringApplicationResult | ModelMonitoringApplicationMetric


def normalise_outputs(
    returned: object,
) -> tuple[list[ModelMonitoringApplicationResult], list[ModelMonitoringApplicationMetric]]:
    """Split what `do_tracking` returned into results and metrics, or raise AppOutputError."""
    if returned is None:
        items: list[object] = []
    elif isinstance(returned, AppOutput):
        items = [returned]
    elif isinstance(returned, dict):
        items = [ModelMonitoringApplicationMetric(name=k, value=v) for k, v in returned.items()]
    elif isinstance(returned, list | tuple):
        items = list(returned)
    else:
        raise AppOutputError(
            f"do_tracking returned {type(returned).__name__}; expected a result, a metric, "
            "a list of them, a dict[str, float] or None"
        )
    results: list[ModelMonitoringApplicationResult] = []
    metrics: list[ModelMonitoringApplicationMetric] = []
    for i, item in enumerate(items):
        if isinstance(item, ModelMonitoringApplicationResult):
            results.append(item)
        elif isinstance(item, ModelMonitoringApplicationMetric):
            metrics.append(item)
        else:
            raise AppOutputError(
                f"do_tracking returned item {i} of type {type(item).__name__}; expected "
                "ModelMonitoringApplicationResult or ModelMonitoringApplicationMetric"
            )
    for what, group in (("result", results), ("metric", metrics)):
        names = [o.name for o in group]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise AppOutputError(f"do_tracking returned duplicate {what} names {dupes}")
    return results, metrics
