"""What users see of the shipped code location, as a snapshot: a refactor that changes asset keys,
kinds, partitions, backfill policy, checks, sensors, jobs or descriptions fails here loudly.

After an intended change: `MM_UPDATE_SNAPSHOTS=1 pytest tests/test_definitions_snapshot.py`,
then explain the diff in the commit.
"""

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from dagster import AssetsDefinition, Definitions, TimeWindowPartitionsDefinition

from mm_dagster.core.clock import utcnow
from mm_dagster.dagster_defs.config import default_partitions_start

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _start(start: datetime) -> str:
    """The default `partitions_start` moves with the load time; the snapshot records the rule."""
    from apps.definitions import config

    history = max(config.partitions_history, config.late_data_horizon)
    if start == default_partitions_start(utcnow(), history):
        return f"start of the UTC day {history.days} days before load"
    return start.isoformat()


def _partitions(partitions_def: object) -> dict[str, Any] | None:
    if partitions_def is None:
        return None
    assert isinstance(partitions_def, TimeWindowPartitionsDefinition)
    return {
        "cron": partitions_def.cron_schedule,
        "start": _start(partitions_def.start),
        "timezone": partitions_def.timezone,
        "fmt": partitions_def.fmt,
    }


def _asset(assets_def: AssetsDefinition) -> dict[str, Any]:
    policy = assets_def.backfill_policy
    return {
        "node": assets_def.node_def.name,
        "partitions": _partitions(assets_def.partitions_def),
        "backfill_policy": None if policy is None else policy.policy_type.value,
        "can_subset": assets_def.can_subset,
        "assets": {
            spec.key.to_user_string(): {
                "group": spec.group_name,
                "kinds": sorted(spec.kinds),
                "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
                "description": spec.description,
            }
            for spec in assets_def.specs
        },
        "checks": {
            f"{spec.asset_key.to_user_string()}:{spec.name}": spec.description
            for spec in assets_def.check_specs
        },
    }


def describe(defs: Definitions) -> dict[str, Any]:
    repo = defs.get_repository_def()
    assets = sorted(
        (a for a in repo.assets_defs_by_key.values() if isinstance(a, AssetsDefinition)),
        key=lambda a: a.node_def.name,
    )
    unique = {a.node_def.name: _asset(a) for a in assets}
    return {
        "assets": unique,
        "jobs": {
            job.name: job.description for job in repo.get_all_jobs() if not job.name.startswith("__ASSET_JOB")
        },
        "sensors": {
            s.name: {
                "description": s.description,
                "default_status": s.default_status.value,
                "minimum_interval_seconds": s.minimum_interval_seconds,
                "job": next((t.job_name for t in s.targets), None),
            }
            for s in sorted(repo.sensor_defs, key=lambda s: s.name)
        },
        "schedules": {
            s.name: {
                "cron": s.cron_schedule,
                "timezone": s.execution_timezone,
                "job": s.job_name,
                "default_status": s.default_status.value,
                "description": s.description,
            }
            for s in sorted(repo.schedule_defs, key=lambda s: s.name)
        },
        "resources": sorted(repo.get_top_level_resources()),
    }


def test_shipped_definitions_match_the_snapshot() -> None:
    from apps.definitions import defs

    actual = describe(defs)
    if os.environ.get("MM_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert actual == expected, "definitions changed: see the module docstring to update the snapshot"
