"""The typed repository configuration and its parsers.

`.terraplane.yml` (documented in docs/repo-config.md) is read when present; otherwise an Atlantis
`atlantis.yaml` (version 3) is translated into the same model; with neither, every directory
holding `*.tf` files is a dirspace in workspace `default`. Every problem is reported as
`file:line: problem` (`ConfigError`), and a config with a problem runs nothing.
"""

from __future__ import annotations

import enum
import posixpath
import shlex
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terraplane.domain.pullrequests import Requirement
from terraplane.domain.runs import WorkflowStep
from terraplane.repoconfig.yamlpos import ConfigError, line_of, load

TERRAPLANE_FILE = ".terraplane.yml"
TERRAPLANE_FILES = (TERRAPLANE_FILE, ".terraplane.yaml")
ATLANTIS_FILES = ("atlantis.yaml", "atlantis.yml")
DEFAULT_WHEN_MODIFIED = ("**/*.tf", "**/*.tf.json", "**/*.tfvars", "**/.terraform.lock.hcl")


class LockPolicy(enum.StrEnum):
    STRICT = "strict"  # the first plan takes the dirspace's lock until merge, close or unlock
    APPLY = "apply"  # the lock is taken by the first apply
    NONE = "none"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_step(raw: Any) -> WorkflowStep:
    if isinstance(raw, str):
        if raw not in ("init", "plan", "apply"):
            raise ValueError(f"unknown step {raw!r}: expected init, plan, apply, run or env")
        return WorkflowStep(kind=raw)  # type: ignore[arg-type]
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError("a step is init, plan, apply, or a mapping with one key (run, env, ...)")
    kind, body = next(iter(raw.items()))
    if kind in ("init", "plan", "apply"):
        body = body or {}
        if not isinstance(body, dict) or set(body) - {"extra_args"}:
            raise ValueError(f"{kind} takes only extra_args")
        args = body.get("extra_args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError(f"{kind}.extra_args must be a list of strings")
        return WorkflowStep(kind=kind, extra_args=tuple(args))
    if kind == "run":
        if isinstance(body, str):
            try:
                argv = shlex.split(body)
            except ValueError as exc:
                raise ValueError(f"run: {exc}") from exc
        elif isinstance(body, list) and all(isinstance(a, str) for a in body):
            argv = list(body)
        else:
            raise ValueError("run must be a command line or a list of arguments")
        if not argv:
            raise ValueError("run needs a command")
        return WorkflowStep(kind="run", argv=tuple(argv))
    if kind == "env":
        if not isinstance(body, dict) or set(body) != {"name", "value"}:
            raise ValueError("env needs exactly name and value")
        return WorkflowStep(kind="env", name=str(body["name"]), value=str(body["value"]))
    raise ValueError(f"unknown step {kind!r}: expected init, plan, apply, run or env")


DEFAULT_PLAN = (WorkflowStep(kind="init"), WorkflowStep(kind="plan"))
DEFAULT_APPLY = (WorkflowStep(kind="apply"),)


class Stage(Strict):
    steps: tuple[WorkflowStep, ...]

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("steps must be a list")
        return tuple(item if isinstance(item, WorkflowStep) else parse_step(item) for item in value)


class Workflow(Strict):
    plan: Stage = Stage(steps=DEFAULT_PLAN)
    apply: Stage = Stage(steps=DEFAULT_APPLY)


class Hooks(Strict):
    pre_plan: Stage | None = None
    post_plan: Stage | None = None
    pre_apply: Stage | None = None
    post_apply: Stage | None = None


class Approvals(Strict):
    count: int = Field(default=1, ge=0, le=100)
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()


class Autoplan(Strict):
    enabled: bool = True
    draft_pull_requests: bool = False


class Parallelism(Strict):
    plan: int = Field(default=4, ge=1, le=100)
    apply: int = Field(default=1, ge=1, le=100)


def _relative(path: str, what: str) -> str:
    """A repository-relative path that cannot leave the checkout."""
    if path.startswith("/") or "\\" in path:
        raise ValueError(f"{what} {path!r} must be a relative path inside the repository")
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"{what} {path!r} leaves the repository")
    return normal


class DirConfig(Strict):
    dir: str
    name: str | None = None
    workspaces: tuple[str, ...] = ("default",)
    tags: tuple[str, ...] = ()
    when_modified: tuple[str, ...] = DEFAULT_WHEN_MODIFIED
    workflow: str | None = None
    engine: Literal["terraform", "tofu"] | None = None
    engine_version: str | None = None
    apply_requirements: tuple[Requirement, ...] | None = None
    depends_on: tuple[str, ...] = ()
    autoplan: bool | None = None

    @field_validator("dir")
    @classmethod
    def _dir(cls, value: str) -> str:
        return _relative(value, "dir")

    @field_validator("workspaces")
    @classmethod
    def _workspaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("workspaces must name at least one workspace")
        return value


class RepoConfig(Strict):
    """The whole configuration, defaults filled in."""

    version: Literal[1] = 1
    engine: Literal["terraform", "tofu"] = "terraform"
    engine_version: str | None = None
    autoplan: Autoplan = Autoplan()
    lock_policy: LockPolicy = LockPolicy.STRICT
    parallelism: Parallelism = Parallelism()
    apply_requirements: tuple[Requirement, ...] = ()
    approvals: Approvals = Approvals()
    apply_on_merge: bool = False
    allow_extra_args: bool = False
    # What a pull request's runs check out: the head merged into the base (what the merge will
    # be) or the head alone.
    checkout: Literal["merge", "head"] = "merge"
    dirs: tuple[DirConfig, ...] | None = None  # None: every directory with *.tf files
    workflows: dict[str, Workflow] = {}
    hooks: Hooks = Hooks()
    # Where this came from: .terraplane.yml, atlantis.yaml, or none.
    source: str = "none"

    def check_references(self, lines: dict[tuple[str | int, ...], int], file: str) -> None:
        names = [d.name for d in self.dirs or () if d.name]
        for i, d in enumerate(self.dirs or ()):
            if d.workflow is not None and d.workflow not in self.workflows:
                raise ConfigError(
                    file,
                    line_of(lines, ("dirs", i, "workflow")),
                    f"workflow {d.workflow!r} is not defined under workflows",
                )
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ConfigError(
                file, line_of(lines, ("dirs",)), f"duplicate name {sorted(duplicates)[0]!r}"
            )


def _parse_steps(
    data: dict[str, Any], lines: dict[tuple[str | int, ...], int], file: str
) -> dict[str, Any]:
    """Steps parsed where their line is known: `workflows.W.plan|apply.steps` and
    `hooks.H.steps`."""
    stages: list[tuple[tuple[str | int, ...], Any]] = []
    workflows = data.get("workflows")
    for name, workflow in workflows.items() if isinstance(workflows, dict) else ():
        for stage in ("plan", "apply"):
            if isinstance(workflow, dict) and isinstance(workflow.get(stage), dict):
                stages.append((("workflows", name, stage), workflow[stage]))
    hooks = data.get("hooks")
    for name, hook in hooks.items() if isinstance(hooks, dict) else ():
        if isinstance(hook, dict):
            stages.append((("hooks", name), hook))
    for path, stage in stages:
        items = stage.get("steps")
        if not isinstance(items, list):
            continue
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append(parse_step(item))
            except ValueError as exc:
                where = ".".join(str(p) for p in (*path, "steps", i))
                raise ConfigError(
                    file, line_of(lines, (*path, "steps", i)), f"{where}: {exc}"
                ) from exc
        stage["steps"] = parsed
    return data


def _validate(
    model: type[RepoConfig], data: Any, lines: dict[tuple[str | int, ...], int], file: str
) -> RepoConfig:
    if not isinstance(data, dict):
        raise ConfigError(file, line_of(lines, ()), "the file must be a mapping of settings")
    # `x-…` keys hold YAML anchors for reuse (`<<: *defaults`); they are not settings.
    data = _parse_steps({k: v for k, v in data.items() if not k.startswith("x-")}, lines, file)
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        raise ConfigError(
            file, line_of(lines, error["loc"]), f"{where}: {message}" if where else message
        ) from exc
    config.check_references(lines, file)
    return config


def parse_terraplane(text: str, file: str = TERRAPLANE_FILE) -> RepoConfig:
    data, lines = load(text, file)
    if data is None:
        return RepoConfig(source=file)
    if isinstance(data, dict) and "source" in data:
        raise ConfigError(file, line_of(lines, ("source",)), "source: unknown setting")
    config = _validate(RepoConfig, data, lines, file)
    return config.model_copy(update={"source": file})


_ATLANTIS_PROJECT_KEYS = {
    "name",
    "dir",
    "workspace",
    "autoplan",
    "terraform_version",
    "workflow",
    "apply_requirements",
    "plan_requirements",
    "import_requirements",
    "execution_order_group",
    "depends_on",
    "delete_source_branch_on_merge",
    "repo_locking",
    "repo_locks",
    "custom_policy_check",
    "silence_pr_comments",
    "branch",
}
_ATLANTIS_TOP_KEYS = {
    "version",
    "projects",
    "workflows",
    "automerge",
    "autodiscover",
    "parallel_plan",
    "parallel_apply",
    "abort_on_execution_order_fail",
    "delete_source_branch_on_merge",
    "allowed_regexp_prefixes",
}


def parse_atlantis(text: str, file: str = "atlantis.yaml") -> RepoConfig:
    """An Atlantis repo config (version 3) as Terraplane config. Atlantis settings without a
    Terraplane meaning (automerge, policy checks) are accepted and ignored."""
    data, lines = load(text, file)
    if not isinstance(data, dict):
        raise ConfigError(file, line_of(lines, ()), "the file must be a mapping of settings")
    if data.get("version") != 3:
        raise ConfigError(
            file, line_of(lines, ("version",)), "only atlantis.yaml version 3 is supported"
        )
    for key in data:
        if key not in _ATLANTIS_TOP_KEYS:
            raise ConfigError(file, line_of(lines, (key,)), f"{key}: unknown setting")
    projects = data.get("projects") or []
    if not isinstance(projects, list):
        raise ConfigError(file, line_of(lines, ("projects",)), "projects must be a list")
    groups: list[tuple[int, str]] = []
    dirs: list[dict[str, Any]] = []
    for i, project in enumerate(projects):
        if not isinstance(project, dict):
            raise ConfigError(file, line_of(lines, ("projects", i)), "a project is a mapping")
        for key in project:
            if key not in _ATLANTIS_PROJECT_KEYS:
                raise ConfigError(
                    file,
                    line_of(lines, ("projects", i, key)),
                    f"projects.{i}.{key}: unknown setting",
                )
        if "dir" not in project:
            raise ConfigError(
                file, line_of(lines, ("projects", i)), f"projects.{i}: dir is required"
            )
        autoplan = project.get("autoplan") or {}
        entry: dict[str, Any] = {
            "dir": project["dir"],
            "workspaces": [project.get("workspace", "default")],
            "depends_on": project.get("depends_on") or [],
        }
        if "name" in project:
            entry["name"] = project["name"]
        if "workflow" in project:
            entry["workflow"] = project["workflow"]
        if "terraform_version" in project:
            entry["engine_version"] = str(project["terraform_version"]).removeprefix("v")
        if "apply_requirements" in project:
            entry["apply_requirements"] = project["apply_requirements"]
        if isinstance(autoplan, dict):
            if "when_modified" in autoplan:
                entry["when_modified"] = autoplan["when_modified"]
            if "enabled" in autoplan:
                entry["autoplan"] = autoplan["enabled"]
        dirs.append(entry)
        groups.append((int(project.get("execution_order_group", 0)), project.get("name") or ""))
    # execution_order_group: a project runs after every project of a lower group.
    for entry, (group, _) in zip(dirs, groups, strict=True):
        earlier = [
            name or f"{d['dir']}:{d['workspaces'][0]}"
            for d, (g, name) in zip(dirs, groups, strict=True)
            if g < group
        ]
        entry["depends_on"] = list(dict.fromkeys([*entry["depends_on"], *earlier]))
    workflows: dict[str, Any] = {}
    raw_workflows = data.get("workflows") or {}
    if not isinstance(raw_workflows, dict):
        raise ConfigError(file, line_of(lines, ("workflows",)), "workflows must be a mapping")
    for name, workflow in raw_workflows.items():
        if not isinstance(workflow, dict):
            raise ConfigError(
                file, line_of(lines, ("workflows", name)), f"workflows.{name} must be a mapping"
            )
        workflows[name] = {k: v for k, v in workflow.items() if k in ("plan", "apply")}
    parallel = 4 if data.get("parallel_plan") else 1
    converted = {
        "dirs": dirs,
        "workflows": workflows,
        "parallelism": {"plan": parallel, "apply": 4 if data.get("parallel_apply") else 1},
    }
    # Line numbers: Terraplane's paths mostly mirror Atlantis's; map dirs.N to projects.N.
    mapped = dict(lines)
    for path, line in lines.items():
        if path[:1] == ("projects",):
            mapped[("dirs", *path[1:])] = line
    config = _validate(RepoConfig, converted, mapped, file)
    return config.model_copy(update={"source": file})


def parse_repo_config(files: dict[str, str]) -> RepoConfig:
    """The config from the repository's root files (name -> text): .terraplane.yml first, then
    atlantis.yaml, else the default."""
    for name in TERRAPLANE_FILES:
        if name in files:
            return parse_terraplane(files[name], name)
    for name in ATLANTIS_FILES:
        if name in files:
            return parse_atlantis(files[name], name)
    return RepoConfig()
