"""The endpoint registry (spec §1): deployed models and their reference statistics, in SQL."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.endpoint import COLUMN_TYPES, FLOAT, FeatureStats, ModelEndpoint, column_type_of
from mm_dagster.core.errors import MonitoringError, UnknownEndpointError
from mm_dagster.core.names import ENDPOINT_ID, check_column_name, check_endpoint_name
from mm_dagster.stats.feature_stats import compute_feature_stats
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
    )


def _check_column_names(names: Sequence[str], what: str, endpoint: str) -> list[str]:
    names = [check_column_name(n, endpoint, what.removesuffix("s")) for n in names]
    if len(set(names)) != len(names):
        raise MonitoringError(f"endpoint {endpoint!r}: duplicate {what}: {names}")
    return names


def _same_columns(existing: ModelEndpoint, features: list[str], labels: list[str]) -> ModelEndpoint:
    if existing.feature_names != features or existing.label_names != labels:
        raise MonitoringError(
            f"endpoint {existing.name!r} exists with feature_names={existing.feature_names}, "
            f"label_names={existing.label_names}; got feature_names={features}, label_names={labels}"
        )
    return existing


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
    ) -> ModelEndpoint:
        """Get-or-create by name. Conflicting feature or label names for an existing name fail."""
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
        existing = self.find(name)
        if existing is not None:
            return _same_columns(existing, features, labels)
        types = self._column_types(name, features + labels, reference, column_types)
        stats: FeatureStats = {}
        rows = 0
        if reference is not None:
            present = [c for c in features + labels if c in reference.columns]
            missing = [c for c in features if c not in reference.columns]
            if missing:
                raise MonitoringError(f"endpoint {name!r}: reference lacks features {missing}")
            stats = compute_feature_stats(reference, present)
            rows = len(reference)
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "model_name": model_name,
            "model_version": model_version,
            "model_uri": model_uri,
            "feature_names": features,
            "label_names": labels,
            "column_types": types,
            "feature_stats": stats,
            "reference_rows": rows,
            "created_at": db.to_db_time(self.clock()),
            "error_count": 0,
            "event_count": 0,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(db.endpoints.insert().values(**row))
        except sa.exc.IntegrityError:
            concurrent = self.find(name)  # another process created it between lookup and insert
            if concurrent is None:
                raise
            return _same_columns(concurrent, features, labels)
        return self.get(str(row["id"]))

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
            for table in (db.results, db.metrics, db.app_failures):
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
