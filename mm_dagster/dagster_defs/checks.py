"""The per-window checks (spec §5): their names, verdicts from a window report, and metadata."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetCheckSeverity, TableMetadataValue

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.core.links import UiLinks
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.dagster_defs.page_links import flagged_table, flagged_window_pages

CHECK_NAME = "within_thresholds"
# An endpoint's segments count as the endpoint: a detection in one segment fails the check.
CHECK_DESCRIPTION = (
    "Passes when every endpoint's results of the window are within the app's thresholds; fails "
    "with ERROR when any is detected, WARN when any is potential_detection."
)


@dataclass(frozen=True)
class WindowCheck:
    """One check of an app's results asset: all its results (`result` None), or one result name."""

    name: str
    result: str | None

    @property
    def description(self) -> str:
        if self.result is None:
            return CHECK_DESCRIPTION
        return (
            f"Passes when every endpoint's {self.result!r} result of the window is within the app's "
            "thresholds; fails with ERROR when any is detected, WARN when any is potential_detection."
        )

    def of(self, report: AppWindowReport) -> AppWindowReport:
        return report if self.result is None else report.of_result(self.result)


def window_checks(app: ModelMonitoringApplicationBase) -> list[WindowCheck]:
    """`<result>_within_thresholds` per result name the app declares (`RESULT_NAMES`), else one
    `within_thresholds` check over all its results."""
    if not app.RESULT_NAMES:
        return [WindowCheck(CHECK_NAME, None)]
    return [WindowCheck(f"{result}_{CHECK_NAME}", result) for result in app.RESULT_NAMES]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def plain_value(value: Any) -> Any:
    """A metadata value without Dagster's wrappers: tables as lists of row dicts."""
    if isinstance(value, TableMetadataValue):
        return [dict(record.data) for record in value.records]
    return getattr(value, "value", value)


@dataclass(frozen=True)
class CheckVerdict:
    """The check's outcome for one window of one app."""

    check: str  # "<asset key>:<check name>", as the UI shows it
    window_key: str
    passed: bool
    severity: AssetCheckSeverity
    metadata: dict[str, Any] = field(default_factory=dict)

    def plain_metadata(self) -> dict[str, Any]:
        """Metadata values without Dagster's wrappers (for notifications)."""
        return {k: plain_value(v) for k, v in self.metadata.items()}


def flagged_summary(report: AppWindowReport, limit: int = 5) -> str:
    """The flagged results, worst first, as one plain string the UI shows inline (it folds line
    breaks, so results are separated by "; ")."""
    lines = [
        f"{f.label}: {f.result} {f.status.name} ({f.value:.3g})"
        + (f" - drifting: {', '.join(f.features)}" if f.features else "")
        for f in report.flagged(limit)
    ]
    flagged = report.flagged_count()
    if flagged > limit:
        lines.append(f"... and {flagged - limit} more")
    return "; ".join(lines)


def check_verdict(check: str, report: AppWindowReport, links: UiLinks | None = None) -> CheckVerdict:
    """ERROR when any endpoint's result (or any of its segments') is detected, WARN when any is
    potential, else pass; segments are counted and named in the metadata when there are any, and
    each flagged endpoint's window page is linked (`links`, default `UiLinks.from_env()`)."""
    links = links or UiLinks.from_env()
    counts = report.endpoint_counts()
    detected = counts[ResultStatusApp.detected]
    potential = counts[ResultStatusApp.potential_detection]
    metadata: dict[str, Any] = {
        "window": report.window.key,
        "detected_endpoints": detected,
        "potential_endpoints": potential,
        "endpoints_analysed": report.endpoints_analysed,
    }
    if report.segment_outputs:
        detected_segments = report.count_segments(ResultStatusApp.detected)
        potential_segments = report.count_segments(ResultStatusApp.potential_detection)
        metadata |= {
            "detected_segments": detected_segments,
            "potential_segments": potential_segments,
            "segments_analysed": report.segments_analysed,
        }
        detected += detected_segments
        potential += potential_segments
    if detected or potential:
        metadata["flagged"] = flagged_summary(report)
        metadata["flagged_results"] = flagged_table(report)
    metadata.update(flagged_window_pages(report, links))
    if detected:
        return CheckVerdict(check, report.window.key, False, AssetCheckSeverity.ERROR, metadata)
    if potential:
        return CheckVerdict(check, report.window.key, False, AssetCheckSeverity.WARN, metadata)
    return CheckVerdict(check, report.window.key, True, AssetCheckSeverity.ERROR, metadata)
