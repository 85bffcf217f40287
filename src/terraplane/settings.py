"""Every TERRAPLANE_* setting, in one place.

Settings are read from the environment (and an optional `.env` file) once per process; code
receives a `Settings` value and never reads the environment itself.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from terraplane.domain.errors import InvalidInput

DEFAULT_TERRAFORM_MIRROR = "https://releases.hashicorp.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERRAPLANE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path(".terraplane"), description="Where SQLite, keys, caches live."
    )
    database_url: str = Field(default="", description="sqlite:///... or postgresql://...")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = Field(
        default="", description="How runs and GitHub reach this server; default http://host:port"
    )
    log_level: str = "info"
    log_format: str = Field(default="json", description="json or console")

    encryption_key: str = Field(
        default="", description="base64 AES-256 key; generated into data_dir when unset"
    )
    encryption_old_keys: str = Field(
        default="", description="comma-separated base64 keys still accepted for decryption"
    )

    state_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    request_max_bytes: int = Field(default=1024 * 1024, ge=1024)

    token_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long an instance trusts a token it has checked"
    )
    environments: str = Field(
        default="dev,staging,prod", description="the promotion chain, in order, comma-separated"
    )
    drift_retry_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how soon a scheduled drift check of a busy or locked workspace is retried",
    )
    blueprint_archive_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    workers: int = Field(
        default=4, ge=0, description="terraform run slots per process (0: no workers)"
    )
    event_workers: int = Field(
        default=4,
        ge=1,
        description="slots per process for the short jobs around runs (settling operations, "
        "advancing rollouts, drift schedules)",
    )
    job_lease_seconds: float = Field(default=30.0, gt=0)
    job_poll_seconds: float = Field(default=0.5, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    run_timeout_seconds: float = Field(default=3600.0, gt=0)
    run_cancel_grace_seconds: float = Field(default=20.0, ge=0)
    terraform_mirror: str = DEFAULT_TERRAFORM_MIRROR
    tofu_mirror: str = "https://github.com/opentofu/opentofu/releases/download"

    github_api_url: str = Field(
        default="https://api.github.com",
        description="GitHub's REST API; https://HOST/api/v3 for GitHub Enterprise Server",
    )
    github_app_id: str = Field(default="", description="the GitHub App's id")
    github_private_key: str = Field(
        default="", description="the App's private key: PEM text, or the path of a PEM file"
    )
    github_webhook_secret: str = Field(
        default="",
        # TERRAPLANE_GITHUB_WEBHOOK_SECRETS is read too (the name before 0.1 was settled).
        validation_alias=AliasChoices(
            "TERRAPLANE_GITHUB_WEBHOOK_SECRET", "TERRAPLANE_GITHUB_WEBHOOK_SECRETS"
        ),
        description="webhook secrets, comma-separated: several during a rotation",
    )
    github_workers: int = Field(
        default=4,
        ge=1,
        description="slots per process for GitHub work: reading repositories and config, "
        "posting comments and statuses",
    )
    plan_retention_hours: float = Field(
        default=168.0, gt=0, description="stored plans are deleted after this long"
    )
    github_webhook_max_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, description="GitHub caps payloads at 25 MB"
    )

    db_pool_size: int = Field(default=20, ge=1, description="database connections per process")
    db_ping_timeout_seconds: float = Field(default=2.0, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'terraplane.db'}"

    @property
    def webhook_secrets(self) -> list[str]:
        return [x.strip() for x in self.github_webhook_secret.split(",") if x.strip()]

    @property
    def github_private_key_pem(self) -> str:
        """The PEM text: TERRAPLANE_GITHUB_PRIVATE_KEY holds it or names its file."""
        key = self.github_private_key.strip()
        if key and "-----BEGIN" not in key:
            try:
                return Path(key).expanduser().read_text()
            except OSError as exc:
                raise InvalidInput(
                    "TERRAPLANE_GITHUB_PRIVATE_KEY is neither PEM text nor a readable file "
                    f"({exc.strerror})"
                ) from exc
        return self.github_private_key

    @property
    def github_configured(self) -> bool:
        return bool(self.github_app_id and self.github_private_key)

    @property
    def checkouts_dir(self) -> Path:
        return self.data_dir / "checkouts"

    @property
    def environment_chain(self) -> list[str]:
        return [e.strip() for e in self.environments.split(",") if e.strip()]

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def plugin_cache_dir(self) -> Path:
        return self.data_dir / "plugin-cache"

    @property
    def engines_dir(self) -> Path:
        return self.data_dir / "engines"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def terraform_cli_config(self) -> Path | None:
        """The operator's Terraform CLI configuration, when it is set and exists."""
        configured = os.environ.get("TF_CLI_CONFIG_FILE")
        if configured and Path(configured).is_file():
            return Path(configured)
        return None


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
