"""A client for a remote monitoring service (`mm serve`): see `MonitoringClient`."""
