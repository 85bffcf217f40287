"""`terraplane serve | worker | db upgrade | token create|list|revoke`."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from terraplane import __version__
from terraplane.cli import controlplane, operations
from terraplane.cli.client import ApiError
from terraplane.domain.errors import TerraplaneError
from terraplane.domain.roles import Role
from terraplane.governance import tokens as tokenstore
from terraplane.observability.logs import configure_logging, get_logger
from terraplane.settings import Settings, load_settings
from terraplane.store.database import Database
from terraplane.store.migrate import upgrade

T = TypeVar("T")

app = typer.Typer(
    help="Terraplane: a control plane for infrastructure as code.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
for _name, _sub in (
    ("blueprint", controlplane.blueprint_app),
    ("tenant", controlplane.tenant_app),
    ("deployment", controlplane.deployment_app),
    ("rollout", controlplane.rollout_app),
    ("drift", controlplane.drift_app),
    ("pull", operations.pull_app),
    ("lock", operations.lock_app),
    ("run", operations.run_app),
    ("state", operations.state_app),
):
    app.add_typer(_sub, name=_name)
log = get_logger("terraplane.cli")


class CliError(Exception):
    """One sentence for the user; printed without a traceback."""


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ValueError as exc:
        raise CliError(f"invalid configuration: {exc}") from exc


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _migrate(settings: Settings) -> tuple[str | None, str | None]:
    try:
        return upgrade(settings.resolved_database_url)
    except OperationalError as exc:
        raise CliError(
            f"cannot reach the database at {_safe_url(settings.resolved_database_url)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc


def _run_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def runner() -> T:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(runner())


@app.command()
def version() -> None:
    """Print Terraplane's version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default 8080)."),
) -> None:
    """Run the API, the web UI and in-process workers (migrating the database first)."""
    import uvicorn

    from terraplane.api.app import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    before, after = _migrate(settings)
    log.info(
        "database ready",
        url=_safe_url(settings.resolved_database_url),
        revision=after,
        migrated=before != after,
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        proxy_headers=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


@app.command()
def worker() -> None:
    """Run workers only (scale-out): claim and execute jobs until SIGTERM."""
    from terraplane.api.app import build_context, start_worker

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    _migrate(settings)
    if settings.workers < 1:
        raise CliError("TERRAPLANE_WORKERS is 0: a worker process needs at least one slot")

    async def main() -> None:
        ctx = build_context(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = await start_worker(ctx)
        await stop.wait()
        await runner.stop(settings.shutdown_grace_seconds)
        if ctx.github is not None:
            await ctx.github.close()
        await ctx.db.dispose()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (safe to run from many processes at once)."""
    settings = _settings()
    before, after = _migrate(settings)
    if before == after:
        typer.echo(f"database is up to date (revision {after})")
    else:
        typer.echo(f"database migrated from {before or 'empty'} to {after}")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="A name to recognise the token by."),
    role: Role = typer.Option(..., help="admin, operator or viewer."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create an API token and print it. It is shown this once and stored only hashed."""
    settings = _settings()
    _migrate(settings)

    async def work(db: Database) -> tuple[str, tokenstore.TokenRecord]:
        async with db.write() as conn:
            return await tokenstore.create_token(conn, name, role)

    secret, record = _run_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"name": record.name, "role": record.role.value, "token": secret}))
    else:
        typer.echo(secret)
        typer.echo(
            f"(token {record.name!r}, role {record.role.value}; it is not shown again)", err=True
        )


@token_app.command("list")
def token_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List active tokens (never their secrets)."""
    settings = _settings()

    async def work(db: Database) -> list[tokenstore.TokenRecord]:
        async with db.read() as conn:
            return await tokenstore.list_tokens(conn)

    records = _run_db(settings, work)
    if as_json:
        from terraplane.api.routes.tokens import token_json

        typer.echo(json.dumps([token_json(r) for r in records]))
        return
    for r in records:
        used = r.last_used_at.isoformat(timespec="seconds") if r.last_used_at else "never"
        typer.echo(
            f"{r.name}\t{r.role.value}\t{r.prefix}…\tcreated "
            f"{r.created_at.isoformat(timespec='seconds')}\tlast used {used}"
        )


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: requests with it are refused from now on."""
    settings = _settings()

    async def work(db: Database) -> tokenstore.TokenRecord:
        async with db.write() as conn:
            return await tokenstore.revoke_token(conn, name)

    record = _run_db(settings, work)
    typer.echo(f"revoked token {record.name!r}")


def main() -> None:
    try:
        app()
    except (CliError, TerraplaneError, ApiError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OperationalError as exc:
        typer.echo(f"error: the database is unavailable: {exc.orig}", err=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        typer.echo(f"error: database error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
