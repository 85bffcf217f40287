"""`terraplane pull|lock|run|state ...`: pull requests, dirspace locks, runs and state history
from a shell, through the API (`--json` prints the API's answer)."""

from __future__ import annotations

import sys
import time

import typer

from terraplane.cli.client import ApiClient
from terraplane.cli.controlplane import Json, Token, Url, emit

pull_app = typer.Typer(help="Pull requests Terraplane acts on.", no_args_is_help=True)
lock_app = typer.Typer(help="Dirspace locks held by pull requests.", no_args_is_help=True)
run_app = typer.Typer(help="Runs: plans, applies and destroys.", no_args_is_help=True)
state_app = typer.Typer(help="Terraform states and their versions.", no_args_is_help=True)

RUN_DONE = ("succeeded", "failed", "cancelled")


@pull_app.command("list")
def pull_list(
    repository: str = typer.Option(None, "--repo", help="owner/name"),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Pull requests, most recently updated first."""
    params = {"repository": repository} if repository else {}
    items = ApiClient(url, token).call("GET", "/api/v1/pulls", params=params)["pulls"]
    emit(
        items,
        as_json,
        "\n".join(f"{p['repository']}#{p['number']}\t{p['state']}\t{p['title']}" for p in items),
    )


@pull_app.command("show")
def pull_show(
    repository: str = typer.Argument(..., help="owner/name"),
    number: int = typer.Argument(...),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """A pull request and its commands, each with its dirspaces."""
    item = ApiClient(url, token).call("GET", f"/api/v1/pulls/{repository}/{number}")
    lines = [f"{item['repository']}#{item['number']} {item['state']}: {item['title']}"]
    for command in item["commands"]:
        lines.append(
            f"  {command['id']}\t{command['kind']}\t{command['status']}\t"
            f"{command['head_sha'][:7]}\t{command['text']}"
        )
        for d in command["dirspaces"]:
            run = f"run {d['run_id']}" if d["run_id"] else ""
            lines.append(f"      {d['dir']} ({d['workspace']})\t{d['status']}\t{run}")
    emit(item, as_json, "\n".join(lines))


@lock_app.command("list")
def lock_list(
    repository: str = typer.Option(None, "--repo", help="owner/name"),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Dirspace locks and the pull requests holding them."""
    params = {"repository": repository} if repository else {}
    items = ApiClient(url, token).call("GET", "/api/v1/locks", params=params)["locks"]
    emit(
        items,
        as_json,
        "\n".join(
            f"{lk['id']}\t{lk['repository']}\t{lk['dir']} ({lk['workspace']})\t"
            f"#{lk['pull_request']}\t{lk['locked_by']}"
            for lk in items
        ),
    )


@lock_app.command("release")
def lock_release(lock_id: int, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Release a lock (admin); pull requests it blocked are planned again."""
    item = ApiClient(url, token).call("DELETE", f"/api/v1/locks/{lock_id}")
    emit(item, as_json, f"released lock {lock_id} ({item['dir']}, #{item['pull_request']})")


@run_app.command("list")
def run_list(
    workspace: str = typer.Option(None, "--workspace"),
    limit: int = typer.Option(50, "--limit"),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Runs, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if workspace:
        params["workspace"] = workspace
    items = ApiClient(url, token).call("GET", "/api/v1/runs", params=params)["runs"]
    emit(
        items,
        as_json,
        "\n".join(f"{r['id']}\t{r['operation']}\t{r['status']}\t{r['workspace']}" for r in items),
    )


@run_app.command("show")
def run_show(run_id: int, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """One run."""
    item = ApiClient(url, token).call("GET", f"/api/v1/runs/{run_id}")
    headline = (item.get("plan_summary") or {}).get("headline", "")
    emit(item, as_json, f"run {run_id}: {item['operation']} {item['status']} {headline}")


@run_app.command("log")
def run_log(
    run_id: int,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    url: str = Url,
    token: str = Token,
) -> None:
    """The run's log; with --follow, tailed until the run ends."""
    api = ApiClient(url, token)
    offset = 0
    while True:
        answer = api.http.get(f"/api/v1/runs/{run_id}/log", params={"offset": offset})
        if answer.status_code >= 400:
            api.call("GET", f"/api/v1/runs/{run_id}")  # raises with the API's message
        sys.stdout.write(answer.text)
        sys.stdout.flush()
        offset = int(answer.headers.get("X-Next-Offset", offset))
        if not follow or answer.headers.get("X-Run-Status") in RUN_DONE:
            return
        time.sleep(1)


@run_app.command("cancel")
def run_cancel(run_id: int, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Cancel a queued or running run."""
    item = ApiClient(url, token).call("POST", f"/api/v1/runs/{run_id}/cancel")
    emit(item, as_json, f"run {run_id}: {item['status']} (cancel requested)")


@state_app.command("versions")
def state_versions(name: str, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """A state's versions, newest first."""
    items = ApiClient(url, token).call("GET", f"/api/v1/state/{name}/versions")["versions"]
    emit(
        items,
        as_json,
        "\n".join(
            f"{v['serial']}\t{v['created_at']}\t{v['created_by']}\t{v['size']} bytes" for v in items
        ),
    )


@state_app.command("rollback")
def state_rollback(
    name: str,
    serial: int = typer.Option(..., "--serial", help="The version to copy forward."),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Make an old version current again (copied forward as a new version)."""
    item = ApiClient(url, token).call(
        "POST", f"/api/v1/state/{name}/rollback", json={"serial": serial}
    )
    emit(item, as_json, f"{name}: version {serial} is current again as serial {item['serial']}")
