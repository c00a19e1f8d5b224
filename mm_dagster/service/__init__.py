"""The monitoring service run by `mm serve` (see `service.app`)."""

from mm_dagster.service.app import create_app
from mm_dagster.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
