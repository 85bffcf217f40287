"""GitHub webhooks into the real server: HMAC signatures against every configured secret,
deliveries stored before the answer and deduplicated by delivery id, processed by workers;
installations and their repositories kept from `installation` events."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from terraplane.github.signatures import sign
from tests.conftest import LiveServer
from tests.support.github import signed_delivery

ACCOUNT = {"login": "acme", "id": 9919, "type": "Organization"}


def deliveries(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in client.get("/api/v1/github/deliveries").json()["deliveries"]}


def processed(client: httpx.Client, delivery_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = deliveries(client).get(delivery_id)
        if found and found["status"] != "received":
            return found
        time.sleep(0.2)
    raise AssertionError(f"delivery {delivery_id} was not processed")


def repositories(client: httpx.Client) -> set[str]:
    rows = client.get("/api/v1/github/repositories").json()["repositories"]
    return {r["full_name"] for r in rows}


def test_signatures_and_bad_deliveries_store_nothing(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as github, live_server.client() as client:
        before = set(deliveries(client))
        payload = {"action": "created", "installation": {"id": 1, "account": ACCOUNT}}
        body, headers = signed_delivery("installation", payload, "not-our-secret")
        answer = github.post("/webhooks/github", content=body, headers=headers)
        assert answer.status_code == 401 and "does not match" in answer.json()["detail"]
        del headers["X-Hub-Signature-256"]
        assert github.post("/webhooks/github", content=body, headers=headers).status_code == 401

        body, headers = signed_delivery("installation", payload, "new-secret")
        missing = {k: v for k, v in headers.items() if k != "X-GitHub-Delivery"}
        answer = github.post("/webhooks/github", content=body, headers=missing)
        assert answer.status_code == 400 and "X-GitHub-Delivery" in answer.json()["detail"]

        not_json = b"{not json"
        _, headers = signed_delivery("installation", {}, "new-secret")
        headers["X-Hub-Signature-256"] = sign(not_json, "new-secret")
        answer = github.post("/webhooks/github", content=not_json, headers=headers)
        assert answer.status_code == 400 and "not JSON" in answer.json()["detail"]

        huge = {"action": "created", "padding": "x" * 300_000}
        body, headers = signed_delivery("installation", huge, "new-secret")
        assert github.post("/webhooks/github", content=body, headers=headers).status_code == 413

        body, headers = signed_delivery("ping", {"zen": "Keep it logically awesome."}, "old-secret")
        answer = github.post("/webhooks/github", content=body, headers=headers)
        assert answer.status_code == 200 and answer.json()["status"] == "pong"
        assert set(deliveries(client)) == before  # nothing above was stored


def test_installations_are_kept_and_redeliveries_change_nothing(live_server: LiveServer) -> None:
    installation_id = int(uuid.uuid4().int % 10**9)
    repo = f"acme/infra-{installation_id}"
    other = f"acme/network-{installation_id}"
    installation = {"id": installation_id, "account": ACCOUNT, "suspended_at": None}
    with httpx.Client(base_url=live_server.url) as github, live_server.client() as client:
        created = {
            "action": "created",
            "installation": installation,
            "repositories": [
                {"id": installation_id * 10 + 1, "full_name": repo, "private": True},
            ],
            "sender": {"login": "octocat", "id": 1},
        }
        body, headers = signed_delivery("installation", created, "old-secret")
        answer = github.post("/webhooks/github", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        delivery_id = headers["X-GitHub-Delivery"]
        assert processed(client, delivery_id)["status"] == "processed"
        assert repo in repositories(client)

        # A redelivery (same id) is acknowledged and not processed again.
        again = github.post("/webhooks/github", content=body, headers=headers)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"

        changed = {
            "action": "added",
            "installation": installation,
            "repository_selection": "selected",
            "repositories_added": [{"id": installation_id * 10 + 2, "full_name": other}],
            "repositories_removed": [{"id": installation_id * 10 + 1, "full_name": repo}],
        }
        body, headers = signed_delivery("installation_repositories", changed, "new-secret")
        assert github.post("/webhooks/github", content=body, headers=headers).status_code == 202
        processed(client, headers["X-GitHub-Delivery"])
        names = repositories(client)
        assert other in names and repo not in names

        pr = {"action": "opened", "number": 3, "repository": {"full_name": other}}
        body, headers = signed_delivery("pull_request", pr, "new-secret")
        assert github.post("/webhooks/github", content=body, headers=headers).status_code == 202
        row = processed(client, headers["X-GitHub-Delivery"])
        assert (row["event"], row["action"], row["repository"]) == ("pull_request", "opened", other)

        body, headers = signed_delivery("star", {"action": "created"}, "new-secret")
        assert github.post("/webhooks/github", content=body, headers=headers).status_code == 202
        assert processed(client, headers["X-GitHub-Delivery"])["status"] == "ignored"

        deleted = {"action": "deleted", "installation": installation}
        body, headers = signed_delivery("installation", deleted, "new-secret")
        assert github.post("/webhooks/github", content=body, headers=headers).status_code == 202
        processed(client, headers["X-GitHub-Delivery"])
        assert other not in repositories(client)
        assert deliveries(client)[delivery_id]["status"] == "processed"  # processed once
