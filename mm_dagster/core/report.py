"""What one app did on one window: per-endpoint outputs and failures (a plain value)."""

from dataclasses import dataclass, field

from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.windows import Window

Outputs = tuple[list[ModelMonitoringApplicationResult], list[ModelMonitoringApplicationMetric]]


@dataclass
class AppWindowReport:
    """What one app did on one window: per-endpoint outputs and failures."""

    app: str
    window: Window
    outputs: dict[str, Outputs] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    endpoint_names: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def endpoints_analysed(self) -> int:
        return len(self.outputs)

    def statuses(self) -> dict[str, ResultStatusApp]:
        """Worst result status per endpoint (endpoints without results are left out)."""
        worst: dict[str, ResultStatusApp] = {}
        for endpoint_id, (results, _) in self.outputs.items():
            if results:
                worst[endpoint_id] = max(r.status for r in results)
        return worst

    def count(self, status: ResultStatusApp) -> int:
        return sum(1 for s in self.statuses().values() if s == status)

    def worst_value(self) -> float | None:
        values = [r.value for results, _ in self.outputs.values() for r in results]
        return max(values) if values else None

    def worst_endpoints(self, limit: int = 10) -> list[tuple[str, str, int, float]]:
        """(endpoint name, result name, status, value), worst first."""
        rows = [
            (self.endpoint_names.get(e, e), r.name, int(r.status), r.value)
            for e, (results, _) in self.outputs.items()
            for r in results
            if r.status >= ResultStatusApp.potential_detection
        ]
        return sorted(rows, key=lambda row: (-row[2], -row[3]))[:limit]
