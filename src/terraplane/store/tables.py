"""Every table. Migrations in `migrations/versions/` create them; keep both in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from terraplane.store.types import BigId, Blob, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # sha256 of the whole token: tokens are 256 random bits, so a fast hash is the right one.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    # A token scoped to one state (the runner's short-lived backend credentials).
    Column("state_scope", String(512), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
)

states = Table(
    "states",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("lineage", String(128), nullable=True),
    Column("serial", Integer, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("current_version", Integer, nullable=False, server_default=text("0")),
    Column("lock_id", String(128), nullable=True),
    Column("lock_info", JSON, nullable=True),
    # The token that took the lock: lets a resumed run release the lock its dead process held.
    Column("locked_by", String(128), nullable=True),
    Column("locked_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

state_versions = Table(
    "state_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("state_name", String(512), nullable=False),
    Column("version", Integer, nullable=False),
    Column("serial", Integer, nullable=False),
    Column("lineage", String(128), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("ciphertext", Blob, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("reason", String(256), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("state_name", "version", name="uq_state_versions_name_version"),
    Index("ix_state_versions_name_serial", "state_name", "serial"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(256), nullable=True, unique=True),
    # Jobs sharing an exclusive key never run at the same time (one write per workspace).
    Column("exclusive_key", String(512), nullable=True),
    Column("priority", Integer, nullable=False, server_default=text("100")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("3")),
    Column("run_after", UTCDateTime, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("claim_token", String(36), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("result", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_jobs_claimable", "status", "priority", "id"),
    Index(
        "uq_jobs_exclusive_running",
        "exclusive_key",
        unique=True,
        postgresql_where=text("status = 'running'"),
        sqlite_where=text("status = 'running'"),
    ),
)

runs = Table(
    "runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(512), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("job_id", BigId, ForeignKey("jobs.id"), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("exit_code", Integer, nullable=True),
    Column("has_changes", Boolean, nullable=True),
    Column("plan_summary", JSON, nullable=True),
    Column("plan_key_id", String(16), nullable=True),
    Column("plan_file", Blob, nullable=True),
    # The readable part of the plan's output (redacted), for comments and the UI.
    Column("plan_text", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_runs_workspace", "workspace", "id"),
)

run_log_chunks = Table(
    "run_log_chunks",
    metadata,
    Column("run_id", BigId, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    # Byte offset of this chunk in the whole log, so a reader can tail from where it stopped.
    Column("offset", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # A deleted tenant's row stays (its destroyed deployments' history refers to it); creating
    # the name again brings it back.
    Column("deleted_at", UTCDateTime, nullable=True),
)

blueprints = Table(
    "blueprints",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

blueprint_versions = Table(
    "blueprint_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("blueprint", String(128), ForeignKey("blueprints.name"), nullable=False),
    Column("version", String(64), nullable=False),
    # Sort key: versions compare as semver, not as text ("1.10.0" > "1.9.0").
    Column("sort_key", String(128), nullable=False),
    Column("source", JSON, nullable=False),
    # The module as a .tar.gz (git sources are fetched once, at registration).
    Column("archive", Blob, nullable=False),
    Column("archive_sha256", String(64), nullable=False),
    Column("variables", JSON, nullable=False),
    Column("tiers", JSON, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("blueprint", "version", name="uq_blueprint_versions_blueprint_version"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant", String(128), ForeignKey("tenants.name"), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("blueprint", String(128), ForeignKey("blueprints.name"), nullable=False),
    Column("tier", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    # The version and variables its infrastructure runs now (after a rollback: the previous).
    Column("version", String(64), nullable=True),
    # Variables are sealed (store.encryption.seal_json): they may hold secrets.
    Column("variables", Blob, nullable=False),
    # What the last successful apply used: what a failed change rolls back to.
    Column("good_version", String(64), nullable=True),
    Column("good_variables", Blob, nullable=True),
    Column("workspace", String(512), nullable=False, unique=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "environment", "blueprint", name="uq_deployments_target"),
)

operations = Table(
    "operations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # The deployment it changes; None for a drift check of a repository's workspace.
    Column("deployment_id", BigId, ForeignKey("deployments.id"), nullable=True),
    # The workspace it runs in (set for repository drift checks; a deployment's is its own).
    Column("workspace", String(512), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("target_version", String(64), nullable=True),
    Column("target_variables", Blob, nullable=True),
    Column("gate_overridden_by", String(128), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # A drift check that, when it finds drift, re-applies the deployment (a schedule's option).
    Column("reconcile", Boolean, nullable=False, server_default=text("false")),
    Index("ix_operations_deployment", "deployment_id", "id"),
)

operation_runs = Table(
    "operation_runs",
    metadata,
    Column("run_id", BigId, ForeignKey("runs.id"), primary_key=True),
    Column("operation_id", BigId, ForeignKey("operations.id"), nullable=False),
    # apply, rollback or destroy
    Column("purpose", String(16), nullable=False),
    Index("ix_operation_runs_operation", "operation_id"),
)

# A blueprint version that applied successfully in an environment may go to the next one.
promotions = Table(
    "promotions",
    metadata,
    Column("blueprint", String(128), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("first_succeeded_at", UTCDateTime, nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("blueprint", String(128), ForeignKey("blueprints.name"), nullable=False),
    Column("to_version", String(64), nullable=False),
    Column("selector", JSON, nullable=False),
    Column("waves", JSON, nullable=False),
    Column("failure_threshold", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # The wave being worked on, and when its soak time ends (once its deployments are done).
    Column("current_wave", Integer, nullable=False, server_default=text("0")),
    Column("soak_until", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

rollout_targets = Table(
    "rollout_targets",
    metadata,
    Column("rollout_id", BigId, ForeignKey("rollouts.id"), primary_key=True),
    Column("deployment_id", BigId, ForeignKey("deployments.id"), primary_key=True),
    Column("wave", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("operation_id", BigId, ForeignKey("operations.id"), nullable=True),
    # True while the rollout is not final: a deployment is in at most one active rollout.
    Column("active", Boolean, nullable=False),
    Index(
        "uq_rollout_targets_active_deployment",
        "deployment_id",
        unique=True,
        postgresql_where=text("active"),
        sqlite_where=text("active"),
    ),
    Index("ix_rollout_targets_operation", "operation_id"),
)

# The latest drift check of each workspace (deployments today, PR default branches later).
drift_results = Table(
    "drift_results",
    metadata,
    Column("workspace", String(512), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("run_id", BigId, ForeignKey("runs.id"), nullable=True),
    Column("summary", JSON, nullable=True),
    Column("checked_at", UTCDateTime, nullable=False),
)

# Cron schedules of drift checks over the deployments a blueprint/environment selects. The
# schedule's next firing is a delayed `drift.fire` job; `next_fire_at` tells current from stale.
drift_schedules = Table(
    "drift_schedules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("cron", String(128), nullable=False),
    Column("blueprint", String(128), ForeignKey("blueprints.name"), nullable=True),
    Column("environment", String(64), nullable=True),
    # Or: the dirspaces of a repository's default branch (owner/name).
    Column("repository", String(256), nullable=True),
    # Checks are spread over this many seconds after each firing; NULL: chosen from the period.
    Column("window_seconds", Integer, nullable=True),
    Column("reconcile", Boolean, nullable=False),
    Column("refresh_only", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_fire_at", UTCDateTime, nullable=True),
    Column("last_fired_at", UTCDateTime, nullable=True),
    Column("last_fired_count", Integer, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Every GitHub webhook delivery, stored before it is acknowledged; the delivery id makes a
# redelivery a no-op. Processed by `github.delivery` jobs.
github_deliveries = Table(
    "github_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event", String(64), nullable=False),
    Column("action", String(64), nullable=True),
    Column("installation_id", BigInteger, nullable=True),
    Column("repository", String(256), nullable=True),
    Column("body", Blob, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Index("ix_github_deliveries_received", "received_at"),
)

# Installations of the GitHub App and the repositories each one grants.
github_installations = Table(
    "github_installations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", String(256), nullable=False),
    Column("suspended", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

github_repositories = Table(
    "github_repositories",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("full_name", String(256), nullable=False, unique=True),
    Column("installation_id", BigInteger, ForeignKey("github_installations.id"), nullable=False),
    # The default branch and its head, from `push` events (drift checks of merged code).
    Column("default_branch", String(256), nullable=True),
    Column("default_branch_sha", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The dirspaces of PR-automated repositories' default branches that drift schedules check:
# what the latest look at the branch found, with the run spec a check of it uses.
repository_workspaces = Table(
    "repository_workspaces",
    metadata,
    Column("workspace", String(512), primary_key=True),
    Column("repository", String(256), nullable=False),
    Column("dir", String(512), nullable=False),
    Column("terraform_workspace", String(128), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_repository_workspaces_repository", "repository"),
)

# A pull request, as of the latest event or API read.
pull_requests = Table(
    "pull_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("repository", String(256), nullable=False),
    Column("number", Integer, nullable=False),
    Column("installation_id", BigInteger, nullable=True),
    Column("clone_url", String(1024), nullable=False),
    Column("title", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("head_sha", String(64), nullable=False),
    Column("head_ref", String(256), nullable=False),
    Column("base_sha", String(64), nullable=False),
    Column("base_ref", String(256), nullable=False),
    # The head branch lives in another repository: never planned (its code is untrusted).
    Column("fork", Boolean, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("repository", "number", name="uq_pull_requests_repository_number"),
)

# One plan, apply, unlock or help for one pull request, and its one summary comment.
pr_commands = Table(
    "pr_commands",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("pull_request_id", BigId, ForeignKey("pull_requests.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("head_sha", String(64), nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=True),
    Column("parallelism", Integer, nullable=False),
    # The comment (several when it outgrows GitHub's limit), edited in place as it changes.
    Column("comment_ids", JSON, nullable=False),
    # Bumped whenever what the comment and statuses show changes; `posted_version` is what
    # GitHub shows now.
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("posted_version", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_pr_commands_pull", "pull_request_id", "id"),
)

# The dirspaces of a command, each run at most once for it, in depends_on layers.
pr_dirspaces = Table(
    "pr_dirspaces",
    metadata,
    Column("command_id", BigId, ForeignKey("pr_commands.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("dir", String(512), nullable=False),
    Column("workspace", String(128), nullable=False),
    Column("name", String(128), nullable=True),
    # The run workspace and state name (`github/OWNER/REPO/DIR.../WORKSPACE`).
    Column("state_workspace", String(512), nullable=False),
    Column("layer", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("run_id", BigId, ForeignKey("runs.id"), nullable=True),
    # An apply's plan: the plan run whose stored plan it applies.
    Column("plan_run_id", BigId, ForeignKey("runs.id"), nullable=True),
    Column("message", Text, nullable=True),
    # The commit status last posted for it (None: none yet).
    Column("posted_status", String(16), nullable=True),
    Index("ix_pr_dirspaces_run", "run_id"),
)

# Dirspace locks: one pull request at a time plans and applies a dirspace.
dirspace_locks = Table(
    "dirspace_locks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("repository", String(256), nullable=False),
    Column("dir", String(512), nullable=False),
    Column("workspace", String(128), nullable=False),
    Column("pull_request_id", BigId, ForeignKey("pull_requests.id"), nullable=False),
    Column("pull_number", Integer, nullable=False),
    Column("locked_by", String(128), nullable=False),
    Column("locked_at", UTCDateTime, nullable=False),
    UniqueConstraint("repository", "dir", "workspace", name="uq_dirspace_locks_dirspace"),
    Index("ix_dirspace_locks_pull", "pull_request_id"),
)
