"""The app of one `mm serve --workers N` worker process: uvicorn starts workers by import
string, so each loads the `MonitoringConfig` named by the environment the parent set
(`worker_environment`) and builds its settings as the parent would."""

import importlib
import os

from fastapi import FastAPI

from mm_dagster.service.app import create_app
from mm_dagster.service.settings import ServiceSettings

CONFIG_VARIABLE = "MM_SERVICE_CONFIG"


def worker_environment(config_spec: str) -> dict[str, str]:
    """`config_spec` is `module:attribute` of the MonitoringConfig (as `mm --config` takes it)."""
    return {CONFIG_VARIABLE: config_spec}


def app_from_environment() -> FastAPI:
    module_name, _, attr = os.environ[CONFIG_VARIABLE].partition(":")
    config = getattr(importlib.import_module(module_name), attr or "config")
    return create_app(ServiceSettings.from_config(config))
