"""`terraplane blueprint|tenant|deployment|rollout|drift ...`: the control plane from a shell.

Each command is one API call (or a few); `--wait` follows a long operation with a progress
line; `--json` prints the API's answer for scripts.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import typer

from terraplane.cli.client import DEFAULT_URL, ApiClient, ApiError, parse_vars

OPERATION_DONE = ("succeeded", "failed", "rolled_back")
ROLLOUT_DONE = ("succeeded", "halted", "cancelled")

Url = typer.Option(DEFAULT_URL, "--url", envvar="TERRAPLANE_URL", help="Terraplane's URL.")
Token = typer.Option(None, "--token", envvar="TERRAPLANE_TOKEN", help="An API token.")
Json = typer.Option(False, "--json", help="Print the API's JSON answer.")
Wait = typer.Option(False, "--wait", help="Wait until the operation ends, showing progress.")

blueprint_app = typer.Typer(help="Blueprints and their versions.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
deployment_app = typer.Typer(
    help="Deployments (asynchronous; --wait follows them).", no_args_is_help=True
)
rollout_app = typer.Typer(help="Rollouts across a fleet.", no_args_is_help=True)
drift_app = typer.Typer(help="Drift checks and their schedules.", no_args_is_help=True)
schedule_app = typer.Typer(help="Cron schedules of drift checks.", no_args_is_help=True)
drift_app.add_typer(schedule_app, name="schedule")


def emit(item: Any, as_json: bool, line: str) -> None:
    typer.echo(json.dumps(item, indent=2) if as_json else line)


def follow_operation(api: ApiClient, op_id: int, as_json: bool) -> None:
    op = api.wait(
        f"/api/v1/operations/{op_id}",
        lambda o: o["status"] in OPERATION_DONE,
        f"operation {op_id}",
        quiet=as_json,
    )
    emit(
        op,
        as_json,
        f"operation {op_id}: {op['status']}" + (f" — {op['error']}" if op.get("error") else ""),
    )
    if op["status"] != "succeeded":
        raise typer.Exit(3)


# -- blueprints --------------------------------------------------------------------------


@blueprint_app.command("create")
def blueprint_create(name: str, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Create a blueprint."""
    item = ApiClient(url, token).call("POST", "/api/v1/blueprints", json={"name": name})
    emit(item, as_json, f"blueprint {name} created")


@blueprint_app.command("push")
def blueprint_push(
    name: str,
    version: str,
    directory: Path = typer.Option(None, "--dir", help="The module directory to upload."),
    git_url: str = typer.Option(None, "--git-url", help="Or: a git repository."),
    git_ref: str = typer.Option("main", "--git-ref"),
    git_path: str = typer.Option(".", "--git-path"),
    tiers: str = typer.Option("{}", "--tiers", help='JSON: {"pro": {"variables": {...}}}'),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Register a version from a directory (uploaded as .tar.gz) or a git ref."""
    api = ApiClient(url, token)
    meta = {"version": version, "tiers": json.loads(tiers)}
    if directory is not None:
        if not directory.is_dir():
            raise ApiError(f"--dir {directory} is not a directory")
        item = api.call(
            "POST",
            f"/api/v1/blueprints/{name}/versions",
            files={"archive": ("module.tar.gz", _tar(directory))},
            data={"metadata": json.dumps(meta)},
        )
    elif git_url:
        meta["source"] = {"git": {"url": git_url, "ref": git_ref, "path": git_path}}
        item = api.call("POST", f"/api/v1/blueprints/{name}/versions", json=meta)
    else:
        raise ApiError("give --dir or --git-url")
    variables = ", ".join(v["name"] for v in item["variables"])
    emit(item, as_json, f"{name} {version} registered (variables: {variables})")


@blueprint_app.command("show")
def blueprint_show(
    name: str,
    version: str = typer.Argument(None),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """A blueprint and its versions, or one version with its variables."""
    api = ApiClient(url, token)
    if version is None:
        item = api.call("GET", f"/api/v1/blueprints/{name}")
        emit(item, as_json, f"{name}: {', '.join(item['versions']) or 'no versions'}")
        return
    item = api.call("GET", f"/api/v1/blueprints/{name}/versions/{version}")
    lines = [f"{name} {item['version']}"] + [
        f"  {v['name']}: {v['type']}{' (required)' if v['required'] else ''}"
        f"{' (sensitive)' if v['sensitive'] else ''}"
        for v in item["variables"]
    ]
    emit(item, as_json, "\n".join(lines))


def _tar(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if rel.parts[0] in (".terraform", ".git"):
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    return buf.getvalue()


# -- tenants -----------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: str,
    label: list[str] = typer.Option([], "--label", help="key=value"),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Create a tenant."""
    labels = {k: str(v) for k, v in parse_vars(label).items()}
    item = ApiClient(url, token).call(
        "POST", "/api/v1/tenants", json={"name": name, "labels": labels}
    )
    emit(item, as_json, f"tenant {name} created")


@tenant_app.command("list")
def tenant_list(url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """List tenants."""
    items = ApiClient(url, token).call("GET", "/api/v1/tenants")["tenants"]
    emit(items, as_json, "\n".join(f"{t['name']}\t{json.dumps(t['labels'])}" for t in items))


@tenant_app.command("delete")
def tenant_delete(name: str, url: str = Url, token: str = Token) -> None:
    """Delete a tenant (refused while it has deployments)."""
    ApiClient(url, token).call("DELETE", f"/api/v1/tenants/{name}")
    typer.echo(f"tenant {name} deleted")


# -- deployments -------------------------------------------------------------------------


@deployment_app.command("create")
def deployment_create(
    tenant: str = typer.Option(..., "--tenant"),
    environment: str = typer.Option(..., "--env"),
    blueprint: str = typer.Option(..., "--blueprint"),
    version: str = typer.Option("latest", "--version"),
    tier: str = typer.Option("default", "--tier"),
    var: list[str] = typer.Option([], "--var", help="name=value (JSON values are typed)"),
    override_gate: bool = typer.Option(False, "--override-gate", help="Admins only."),
    wait: bool = Wait,
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Deploy a blueprint version for a tenant in an environment."""
    api = ApiClient(url, token)
    answer = api.call(
        "POST",
        "/api/v1/deployments",
        json={
            "tenant": tenant,
            "environment": environment,
            "blueprint": blueprint,
            "version": version,
            "tier": tier,
            "variables": parse_vars(var),
            "override_gate": override_gate,
        },
    )
    dep, op_id = answer["deployment"], answer["operation"]["id"]
    if not wait:
        emit(answer, as_json, f"deployment {dep['id']} created; operation {op_id}")
        return
    follow_operation(api, op_id, as_json)


@deployment_app.command("show")
def deployment_show(
    deployment_id: int, url: str = Url, token: str = Token, as_json: bool = Json
) -> None:
    """A deployment's status, version and workspace."""
    d = ApiClient(url, token).call("GET", f"/api/v1/deployments/{deployment_id}")
    emit(
        d,
        as_json,
        f"{d['id']}: {d['tenant']}/{d['environment']}/{d['blueprint']} "
        f"{d['version']} ({d['tier']}) {d['status']} — state {d['workspace']}",
    )


@deployment_app.command("update")
def deployment_update(
    deployment_id: int,
    version: str = typer.Option(None, "--version"),
    var: list[str] = typer.Option([], "--var"),
    wait: bool = Wait,
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Change a deployment's version and/or variables (--var replaces all variables)."""
    body: dict[str, Any] = {"version": version} if version else {}
    if var:
        body["variables"] = parse_vars(var)
    api = ApiClient(url, token)
    op_id = api.call("PATCH", f"/api/v1/deployments/{deployment_id}", json=body)["operation"]["id"]
    if wait:
        follow_operation(api, op_id, as_json)
    else:
        emit({"operation": {"id": op_id}}, as_json, f"operation {op_id} started")


@deployment_app.command("destroy")
def deployment_destroy(
    deployment_id: int, wait: bool = Wait, url: str = Url, token: str = Token, as_json: bool = Json
) -> None:
    """Destroy a deployment's infrastructure."""
    api = ApiClient(url, token)
    op_id = api.call("DELETE", f"/api/v1/deployments/{deployment_id}")["operation"]["id"]
    if wait:
        follow_operation(api, op_id, as_json)
    else:
        emit({"operation": {"id": op_id}}, as_json, f"operation {op_id} started")


# -- rollouts ----------------------------------------------------------------------------


@rollout_app.command("create")
def rollout_create(
    blueprint: str = typer.Option(..., "--blueprint"),
    to_version: str = typer.Option(..., "--to-version"),
    selector: str = typer.Option("{}", "--selector", help='JSON: {"labels": {...}, "tier"...}'),
    waves: str = typer.Option('[{"percent": 100}]', "--waves", help="JSON list of waves"),
    failure_threshold: int = typer.Option(1, "--failure-threshold"),
    wait: bool = Wait,
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Start a rollout; --wait follows it wave by wave."""
    api = ApiClient(url, token)
    rollout = api.call(
        "POST",
        "/api/v1/rollouts",
        json={
            "blueprint": blueprint,
            "to_version": to_version,
            "selector": json.loads(selector),
            "waves": json.loads(waves),
            "failure_threshold": failure_threshold,
        },
    )
    if wait:
        rollout = api.wait(
            f"/api/v1/rollouts/{rollout['id']}",
            lambda r: r["status"] in ROLLOUT_DONE,
            f"rollout {rollout['id']}",
            quiet=as_json,
        )
    emit(rollout, as_json, f"rollout {rollout['id']}: {rollout['status']}")
    if wait and rollout["status"] != "succeeded":
        raise typer.Exit(3)


def _rollout_action(action: str) -> Any:
    def command(rollout_id: int, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
        path = f"/api/v1/rollouts/{rollout_id}" + ("" if action == "show" else f"/{action}")
        r = ApiClient(url, token).call("GET" if action == "show" else "POST", path)
        waves = ", ".join(f"{len(w['deployments'])}:{w['status']}" for w in r["waves"])
        emit(r, as_json, f"rollout {r['id']}: {r['status']} (waves {waves})")

    command.__doc__ = f"{action.capitalize()} a rollout."
    return command


for _action in ("show", "pause", "resume", "cancel"):
    rollout_app.command(_action)(_rollout_action(_action))


# -- drift -------------------------------------------------------------------------------


@drift_app.command("check")
def drift_check(
    workspace: str,
    refresh_only: bool = typer.Option(False, "--refresh-only", help="A refresh-only plan."),
    reconcile: bool = typer.Option(False, "--reconcile", help="Apply drift found."),
    wait: bool = Wait,
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Check one workspace for drift."""
    api = ApiClient(url, token)
    body = {"workspace": workspace, "refresh_only": refresh_only, "reconcile": reconcile}
    op_id = api.call("POST", "/api/v1/drift/checks", json=body)["operation"]["id"]
    if wait:
        follow_operation(api, op_id, as_json)
    else:
        emit({"operation": {"id": op_id}}, as_json, f"operation {op_id} started")


@drift_app.command("list")
def drift_list(url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Every workspace's latest drift check."""
    rows = ApiClient(url, token).call("GET", "/api/v1/drift")["workspaces"]
    emit(
        rows,
        as_json,
        "\n".join(f"{r['status']:<10} {r['workspace']}  {r['checked_at'] or ''}" for r in rows),
    )


def _schedule_line(s: dict[str, Any]) -> str:
    scope = s.get("repository") or f"{s['blueprint'] or '*'}/{s['environment'] or '*'}"
    state = "enabled" if s["enabled"] else "disabled"
    flags = "".join(f" {flag}" for flag in ("reconcile", "refresh_only") if s[flag])
    return f"{s['name']}: '{s['cron']}' over {scope}, {state}{flags}, next {s['next_fire_at']}"


@schedule_app.command("create")
def schedule_create(
    name: str,
    cron: str = typer.Option(..., "--cron", help="Five-field cron, UTC (e.g. '0 3 * * *')."),
    blueprint: str = typer.Option(None, "--blueprint", help="Only this blueprint's deployments."),
    environment: str = typer.Option(None, "--environment", help="Only this environment."),
    repository: str = typer.Option(
        None, "--repository", help="Or: the dirspaces of this repository's default branch."
    ),
    window: int = typer.Option(
        None, "--window", help="Spread the checks over this many seconds after each firing."
    ),
    reconcile: bool = typer.Option(False, "--reconcile", help="Apply drift found."),
    refresh_only: bool = typer.Option(False, "--refresh-only", help="Refresh-only plans."),
    url: str = Url,
    token: str = Token,
    as_json: bool = Json,
) -> None:
    """Create a drift schedule."""
    body = {
        "name": name,
        "cron": cron,
        "blueprint": blueprint,
        "environment": environment,
        "repository": repository,
        "window_seconds": window,
        "reconcile": reconcile,
        "refresh_only": refresh_only,
    }
    item = ApiClient(url, token).call("POST", "/api/v1/drift/schedules", json=body)
    emit(item, as_json, _schedule_line(item))


@schedule_app.command("list")
def schedule_list(url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Every drift schedule."""
    rows = ApiClient(url, token).call("GET", "/api/v1/drift/schedules")["schedules"]
    emit(rows, as_json, "\n".join(_schedule_line(r) for r in rows))


@schedule_app.command("enable")
def schedule_enable(name: str, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Enable a drift schedule."""
    item = ApiClient(url, token).call(
        "PATCH", f"/api/v1/drift/schedules/{name}", json={"enabled": True}
    )
    emit(item, as_json, _schedule_line(item))


@schedule_app.command("disable")
def schedule_disable(name: str, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Disable a drift schedule (its pending checks are dropped)."""
    item = ApiClient(url, token).call(
        "PATCH", f"/api/v1/drift/schedules/{name}", json={"enabled": False}
    )
    emit(item, as_json, _schedule_line(item))


@schedule_app.command("run")
def schedule_run(name: str, url: str = Url, token: str = Token, as_json: bool = Json) -> None:
    """Fire a drift schedule now (its cron firings stay as they are)."""
    item = ApiClient(url, token).call("POST", f"/api/v1/drift/schedules/{name}/run")
    emit(item, as_json, f"drift schedule {name} fired")


@schedule_app.command("delete")
def schedule_delete(name: str, url: str = Url, token: str = Token) -> None:
    """Delete a drift schedule."""
    ApiClient(url, token).call("DELETE", f"/api/v1/drift/schedules/{name}")
    typer.echo(f"drift schedule {name} deleted")
