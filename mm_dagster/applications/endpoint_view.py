"""The endpoint an app sees: the flat `ModelEndpoint` plus MLRun's nested shape
(`.metadata.uid`, `.metadata.name`, `.spec.model_uri`, `.spec.feature_names`,
`.spec.label_names`, `.status.feature_stats`), with every container read-only."""

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from mm_dagster.applications.readonly import freeze
from mm_dagster.core import json_codec
from mm_dagster.core.endpoint import FeatureStats, ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.reference_codec import ReferencePlanError, plan_bytes, plan_from_bytes
from mm_dagster.stats.reference_plan import PreparedReference
from mm_dagster.storage.endpoint_registry import EndpointRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndpointMetadata:
    uid: str
    name: str
    project: str
    created: datetime | None


@dataclass(frozen=True)
class EndpointSpec:
    model_uri: str
    model_name: str
    model_tag: str
    feature_names: list[str]
    label_names: list[str]


@dataclass(frozen=True)
class EndpointStatus:
    feature_stats: FeatureStats
    first_request: datetime | None
    last_request: datetime | None
    error_count: int


@dataclass(frozen=True)
class MonitoredEndpoint(ModelEndpoint):
    """A `ModelEndpoint` (flat attributes unchanged) with MLRun's nested attributes."""

    project: str = "default"

    @property
    def metadata(self) -> EndpointMetadata:
        return EndpointMetadata(self.id, self.name, self.project, self.created_at)

    @property
    def spec(self) -> EndpointSpec:
        return EndpointSpec(
            self.model_uri, self.model_name, self.model_version, self.feature_names, self.label_names
        )

    @property
    def status(self) -> EndpointStatus:
        return EndpointStatus(self.feature_stats, self.first_request, self.last_request, self.error_count)


def monitored_endpoint(endpoint: ModelEndpoint, project: str = "default") -> MonitoredEndpoint:
    """The read-only view of `endpoint` apps receive (built once per endpoint and window, shared)."""
    if isinstance(endpoint, MonitoredEndpoint) and endpoint.project == project:
        return endpoint
    values: dict[str, Any] = {f.name: freeze(getattr(endpoint, f.name)) for f in fields(ModelEndpoint)}
    return MonitoredEndpoint(**values, project=project)


class WindowStats:
    """The reference stats of a window's endpoints, read (as JSON text, in one query for all)
    when the first app asks for one endpoint's, and parsed per endpoint by its view."""

    def __init__(self, registry: EndpointRegistry, versions: Mapping[str, int]) -> None:
        self._registry = registry
        self._versions = dict(versions)
        self._texts: dict[str, str] | None = None
        self._lock = threading.Lock()

    def text(self, endpoint_id: str) -> str:
        with self._lock:
            if self._texts is None:
                self._texts = self._registry.stats_texts(self._versions)
        text = self._texts.get(endpoint_id)
        if text is None:
            raise MonitoringError(
                f"endpoint {endpoint_id}: no reference stats stored for reference version "
                f"{self._versions.get(endpoint_id)}"
            )
        return text


class EndpointView:
    """An endpoint as loaded (`loaded`: maybe without its reference stats), with its stats
    (`endpoint`), its read-only view (`view`) and its stored drift plan (`plan`), each made on
    first use and shared by every app's context of the window: built-in apps that read the plan
    never read nor parse the stats (~46 KB of JSON an endpoint at 20 features), nor freeze them
    for the view.

    `stats`: where the stats are, when `endpoint` was loaded without them; `plan`: the stored
    plan of its reference (`stats.reference_codec`), bytes or decoded."""

    def __init__(
        self,
        endpoint: ModelEndpoint,
        project: str = "default",
        *,
        stats: WindowStats | None = None,
        plan: bytes | PreparedReference | None = None,
    ) -> None:
        self.loaded = endpoint
        self.project = project
        self._stats = stats
        self._plan = plan

    @cached_property
    def endpoint(self) -> ModelEndpoint:
        if self._stats is None:
            return self.loaded
        return replace(self.loaded, feature_stats=json_codec.loads(self._stats.text(self.loaded.id)))

    @cached_property
    def view(self) -> MonitoredEndpoint:
        return monitored_endpoint(self.endpoint, self.project)

    @cached_property
    def plan(self) -> PreparedReference | None:
        """The reference's drift plan, None without one (or one this version cannot read)."""
        if not isinstance(self._plan, bytes):
            return self._plan
        try:
            return plan_from_bytes(self._plan)
        except ReferencePlanError as exc:
            log.warning(
                "endpoint %r (%s): stored drift plan of reference version %d not read (%s); its apps "
                "prepare the reference stats",
                self.loaded.name,
                self.loaded.id,
                self.loaded.reference_version,
                exc,
            )
            return None


def decode_plans(views: Iterable[EndpointView]) -> None:
    """Decode each view's drift plan now (a cached property: its apps find it decoded)."""
    for view in views:
        _ = view.plan


def window_views(
    registry: EndpointRegistry, ids: Sequence[str], project: str = "default"
) -> dict[str, EndpointView]:
    """The views of the endpoints among `ids` for a window's run, by id. A reference stored
    without a drift plan (before plans, or by another codec version) gets one now, stored for the
    next windows; one whose plan cannot be made runs without (its apps prepare the stats)."""
    if not ids:
        return {}
    stored = registry.for_window(ids)
    stats = WindowStats(registry, {s.endpoint.id: s.endpoint.reference_version for s in stored})
    views: dict[str, EndpointView] = {}
    made: dict[tuple[str, int], bytes] = {}
    for s in stored:
        endpoint = s.endpoint
        view = EndpointView(endpoint, project, stats=stats, plan=s.plan)
        if s.plan is None:
            try:
                plan = plan_bytes(view.endpoint.feature_stats)
            except Exception:
                log.warning(
                    "endpoint %r (%s), reference version %d: no drift plan could be made; its "
                    "apps prepare the reference stats each window",
                    endpoint.name,
                    endpoint.id,
                    endpoint.reference_version,
                    exc_info=True,
                )
            else:
                made[(endpoint.id, endpoint.reference_version)] = plan
                view = EndpointView(view.endpoint, project, plan=plan)
        views[endpoint.id] = view
    try:
        registry.store_plans(made)
    except Exception:
        log.warning("the drift plans of %d references could not be stored", len(made), exc_info=True)
    return views
