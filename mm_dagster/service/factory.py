"""The app of one `mm serve --workers N` worker process, made from the environment the parent
set (`worker_environment`): uvicorn starts workers by import string, so the settings the parent
resolved from its `MonitoringConfig` travel as environment variables."""

import os
from collections.abc import Sequence

from fastapi import FastAPI

from mm_dagster.service.app import create_app
from mm_dagster.service.settings import ServiceSettings

BASE_PERIOD_VARIABLE = "MM_SERVICE_BASE_PERIOD"
APPS_VARIABLE = "MM_SERVICE_APPS"


def worker_environment(base_period: int, apps: Sequence[str]) -> dict[str, str]:
    return {BASE_PERIOD_VARIABLE: str(base_period), APPS_VARIABLE: ",".join(apps)}


def app_from_environment() -> FastAPI:
    apps = [name for name in os.environ.get(APPS_VARIABLE, "").split(",") if name]
    base_period = int(os.environ[BASE_PERIOD_VARIABLE])
    return create_app(ServiceSettings.resolve(base_period=base_period, apps=apps))
