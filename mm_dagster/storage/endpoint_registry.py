"""The endpoint registry (spec §1): deployed models and their reference statistics, in SQL."""

import builtins
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core import json_codec
from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.endpoint import (
    COLUMN_TYPES,
    DEFAULT_MAX_SEGMENTS,
    FLOAT,
    FeatureStats,
    ModelEndpoint,
    column_type_of,
)
from mm_dagster.core.errors import MonitoringError, UnknownEndpointError
from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.core.names import ENDPOINT_ID, check_column_name, check_endpoint_name
from mm_dagster.core.segments import SegmentReference, check_segment_columns
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.reference_codec import CODEC_VERSION, ReferencePlanError, plan_bytes, plan_from_bytes
from mm_dagster.stats.reference_plan import PreparedReference
from mm_dagster.stats.segment_stats import segment_references
from mm_dagster.storage import database as db
from mm_dagster.storage.dialect_sql import upsert

log = logging.getLogger(__name__)


def _row_to_endpoint(row: sa.Row[Any], feature_stats: FeatureStats | None = None) -> ModelEndpoint:
    """The endpoint of a row of `db.endpoints`; `feature_stats` instead of the row's when given
    (for rows selected without them)."""
    m = row._mapping
    return ModelEndpoint(
        id=m["id"],
        name=m["name"],
        feature_names=list(m["feature_names"]),
        label_names=list(m["label_names"]),
        column_types=dict(m["column_types"]),
        feature_stats=dict(m["feature_stats"]) if feature_stats is None else feature_stats,
        model_name=m["model_name"],
        model_version=m["model_version"],
        model_uri=m["model_uri"],
        reference_rows=m["reference_rows"],
        created_at=db.from_db_time(m["created_at"]),
        first_request=db.from_db_time(m["first_request"]),
        last_request=db.from_db_time(m["last_request"]),
        error_count=m["error_count"],
        event_count=m["event_count"],
        reference_version=m["reference_version"] or 1,
        segment_columns=list(m["segment_columns"] or []),
        max_segments=m["max_segments"] or DEFAULT_MAX_SEGMENTS,
        task=ModelTask.from_json(m["task"]) if m["task"] else None,
        reference_performance=m["reference_performance"],
    )


def _declares_task() -> sa.ColumnElement[bool]:
    """The condition on `db.endpoints` of an endpoint that declares a task (a task-less
    endpoint's task may be JSON null, not SQL NULL)."""
    task = db.endpoints.c.task
    return sa.and_(task.is_not(None), sa.cast(task, sa.Text) != "null")


@dataclass(frozen=True)
class StoredEndpoint:
    """An endpoint as stored, its `feature_stats` left empty (`EndpointRegistry.stats_texts`
    reads them), with its current reference's drift plan (`plan`, None when none is stored)."""

    endpoint: ModelEndpoint
    plan: bytes | None


def _check_column_names(names: Sequence[str], what: str, endpoint: str) -> list[str]:
    names = [check_column_name(n, endpoint, what.removesuffix("s")) for n in names]
    if len(set(names)) != len(names):
        raise MonitoringError(f"endpoint {endpoint!r}: duplicate {what}: {names}")
    return names


def _same_endpoint(
    existing: ModelEndpoint,
    features: list[str],
    labels: list[str],
    model: Mapping[str, str],
    stats: FeatureStats | None,
) -> ModelEndpoint:
    """`existing` if the arguments describe it; else an error saying what differs and what to do."""
    if existing.feature_names != features or existing.label_names != labels:
        raise MonitoringError(
            f"endpoint {existing.name!r} exists with feature_names={existing.feature_names}, "
            f"label_names={existing.label_names}; got feature_names={features}, label_names={labels}"
        )
    differ = [
        f"{key}={getattr(existing, key)!r} (got {value!r})"
        for key, value in model.items()
        if value and value != getattr(existing, key)
    ]
    if stats is not None and stats != existing.feature_stats:
        differ.append(f"a different reference (version {existing.reference_version} is stored)")
    if differ:
        raise MonitoringError(
            f"endpoint {existing.name!r} exists with " + "; ".join(differ) + ": to monitor a new model "
            "version or reference, call update_reference(endpoint, reference, model_version=...)"
        )
    return existing


def _same_segments(existing: ModelEndpoint, segment_columns: Sequence[str] | None, max_segments: int) -> None:
    """Get-or-create with segment columns other than the stored ones says how to change them."""
    if segment_columns is None:
        return
    if list(segment_columns) != existing.segment_columns or (
        segment_columns and max_segments != existing.max_segments
    ):
        raise MonitoringError(
            f"endpoint {existing.name!r} exists with segment_columns={existing.segment_columns}, "
            f"max_segments={existing.max_segments}; got segment_columns={list(segment_columns)}, "
            f"max_segments={max_segments}: to change them, call update_reference(endpoint, "
            "reference, segment_columns=..., max_segments=...)"
        )


def _check_task(endpoint: str, task: ModelTask, features: list[str], labels: list[str]) -> None:
    """The task names outputs of the endpoint (its label_names, as in MLRun) and a target column
    that is neither a feature nor an output."""
    task.check_outputs(endpoint, labels)
    check_column_name(task.target, endpoint, "target")
    if task.target in features or task.target in labels:
        raise MonitoringError(
            f"endpoint {endpoint!r}: target {task.target!r} is a feature or output; the target is the "
            "ground-truth column of the labels, recorded apart (record_labels)"
        )


def _check_task_types(endpoint: str, task: ModelTask, types: Mapping[str, str]) -> None:
    if task.kind is TaskKind.regression and types.get(task.prediction) != FLOAT:
        raise MonitoringError(
            f"endpoint {endpoint!r}: a regression task needs a numeric prediction column, "
            f"{task.prediction!r} is {types.get(task.prediction)!r}"
        )
    bad_scores = [c for c in task.scores.values() if types.get(c) != FLOAT]
    if bad_scores:
        raise MonitoringError(f"endpoint {endpoint!r}: score columns {bad_scores} are not numeric")


def _reference_performance(
    endpoint: str, task: ModelTask | None, reference: pd.DataFrame | None
) -> dict[str, Any] | None:
    """The labelled reference's performance (None without a task or a target column)."""
    if task is None or reference is None or task.target not in reference.columns:
        return None
    target = reference[task.target]
    if task.kind is TaskKind.regression and (
        pd.api.types.is_bool_dtype(target.dtype) or not pd.api.types.is_numeric_dtype(target.dtype)
    ):
        raise MonitoringError(
            f"endpoint {endpoint!r}: reference target {task.target!r} of a regression task must be "
            f"numeric, got dtype {target.dtype}"
        )
    from mm_dagster.stats.performance import reference_performance  # scikit-learn: on first use

    performance = reference_performance(task, reference)
    return None if performance is None else performance.to_json()


def _reference_stats(
    endpoint: str, reference: pd.DataFrame, features: list[str], labels: list[str]
) -> FeatureStats:
    missing = [c for c in features if c not in reference.columns]
    if missing:
        raise MonitoringError(f"endpoint {endpoint!r}: reference lacks features {missing}")
    return compute_feature_stats(reference, [c for c in features + labels if c in reference.columns])


def _segments_of(
    endpoint: str,
    reference: pd.DataFrame | None,
    columns: list[str],
    segment_columns: list[str],
    max_segments: int,
) -> list[SegmentReference]:
    """The reference's segments and their stats ([] when no segment columns are declared)."""
    if not segment_columns:
        return []
    if reference is None:
        raise MonitoringError(f"endpoint {endpoint!r}: segment columns need a reference frame")
    missing = [c for c in segment_columns if c not in reference.columns]
    if missing:
        raise MonitoringError(f"endpoint {endpoint!r}: reference lacks segment columns {missing}")
    return segment_references(reference, columns, segment_columns, max_segments)


def _keep_segments(
    conn: sa.Connection, endpoint_id: str, version: int, segments: list[SegmentReference]
) -> None:
    if segments:
        conn.execute(
            db.segment_references.insert(),
            [
                {
                    "endpoint_id": endpoint_id,
                    "version": version,
                    "segment": s.key,
                    "position": i,
                    "segment_values": s.segment,
                    "reference_rows": s.rows,
                    "feature_stats": s.feature_stats,
                }
                for i, s in enumerate(segments)
            ],
        )


class EndpointRegistry:
    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def create(
        self,
        name: str,
        *,
        reference: pd.DataFrame | None = None,
        feature_names: Sequence[str] | None = None,
        label_names: Sequence[str] = (),
        column_types: Mapping[str, str] | None = None,
        model_name: str = "",
        model_version: str = "",
        model_uri: str = "",
        segment_columns: Sequence[str] | None = None,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        task: ModelTask | None = None,
    ) -> ModelEndpoint:
        """Get-or-create by name. Conflicting feature or label names for an existing name fail.

        `segment_columns` (features or labels) split the traffic into segments: the reference's
        `max_segments` largest value combinations, the rest pooled as `__other__`; each gets
        its own reference stats, and apps also run per segment (see `core.segments`).
        `task` declares what the model predicts; a reference with its target column is labelled
        and its performance is stored with the reference."""
        check_endpoint_name(name)
        labels = _check_column_names(label_names, "label_names", name)
        if feature_names is None:
            if reference is None:
                raise MonitoringError(f"endpoint {name!r}: give feature_names or a reference frame")
            target = task.target if task is not None else None
            feature_names = [c for c in reference.columns if c not in labels and c != target]
        features = _check_column_names(feature_names, "feature_names", name)
        if set(features) & set(labels):
            raise MonitoringError(
                f"endpoint {name!r}: columns both feature and label: {set(features) & set(labels)}"
            )
        model = {"model_name": model_name, "model_version": model_version, "model_uri": model_uri}
        stats = None if reference is None else _reference_stats(name, reference, features, labels)
        if task is not None:
            _check_task(name, task, features, labels)
        existing = self.find(name)
        if existing is not None:
            _same_segments(existing, segment_columns, max_segments)
            return self._with_task(_same_endpoint(existing, features, labels, model, stats), task, reference)
        segmented = check_segment_columns(name, segment_columns or [], features + labels, max_segments)
        segments = _segments_of(name, reference, features + labels, segmented, max_segments)
        types = self._column_types(name, features + labels, reference, column_types)
        if task is not None:
            _check_task_types(name, task, types)
        performance = _reference_performance(name, task, reference)
        rows = 0 if reference is None else len(reference)
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "model_name": model_name,
            "model_version": model_version,
            "model_uri": model_uri,
            "feature_names": features,
            "label_names": labels,
            "column_types": types,
            "feature_stats": stats or {},
            "reference_rows": rows,
            "created_at": db.to_db_time(self.clock()),
            "error_count": 0,
            "event_count": 0,
            "reference_version": 1,
            "segment_columns": segmented,
            "max_segments": max_segments,
            "task": None if task is None else task.to_json(),
            "reference_performance": performance,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(db.endpoints.insert().values(**row))
                self._keep_reference(
                    conn, str(row["id"]), 1, model_version, model_uri, stats or {}, rows, performance
                )
                _keep_segments(conn, str(row["id"]), 1, segments)
        except sa.exc.IntegrityError:
            concurrent = self.find(name)  # another process created it between lookup and insert
            if concurrent is None:
                raise
            _same_segments(concurrent, segment_columns, max_segments)
            return self._with_task(
                _same_endpoint(concurrent, features, labels, model, stats), task, reference
            )
        return self.get(str(row["id"]))

    def _with_task(
        self, existing: ModelEndpoint, task: ModelTask | None, reference: pd.DataFrame | None
    ) -> ModelEndpoint:
        """An existing endpoint, with its task (and a labelled reference's performance) stored
        if it had none; a different task fails."""
        if task is None:
            return existing
        if existing.task is not None and existing.task != task:
            raise MonitoringError(
                f"endpoint {existing.name!r} exists with task {existing.task.to_json()}, got "
                f"{task.to_json()}: a model that predicts something else is a new endpoint"
            )
        performance = existing.reference_performance
        if performance is None:
            performance = _reference_performance(existing.name, task, reference)
        if existing.task == task and performance == existing.reference_performance:
            return existing
        _check_task_types(existing.name, task, existing.column_types)
        t, r = db.endpoints, db.endpoint_references
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.id == existing.id)
                .values(task=task.to_json(), reference_performance=performance)
            )
            conn.execute(
                r.update()
                .where(r.c.endpoint_id == existing.id, r.c.version == existing.reference_version)
                .values(performance=performance)
            )
        return self.get(existing.id)

    def _keep_reference(
        self,
        conn: sa.Connection,
        endpoint_id: str,
        version: int,
        model_version: str,
        model_uri: str,
        stats: FeatureStats,
        rows: int,
        performance: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            db.endpoint_references.insert().values(
                endpoint_id=endpoint_id,
                version=version,
                model_version=model_version,
                model_uri=model_uri,
                feature_stats=stats,
                reference_rows=rows,
                created_at=db.to_db_time(self.clock()),
                performance=performance,
            )
        )
        self._store_plans(conn, {(endpoint_id, version): plan_bytes(stats)})

    @staticmethod
    def _store_plans(conn: sa.Connection, plans: Mapping[tuple[str, int], bytes]) -> None:
        rows = [
            {"endpoint_id": endpoint_id, "version": version, "codec": CODEC_VERSION, "plan": plan}
            for (endpoint_id, version), plan in plans.items()
        ]
        for lo in range(0, len(rows), 500):
            upsert(conn, db.reference_plans, rows[lo : lo + 500])

    def reference_plan(self, endpoint_id: str, version: int) -> PreparedReference | None:
        """The drift plan of the endpoint's reference `version`: the stored one, else (stored by
        another codec version, before plans, or damaged) one made from that version's stats and
        stored (when it can be: a reader may not write); None when the version's stats are gone
        or no plan can be made of them."""
        p = db.reference_plans
        query = sa.select(p.c.plan).where(
            p.c.endpoint_id == endpoint_id, p.c.version == version, p.c.codec == CODEC_VERSION
        )
        with self.engine.connect() as conn:
            stored = conn.execute(query).scalar()
        where = f"endpoint {endpoint_id}, reference version {version}"
        if stored is not None:
            try:
                return plan_from_bytes(stored)
            except ReferencePlanError as exc:
                log.warning("%s: stored drift plan not read (%s); made again from the stats", where, exc)
        text = self.stats_texts({endpoint_id: version}).get(endpoint_id)
        if text is None:
            return None
        try:
            made = plan_bytes(json_codec.loads(text))
        except Exception:
            log.warning("%s: no drift plan can be made of the stats", where, exc_info=True)
            return None
        try:
            self.store_plans({(endpoint_id, version): made})
        except sa.exc.SQLAlchemyError:
            log.warning("%s: the drift plan made again could not be stored", where, exc_info=True)
        return plan_from_bytes(made)

    def store_plans(self, plans: Mapping[tuple[str, int], bytes]) -> None:
        """Store the drift plans (`stats.reference_codec.plan_bytes`) of references by (endpoint
        id, reference version), replacing what is stored (for references stored without one)."""
        if plans:
            with self.engine.begin() as conn:
                self._store_plans(conn, plans)

    def update_reference(
        self,
        name_or_id: str,
        reference: pd.DataFrame,
        *,
        model_version: str | None = None,
        model_uri: str | None = None,
        segment_columns: Sequence[str] | None = None,
        max_segments: int | None = None,
    ) -> ModelEndpoint:
        """A new reference (and model version) for an endpoint. The previous ones stay in its
        reference history; results carry the versions they were computed against. The segment
        columns and cap are kept unless given (`segment_columns=[]` stops segmenting)."""
        endpoint = self.get(name_or_id)
        stats = _reference_stats(endpoint.name, reference, endpoint.feature_names, endpoint.label_names)
        cap = endpoint.max_segments if max_segments is None else max_segments
        segmented = check_segment_columns(
            endpoint.name,
            endpoint.segment_columns if segment_columns is None else segment_columns,
            endpoint.columns,
            cap,
        )
        segments = _segments_of(endpoint.name, reference, endpoint.columns, segmented, cap)
        performance = _reference_performance(endpoint.name, endpoint.task, reference)
        t = db.endpoints
        new_model_version = endpoint.model_version if model_version is None else model_version
        new_model_uri = endpoint.model_uri if model_uri is None else model_uri
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(t.c.reference_version).where(t.c.id == endpoint.id).with_for_update()
            ).scalar_one()
            version = (current or 1) + 1
            if current is None:  # an endpoint from before reference history: keep what it had
                self._keep_reference(
                    conn,
                    endpoint.id,
                    1,
                    endpoint.model_version,
                    endpoint.model_uri,
                    endpoint.feature_stats,
                    endpoint.reference_rows,
                    endpoint.reference_performance,
                )
            conn.execute(
                t.update()
                .where(t.c.id == endpoint.id)
                .values(
                    feature_stats=stats,
                    reference_rows=len(reference),
                    model_version=new_model_version,
                    model_uri=new_model_uri,
                    reference_version=version,
                    segment_columns=segmented,
                    max_segments=cap,
                    reference_performance=performance,
                )
            )
            self._keep_reference(
                conn,
                endpoint.id,
                version,
                new_model_version,
                new_model_uri,
                stats,
                len(reference),
                performance,
            )
            _keep_segments(conn, endpoint.id, version, segments)
        return self.get(endpoint.id)

    def segment_references(self, endpoint_id: str, version: int) -> list[SegmentReference]:
        """The segments of reference `version` of the endpoint, largest first, `__other__` last."""
        t = db.segment_references
        query = (
            sa.select(t.c.segment, t.c.segment_values, t.c.reference_rows, t.c.feature_stats)
            .where(t.c.endpoint_id == endpoint_id, t.c.version == version)
            .order_by(t.c.position)
        )
        with self.engine.connect() as conn:
            return [
                SegmentReference(key, dict(values), rows, dict(stats))
                for key, values, rows, stats in conn.execute(query)
            ]

    def reference_history(self, name_or_id: str) -> list[dict[str, Any]]:
        """Every reference the endpoint had: version, model_version, model_uri, rows, created_at
        and performance (of a labelled reference, else None)."""
        endpoint = self.get(name_or_id)
        r = db.endpoint_references
        query = (
            sa.select(
                r.c.version,
                r.c.model_version,
                r.c.model_uri,
                r.c.reference_rows,
                r.c.created_at,
                r.c.performance,
            )
            .where(r.c.endpoint_id == endpoint.id)
            .order_by(r.c.version)
        )
        with self.engine.connect() as conn:
            return [
                {**row._mapping, "created_at": db.from_db_time(row._mapping["created_at"])}
                for row in conn.execute(query)
            ]

    @staticmethod
    def _column_types(
        name: str,
        columns: list[str],
        reference: pd.DataFrame | None,
        given: Mapping[str, str] | None,
    ) -> dict[str, str]:
        types: dict[str, str] = {}
        for col in columns:
            if given and col in given:
                types[col] = given[col]
            elif reference is not None and col in reference.columns:
                types[col] = column_type_of(reference[col])
            else:
                types[col] = FLOAT
            if types[col] not in COLUMN_TYPES:
                raise MonitoringError(
                    f"endpoint {name!r}: column {col!r} has type {types[col]!r}, "
                    f"expected one of {COLUMN_TYPES}"
                )
        return types

    def find(self, name_or_id: str) -> ModelEndpoint | None:
        table = db.endpoints
        cond = table.c.name == name_or_id
        if ENDPOINT_ID.fullmatch(name_or_id):
            cond = sa.or_(cond, table.c.id == name_or_id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(cond)).first()
        return None if row is None else _row_to_endpoint(row)

    def get(self, name_or_id: str) -> ModelEndpoint:
        endpoint = self.find(name_or_id)
        if endpoint is None:
            raise UnknownEndpointError(f"unknown endpoint {name_or_id!r}")
        return endpoint

    def list(self, ids: Sequence[str] | None = None) -> list[ModelEndpoint]:
        query = sa.select(db.endpoints).order_by(db.endpoints.c.name)
        if ids is not None:
            query = query.where(db.endpoints.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [_row_to_endpoint(r) for r in conn.execute(query)]

    def for_window(self, ids: Sequence[str]) -> "builtins.list[StoredEndpoint]":
        """The endpoints among `ids` as a window's run loads them: without their reference
        stats (`stats_texts` reads those, for the apps that read them), with the current
        reference's drift plan of this codec version (None when there is none)."""
        t, plans = db.endpoints, db.reference_plans
        version = sa.func.coalesce(t.c.reference_version, 1)
        query = (
            sa.select(
                *(c for c in t.columns if c.name != "feature_stats"),
                plans.c.plan,
            )
            .select_from(
                t.outerjoin(
                    plans,
                    sa.and_(
                        plans.c.endpoint_id == t.c.id,
                        plans.c.version == version,
                        plans.c.codec == CODEC_VERSION,
                    ),
                )
            )
            .where(t.c.id.in_(list(ids)))
        )
        with self.engine.connect() as conn:
            rows: Any = conn.execute(query)
            stored = [StoredEndpoint(_row_to_endpoint(r, feature_stats={}), r.plan) for r in rows]
        # Sorted here: a database sorting the rows would carry every plan's bytes through its sort.
        return sorted(stored, key=lambda s: s.endpoint.name)

    def stats_texts(self, versions: Mapping[str, int]) -> dict[str, str]:
        """The reference stats, as stored (JSON text), of each endpoint id of `versions` in its
        reference version there (an endpoint from before reference history: its own); an endpoint
        without stats stored in that version is left out."""
        r, t = db.endpoint_references, db.endpoints
        pairs = list(versions.items())
        texts: dict[str, str] = {}
        with self.engine.connect() as conn:
            for lo in range(0, len(pairs), 5000):
                query = sa.select(r.c.endpoint_id, sa.cast(r.c.feature_stats, sa.Text)).where(
                    sa.tuple_(r.c.endpoint_id, r.c.version).in_(pairs[lo : lo + 5000])
                )
                texts.update((endpoint_id, text) for endpoint_id, text in conn.execute(query))
            older = [e for e in versions if e not in texts]
            for lo in range(0, len(older), 5000):
                query = sa.select(t.c.id, t.c.reference_version, sa.cast(t.c.feature_stats, sa.Text)).where(
                    t.c.id.in_(older[lo : lo + 5000])
                )
                for endpoint_id, version, text in conn.execute(query):
                    if (version or 1) == versions[endpoint_id]:
                        texts[endpoint_id] = text
        return texts

    def has_tasks(self) -> bool:
        """Whether any endpoint declares a task (its labels are joined to its events by id)."""
        declared = sa.select(db.endpoints.c.id).where(_declares_task())
        with self.engine.connect() as conn:
            return conn.execute(declared.limit(1)).first() is not None

    def targets(self, ids: Sequence[str]) -> dict[str, tuple[ModelTask, str]]:
        """For the endpoints among `ids` that declare a task: the task and the type of its
        prediction column (what the labels are stored as), without loading reference statistics."""
        t = db.endpoints
        found: dict[str, tuple[ModelTask, str]] = {}
        with self.engine.connect() as conn:
            for chunk in db.in_chunks(list(ids)):
                query = sa.select(t.c.id, t.c.task, t.c.column_types).where(
                    t.c.id.in_(chunk), _declares_task()
                )
                for endpoint_id, task_json, types in conn.execute(query):
                    if task_json:
                        task = ModelTask.from_json(task_json)
                        found[endpoint_id] = (task, types.get(task.prediction, FLOAT))
        return found

    def names(self) -> dict[str, str]:
        """Endpoint names by id, without loading reference statistics."""
        t = db.endpoints
        with self.engine.connect() as conn:
            return {endpoint_id: name for endpoint_id, name in conn.execute(sa.select(t.c.id, t.c.name))}

    def delete(self, name_or_id: str) -> None:
        """Remove the endpoint and its results, metrics, failures, window histograms and labels
        (its events stay on disk)."""
        endpoint = self.get(name_or_id)
        with self.engine.begin() as conn:
            for table in (
                db.results,
                db.metrics,
                db.result_heads,
                db.metric_heads,
                db.app_failures,
                db.window_histograms,
                db.endpoint_references,
                db.reference_plans,
                db.segment_references,
                db.labels,
                db.latency_buckets,
            ):
                conn.execute(table.delete().where(table.c.endpoint_id == endpoint.id))
            conn.execute(db.endpoints.delete().where(db.endpoints.c.id == endpoint.id))

    def note_requests(
        self,
        conn: sa.Connection,
        endpoint_id: str,
        first: datetime,
        last: datetime,
        events: int,
        errors: int,
    ) -> None:
        t = db.endpoints
        first_db, last_db = db.to_db_time(first), db.to_db_time(last)
        conn.execute(
            t.update()
            .where(t.c.id == endpoint_id)
            .values(
                first_request=sa.case(
                    (sa.or_(t.c.first_request.is_(None), t.c.first_request > first_db), first_db),
                    else_=t.c.first_request,
                ),
                last_request=sa.case(
                    (sa.or_(t.c.last_request.is_(None), t.c.last_request < last_db), last_db),
                    else_=t.c.last_request,
                ),
                error_count=t.c.error_count + errors,
                event_count=t.c.event_count + events,
            )
        )
