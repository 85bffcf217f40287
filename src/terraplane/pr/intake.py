"""Webhook intake: a verified delivery is stored, with the job that processes it, before
GitHub gets its answer; a redelivery (same delivery id) changes nothing.

Bodies are read leniently: only the fields used are looked at, and an unknown event or field
is never an error (GitHub adds them freely).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.domain.errors import InvalidInput
from terraplane.queue import jobs as jobstore
from terraplane.store.tables import github_deliveries
from terraplane.store.types import utcnow
from terraplane.store.upsert import insert_or_ignore

DELIVERY_JOB_KIND = "github.delivery"


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    payload: dict[str, Any]
    body: bytes

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation")
        value = installation.get("id") if isinstance(installation, dict) else None
        return value if isinstance(value, int) else None

    @property
    def repository(self) -> str | None:
        repo = self.payload.get("repository")
        name = repo.get("full_name") if isinstance(repo, dict) else None
        return name if isinstance(name, str) else None


def parse_delivery(
    delivery_id: str | None, event: str | None, content_type: str, body: bytes
) -> Delivery:
    """A delivery from its headers and (already verified) body; 400 naming what is wrong."""
    if not delivery_id or len(delivery_id) > 64:
        raise InvalidInput("X-GitHub-Delivery is missing or longer than 64 characters")
    if not event or len(event) > 64:
        raise InvalidInput("X-GitHub-Event is missing or longer than 64 characters")
    text = body.decode("utf-8", errors="replace")
    if content_type.startswith("application/x-www-form-urlencoded"):
        # A webhook configured with the form content type sends the JSON as `payload=`.
        text = (parse_qs(text).get("payload") or [""])[0]
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the {event} delivery's body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidInput(f"the {event} delivery's body is not a JSON object")
    return Delivery(id=delivery_id, event=event, payload=payload, body=body)


async def record(conn: AsyncConnection, delivery: Delivery) -> bool:
    """Store the delivery and enqueue its processing; False for a delivery already stored."""
    created = await insert_or_ignore(
        conn,
        github_deliveries,
        {
            "id": delivery.id,
            "event": delivery.event,
            "action": delivery.action,
            "installation_id": delivery.installation_id,
            "repository": delivery.repository,
            "body": delivery.body,
            "status": "received",
            "received_at": utcnow(),
        },
    )
    if created:
        await jobstore.enqueue(
            conn,
            DELIVERY_JOB_KIND,
            {"delivery_id": delivery.id},
            idempotency_key=f"github-delivery:{delivery.id}",
            max_attempts=10,
        )
    return created
