"""Logs and metrics: structured JSON logs with a request id, Prometheus metrics."""
