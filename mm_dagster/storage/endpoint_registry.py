"""The endpoint registry (spec §1): deployed models and their reference statistics, in SQL."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
from mm_dagster.core.names import ENDPOINT_ID, check_column_name, check_endpoint_name
from mm_dagster.core.segments import SegmentReference, check_segment_columns
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.segment_stats import segment_references
from mm_dagster.storage import database as db


def _row_to_endpoint(row: sa.Row[Any]) -> ModelEndpoint:
    m = row._mapping
    return ModelEndpoint(
        id=m["id"],
        name=m["name"],
        feature_names=list(m["feature_names"]),
        label_names=list(m["label_names"]),
        column_types=dict(m["column_types"]),
        feature_stats=dict(m["feature_stats"]),
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
    )


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
    ) -> ModelEndpoint:
        """Get-or-create by name. Conflicting feature or label names for an existing name fail.

        `segment_columns` (features or labels) split the traffic into segments: the reference's
        `max_segments` largest value combinations, the rest pooled as `__other__`; each gets
        its own reference stats, and apps also run per segment (see `core.segments`)."""
        check_endpoint_name(name)
        labels = _check_column_names(label_names, "label_names", name)
        if feature_names is None:
            if reference is None:
                raise MonitoringError(f"endpoint {name!r}: give feature_names or a reference frame")
            feature_names = [c for c in reference.columns if c not in labels]
        features = _check_column_names(feature_names, "feature_names", name)
        if set(features) & set(labels):
            raise MonitoringError(
                f"endpoint {name!r}: columns both feature and label: {set(features) & set(labels)}"
            )
        model = {"model_name": model_name, "model_version": model_version, "model_uri": model_uri}
        stats = None if reference is None else _reference_stats(name, reference, features, labels)
        existing = self.find(name)
        if existing is not None:
            _same_segments(existing, segment_columns, max_segments)
            return _same_endpoint(existing, features, labels, model, stats)
        segmented = check_segment_columns(name, segment_columns or [], features + labels, max_segments)
        segments = _segments_of(name, reference, features + labels, segmented, max_segments)
        types = self._column_types(name, features + labels, reference, column_types)
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
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(db.endpoints.insert().values(**row))
                self._keep_reference(conn, str(row["id"]), 1, model_version, model_uri, stats or {}, rows)
                _keep_segments(conn, str(row["id"]), 1, segments)
        except sa.exc.IntegrityError:
            concurrent = self.find(name)  # another process created it between lookup and insert
            if concurrent is None:
                raise
            _same_segments(concurrent, segment_columns, max_segments)
            return _same_endpoint(concurrent, features, labels, model, stats)
        return self.get(str(row["id"]))

    def _keep_reference(
        self,
        conn: sa.Connection,
        endpoint_id: str,
        version: int,
        model_version: str,
        model_uri: str,
        stats: FeatureStats,
        rows: int,
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
            )
        )

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
                )
            )
            self._keep_reference(
                conn, endpoint.id, version, new_model_version, new_model_uri, stats, len(reference)
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
        """Every reference the endpoint had: version, model_version, model_uri, rows, created_at."""
        endpoint = self.get(name_or_id)
        r = db.endpoint_references
        query = (
            sa.select(r.c.version, r.c.model_version, r.c.model_uri, r.c.reference_rows, r.c.created_at)
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

    def names(self) -> dict[str, str]:
        """Endpoint names by id, without loading reference statistics."""
        t = db.endpoints
        with self.engine.connect() as conn:
            return {endpoint_id: name for endpoint_id, name in conn.execute(sa.select(t.c.id, t.c.name))}

    def delete(self, name_or_id: str) -> None:
        """Remove the endpoint and its results, metrics and failures (its events stay on disk)."""
        endpoint = self.get(name_or_id)
        with self.engine.begin() as conn:
            for table in (
                db.results,
                db.metrics,
                db.app_failures,
                db.endpoint_references,
                db.segment_references,
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
