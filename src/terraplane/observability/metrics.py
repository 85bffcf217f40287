"""Prometheus metrics. Counters live in the process; queue and run gauges are read from the
database at scrape time, so every instance reports the same fleet-wide figures."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "terraplane_http_requests_total",
    "HTTP requests answered.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "terraplane_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
STATE_OPERATIONS = Counter(
    "terraplane_state_operations_total",
    "State backend operations by outcome.",
    ["operation", "outcome"],
    registry=REGISTRY,
)
JOBS_PROCESSED = Counter(
    "terraplane_jobs_processed_total",
    "Jobs this process finished, by kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
ENGINE_PROCESS_SECONDS = Histogram(
    "terraplane_engine_process_seconds",
    "Wall time of terraform/tofu processes, by command (init, plan, apply, show).",
    ["command"],
    registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)

RUN_PHASE_SECONDS = Histogram(
    "terraplane_run_phase_seconds",
    "Time runs spend outside terraform: preparing (source, working copy, backend token), "
    "waiting for the plugin cache lock before init, and finishing (plan storage, cleanup, "
    "recording the result).",
    ["phase"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

QUEUE_DEPTH = Gauge(
    "terraplane_queue_depth",
    "Jobs waiting to be claimed (fleet-wide).",
    ["kind"],
    registry=REGISTRY,
)
JOBS_BY_STATUS = Gauge(
    "terraplane_jobs",
    "Jobs by status (fleet-wide).",
    ["status"],
    registry=REGISTRY,
)
RUNS_BY_STATUS = Gauge(
    "terraplane_runs",
    "Runs by status (fleet-wide).",
    ["status"],
    registry=REGISTRY,
)
