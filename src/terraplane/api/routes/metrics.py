"""`GET /metrics` in Prometheus text format. Unauthenticated, as scrapers expect; it holds counts
only, never names of states or tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from terraplane.api.context import AppContext, app_context
from terraplane.domain.jobs import JobStatus
from terraplane.domain.runs import RunStatus
from terraplane.observability.logs import get_logger
from terraplane.observability.metrics import JOBS_BY_STATUS, QUEUE_DEPTH, REGISTRY, RUNS_BY_STATUS
from terraplane.queue import jobs as jobstore
from terraplane.runs import service as runs

router = APIRouter(tags=["operations"])
log = get_logger(__name__)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: AppContext = Depends(app_context)) -> Response:
    try:
        async with ctx.db.read() as conn:
            queued = await jobstore.queued_by_kind(conn)
            job_counts = await jobstore.counts_by_status(conn)
            run_counts = await runs.count_by_status(conn)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: database unavailable; fleet gauges not refreshed", error=str(exc))
    else:
        QUEUE_DEPTH.clear()
        for kind, n in queued.items():
            QUEUE_DEPTH.labels(kind).set(n)
        for status in JobStatus:
            JOBS_BY_STATUS.labels(status.value).set(job_counts.get(status.value, 0))
        for run_status in RunStatus:
            RUNS_BY_STATUS.labels(run_status.value).set(run_counts.get(run_status.value, 0))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
