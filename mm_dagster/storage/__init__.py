"""SQLAlchemy Core storage for endpoints, results, metrics, failures, arrivals and alerts."""
