"""What one app did on one window: per-endpoint outputs and failures (a plain value)."""

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from mm_dagster.core.histograms import FeatureHistogram
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.segments import ENDPOINT_WIDE, segment_label
from mm_dagster.core.windows import Window

Outputs = tuple[list[ModelMonitoringApplicationResult], list[ModelMonitoringApplicationMetric]]
TOP_FEATURES = 5


def _rank(row: tuple[object, ...]) -> tuple[object, ...]:
    """A flagged row's place: status, value (both negated: worst first), endpoint name,
    segment, result name."""
    return row[:5]


@dataclass(frozen=True)
class FlaggedResult:
    """One potential or detected result of a window: whose, which, how bad, and (for drift
    results that name them in `extra_data["drifting_features"]`) the worst features."""

    endpoint_id: str
    endpoint: str
    segment: str  # segment key, "" endpoint-wide
    result: str
    status: ResultStatusApp
    value: float
    features: tuple[str, ...]

    @property
    def label(self) -> str:
        """The endpoint's name, and its segment's (`fraud-model [country=DE]`)."""
        return f"{self.endpoint} [{segment_label(self.segment)}]" if self.segment else self.endpoint


@dataclass
class AppWindowReport:
    """What one app did on one window: per-endpoint outputs and failures (endpoint-wide), and
    per endpoint and segment key those of its segments (see `core.segments`)."""

    app: str
    window: Window
    outputs: dict[str, Outputs] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    endpoint_names: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    segment_outputs: dict[str, dict[str, Outputs]] = field(default_factory=dict)
    segment_failures: dict[str, dict[str, str]] = field(default_factory=dict)
    # endpoint id -> segment key ("" endpoint-wide) -> what the app stored for the window page
    histograms: dict[str, dict[str, Sequence[FeatureHistogram]]] = field(default_factory=dict)

    @property
    def endpoints_analysed(self) -> int:
        return len(self.outputs)

    @classmethod
    def merged(cls, parts: Sequence["AppWindowReport"]) -> "AppWindowReport":
        """One report of an app's window from the reports of its parts (disjoint endpoints)."""
        whole = cls(app=parts[0].app, window=parts[0].window)
        for part in parts:
            whole.outputs.update(part.outputs)
            whole.failures.update(part.failures)
            whole.endpoint_names.update(part.endpoint_names)
            whole.artifacts.update(part.artifacts)
            whole.segment_outputs.update(part.segment_outputs)
            whole.segment_failures.update(part.segment_failures)
            whole.histograms.update(part.histograms)
        return whole

    def keyed_outputs(self) -> Iterator[tuple[str, str, Outputs]]:
        """(endpoint id, segment key, outputs): endpoint-wide ("" key) first, then segments."""
        for endpoint_id, outputs in self.outputs.items():
            yield endpoint_id, ENDPOINT_WIDE, outputs
        for endpoint_id, by_segment in self.segment_outputs.items():
            for key, outputs in by_segment.items():
                yield endpoint_id, key, outputs

    def keyed_failures(self) -> Iterator[tuple[str, str, str]]:
        """(endpoint id, segment key, error), endpoint-wide first."""
        for endpoint_id, error in self.failures.items():
            yield endpoint_id, ENDPOINT_WIDE, error
        for endpoint_id, by_segment in self.segment_failures.items():
            for key, error in by_segment.items():
                yield endpoint_id, key, error

    @property
    def segments_analysed(self) -> int:
        return sum(len(by_segment) for by_segment in self.segment_outputs.values())

    def segment_statuses(self) -> dict[tuple[str, str], ResultStatusApp]:
        """Worst result status per (endpoint, segment key) (segments without results left out)."""
        return {
            (endpoint_id, key): max(r.status for r in results)
            for endpoint_id, by_segment in self.segment_outputs.items()
            for key, (results, _) in by_segment.items()
            if results
        }

    def count_segments(self, status: ResultStatusApp) -> int:
        return sum(1 for s in self.segment_statuses().values() if s == status)

    def statuses(self) -> dict[str, ResultStatusApp]:
        """Worst result status per endpoint (endpoints without results are left out)."""
        worst: dict[str, ResultStatusApp] = {}
        for endpoint_id, (results, _) in self.outputs.items():
            if results:
                worst[endpoint_id] = max(r.status for r in results)
        return worst

    def count(self, status: ResultStatusApp) -> int:
        return self.endpoint_counts()[status]

    def endpoint_counts(self) -> dict[ResultStatusApp, int]:
        """Endpoints per worst result status (endpoints without results are left out)."""
        counts = dict.fromkeys(ResultStatusApp, 0)
        for status in self.statuses().values():
            counts[ResultStatusApp(status)] += 1
        return counts

    def worst_value(self) -> float | None:
        values = [r.value for results, _ in self.outputs.values() for r in results]
        return max(values) if values else None

    def flagged(self, limit: int | None = None) -> list[FlaggedResult]:
        """Potential and detected results (endpoint-wide and per segment), worst first: the
        `limit` worst picked without ordering the rest (a drift storm flags every endpoint)."""
        rows = [
            (
                -int(r.status),
                -r.value,
                self.endpoint_names.get(endpoint_id, endpoint_id),
                key,
                r.name,
                endpoint_id,
                r,
            )
            for endpoint_id, key, (results, _) in self.keyed_outputs()
            for r in results
            if r.status >= ResultStatusApp.potential_detection
        ]
        ranked = sorted(rows, key=_rank) if limit is None else heapq.nsmallest(limit, rows, key=_rank)
        return [
            FlaggedResult(
                endpoint_id,
                endpoint,
                key,
                name,
                ResultStatusApp(r.status),
                r.value,
                tuple(str(f) for f in (r.extra_data.get("drifting_features") or [])[:TOP_FEATURES]),
            )
            for _, _, endpoint, key, name, endpoint_id, r in ranked
        ]

    def flagged_count(self) -> int:
        """How many results `flagged` lists."""
        return sum(
            r.status >= ResultStatusApp.potential_detection
            for _, _, (results, _) in self.keyed_outputs()
            for r in results
        )

    def of_result(self, name: str) -> "AppWindowReport":
        """This report with only the results named `name` (metrics, failures and names kept)."""

        def only(outputs: Outputs) -> Outputs:
            return [r for r in outputs[0] if r.name == name], outputs[1]

        return replace(
            self,
            outputs={e: only(o) for e, o in self.outputs.items()},
            segment_outputs={
                e: {k: only(o) for k, o in by_segment.items()}
                for e, by_segment in self.segment_outputs.items()
            },
        )

    def counts_by_status(self) -> dict[ResultStatusApp, int]:
        """Results (endpoint-wide and per segment) per status."""
        counts = dict.fromkeys(ResultStatusApp, 0)
        for _, _, (results, _) in self.keyed_outputs():
            for r in results:
                counts[ResultStatusApp(r.status)] += 1
        return counts

    def worst_endpoints(self, limit: int = 10) -> list[tuple[str, str, int, float]]:
        """(endpoint name, result name, status, value), worst first; a segment's rows name it
        after the endpoint (`fraud-model [country=DE]`)."""
        rows = [
            (self.endpoint_names.get(e, e), r.name, int(r.status), r.value)
            for e, (results, _) in self.outputs.items()
            for r in results
            if r.status >= ResultStatusApp.potential_detection
        ]
        rows += [
            (f"{self.endpoint_names.get(e, e)} [{segment_label(key)}]", r.name, int(r.status), r.value)
            for e, by_segment in self.segment_outputs.items()
            for key, (results, _) in by_segment.items()
            for r in results
            if r.status >= ResultStatusApp.potential_detection
        ]
        return sorted(rows, key=lambda row: (-row[2], -row[3]))[:limit]
