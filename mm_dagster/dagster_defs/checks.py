"""The per-window drift check (spec §5): its verdict from a window report, and its metadata."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetCheckSeverity, MetadataValue

from mm_dagster.core.links import UiLinks
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.dagster_defs.page_links import flagged_window_pages

CHECK_NAME = "no_detections"
# An endpoint's segments count as the endpoint: a detection in one segment fails the check.
CHECK_DESCRIPTION = (
    "Fails with ERROR when any endpoint's result is detected, WARN when any is potential_detection."
)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
        return {k: getattr(v, "value", v) for k, v in self.metadata.items()}


def check_verdict(check: str, report: AppWindowReport, links: UiLinks | None = None) -> CheckVerdict:
    """ERROR when any endpoint's result (or any of its segments') is detected, WARN when any is
    potential, else pass; segments are counted and named in the metadata when there are any, and
    each flagged endpoint's window page is linked (`links`, default `UiLinks.from_env()`)."""
    detected = report.count(ResultStatusApp.detected)
    potential = report.count(ResultStatusApp.potential_detection)
    worst = report.worst_endpoints()
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
    if worst:
        metadata["worst_endpoints"] = MetadataValue.md(
            markdown_table(
                ["endpoint", "result", "status", "value"],
                [(e, n, ResultStatusApp(s).name, f"{v:.4f}") for e, n, s, v in worst],
            )
        )
    metadata.update(flagged_window_pages(report, links or UiLinks.from_env()))
    if detected:
        return CheckVerdict(check, report.window.key, False, AssetCheckSeverity.ERROR, metadata)
    if potential:
        return CheckVerdict(check, report.window.key, False, AssetCheckSeverity.WARN, metadata)
    return CheckVerdict(check, report.window.key, True, AssetCheckSeverity.ERROR, metadata)
