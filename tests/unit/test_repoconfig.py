"""Repo config: .terraplane.yml and atlantis.yaml into typed config, errors with file and line."""

from __future__ import annotations

import pytest

from terraplane.domain.pullrequests import Requirement
from terraplane.domain.runs import WorkflowStep as Step
from terraplane.repoconfig.model import (
    LockPolicy,
    parse_atlantis,
    parse_repo_config,
    parse_terraplane,
)
from terraplane.repoconfig.yamlpos import ConfigError

FULL = """\
version: 1
engine: tofu
engine_version: "1.8.2"
lock_policy: apply
apply_on_merge: true
allow_extra_args: true
parallelism: {plan: 8, apply: 2}
autoplan:
  draft_pull_requests: true
apply_requirements: [approved, mergeable]
approvals: {count: 2, teams: [platform]}
x-defaults: &defaults
  workspaces: [default, staging]
dirs:
  - dir: "stacks/*"
    <<: *defaults
    tags: [app]
    when_modified: ["*.tf", "../modules/**/*.tf", "!README.md"]
    workflow: careful
  - dir: network
    name: net
    engine: terraform
    engine_version: 1.5.7
    apply_requirements: [undiverged, status_checks]
    autoplan: false
workflows:
  careful:
    plan:
      steps:
        - init: {extra_args: ["-upgrade"]}
        - run: tflint --format compact
        - env: {name: TF_LOG, value: WARN}
        - plan
    apply:
      steps: [apply]
hooks:
  pre_plan:
    steps: [{run: ["make", "fmt-check"]}]
"""


def test_a_full_config_is_typed() -> None:
    config = parse_terraplane(FULL)
    assert config.source == ".terraplane.yml"
    assert (config.engine, config.engine_version, config.lock_policy) == (
        "tofu",
        "1.8.2",
        LockPolicy.APPLY,
    )
    assert config.parallelism.plan == 8 and config.autoplan.draft_pull_requests
    assert config.apply_requirements == (Requirement.APPROVED, Requirement.MERGEABLE)
    assert config.approvals.count == 2 and config.approvals.teams == ("platform",)
    assert config.dirs is not None
    stacks, network = config.dirs
    assert stacks.workspaces == ("default", "staging") and stacks.tags == ("app",)
    assert network.engine_version == "1.5.7" and network.autoplan is False
    plan = config.workflows["careful"].plan.steps
    assert plan == (
        Step(kind="init", extra_args=("-upgrade",)),
        Step(kind="run", argv=("tflint", "--format", "compact")),
        Step(kind="env", name="TF_LOG", value="WARN"),
        Step(kind="plan"),
    )
    assert config.hooks.pre_plan is not None
    assert config.hooks.pre_plan.steps == (Step(kind="run", argv=("make", "fmt-check")),)


@pytest.mark.parametrize(
    "text,line,problem",
    [
        ("version: 1\nlock_policy: sometimes\n", 2, "lock_policy: Input should be"),
        ("version: 1\nflavour: mint\n", 2, "flavour: unknown setting"),
        ("dirs:\n  - dir: a\n  - dir: ../outside\n", 3, "leaves the repository"),
        ("dirs:\n  - dir: /etc\n", 2, "must be a relative path"),
        ("dirs:\n  - dir: a\n    workflow: nope\n", 3, "workflow 'nope' is not defined"),
        (
            "workflows:\n  w:\n    plan:\n      steps:\n        - init\n        - destroy\n",
            6,
            "workflows.w.plan.steps.1: unknown step 'destroy'",
        ),
        ("workflows:\n  w:\n    plan:\n      steps:\n        - run: 'a \"b'\n", 5, "run:"),
        ("dirs:\n  - dir: a\n    workspaces: []\n", 3, "at least one workspace"),
        ("version: 1\nversion: 1\n", 2, "duplicate key 'version'"),
        ("dirs: [\n", 2, "not valid YAML"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("apply_requirements: [approved, blessed]\n", 1, "apply_requirements.1"),
        ("dirs:\n  - name: a\n", 2, "dirs.0.dir: Field required"),
        ("version: 1\nworkflows: [a, b]\n", 2, "workflows: Input should be a valid dictionary"),
        ("hooks: 3\n", 1, "hooks: Input should be"),
    ],
)
def test_errors_name_file_line_and_problem(text: str, line: int, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_terraplane(text)
    assert (err.value.file, err.value.line) == (".terraplane.yml", line), str(err.value)
    assert problem in err.value.problem, str(err.value)
    assert str(err.value).startswith(f".terraplane.yml:{line}: ")


def test_an_empty_file_is_the_default() -> None:
    config = parse_terraplane("")
    assert config.dirs is None and config.lock_policy is LockPolicy.STRICT


ATLANTIS = """\
version: 3
automerge: true
parallel_plan: true
projects:
  - name: network
    dir: infra/network
    workspace: prod
    terraform_version: v1.5.7
    execution_order_group: 1
    autoplan:
      when_modified: ["*.tf", "../modules/**/*.tf"]
      enabled: true
  - name: app
    dir: infra/app
    workflow: custom
    apply_requirements: [mergeable, approved]
    execution_order_group: 2
  - dir: infra/dns
    depends_on: [network]
    execution_order_group: 1
    autoplan: {enabled: false}
workflows:
  custom:
    plan:
      steps:
        - init
        - run: terraform fmt -check
        - plan: {extra_args: ["-lock-timeout=5m"]}
    apply:
      steps: [apply]
"""


def test_atlantis_v3_is_honoured() -> None:
    config = parse_atlantis(ATLANTIS)
    assert config.source == "atlantis.yaml"
    assert config.parallelism.plan == 4 and config.parallelism.apply == 1
    assert config.dirs is not None
    network, app, dns = config.dirs
    assert (network.name, network.dir, network.workspaces) == (
        "network",
        "infra/network",
        ("prod",),
    )
    assert network.engine_version == "1.5.7"
    assert network.when_modified == ("*.tf", "../modules/**/*.tf")
    assert app.workflow == "custom"
    assert app.apply_requirements == (Requirement.MERGEABLE, Requirement.APPROVED)
    # A later execution_order_group runs after every project of an earlier one.
    assert app.depends_on == ("network", "infra/dns:default")
    assert dns.depends_on == ("network",) and dns.autoplan is False
    steps = config.workflows["custom"].plan.steps
    assert steps[1] == Step(kind="run", argv=("terraform", "fmt", "-check"))
    assert steps[2] == Step(kind="plan", extra_args=("-lock-timeout=5m",))


@pytest.mark.parametrize(
    "text,line,problem",
    [
        ("version: 2\nprojects: []\n", 1, "only atlantis.yaml version 3"),
        ("version: 3\nprojects:\n  - name: x\n", 3, "dir is required"),
        ("version: 3\nprojects:\n  - dir: x\n    colour: red\n", 4, "colour: unknown setting"),
        ("version: 3\nprojects:\n  - dir: x\n    workflow: gone\n", 4, "workflow 'gone'"),
        ("version: 3\nprojects:\n  - dir: ../x\n", 3, "leaves the repository"),
        ("version: 3\nworkflows: [x]\n", 2, "workflows must be a mapping"),
    ],
)
def test_atlantis_errors_name_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_atlantis(text)
    assert err.value.line == line and problem in err.value.problem, str(err.value)


def test_terraplane_config_wins_over_atlantis() -> None:
    both = {".terraplane.yml": "engine: tofu\n", "atlantis.yaml": "version: 3\nprojects: []\n"}
    assert parse_repo_config(both).engine == "tofu"
    only_atlantis = {"atlantis.yaml": "version: 3\nprojects: [{dir: a}]\n"}
    assert parse_repo_config(only_atlantis).source == "atlantis.yaml"
    assert parse_repo_config({}).source == "none"


def test_the_documented_example_is_valid() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "repo-config.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert example is not None
    config = parse_terraplane(example.group(1))
    assert config.dirs is not None and config.dirs[0].workspaces == ("staging", "prod")
