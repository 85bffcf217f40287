"""Change detection on a real checkout on disk: config -> dirspaces; changed files -> the
dirspaces they touch, through when_modified patterns and the local module graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from terraplane.domain.globs import glob_match
from terraplane.repoconfig.dirspaces import expand, layers
from terraplane.repoconfig.model import parse_terraplane
from terraplane.repoconfig.modules import (
    affected,
    module_dirs,
    module_graph,
    read_terraform_files,
)
from terraplane.repoconfig.yamlpos import ConfigError

TREE = {
    "modules/vpc/main.tf": 'resource "null_resource" "vpc" {}\n',
    "modules/app/main.tf": 'module "vpc" {\n  source = "../vpc"\n}\n',
    "modules/app/README.md": "docs\n",
    "stacks/web/main.tf": 'module "app" {\n  source = "../../modules/app"\n}\n',
    "stacks/api/main.tf.json": '{"module": {"vpc": {"source": "../../modules/vpc"}}}',
    "stacks/batch/main.tf": 'module "x" {\n  source = "hashicorp/consul/aws"\n}\n',
    "stacks/batch/README.md": "docs\n",
    "network/main.tf": 'module "evil" {\n  source = "../../../etc"\n}\n',
    "network/prod.tfvars": 'region = "eu"\n',
    ".github/workflows/x.tf": "# not terraform\n",
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name, text in TREE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def keys(dirspaces: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(d.key for d in dirspaces)


def test_globs() -> None:
    assert glob_match("stacks/*", "stacks/web") and not glob_match("stacks/*", "stacks/a/b")
    assert glob_match("**/*.tf", "main.tf") and glob_match("**/*.tf", "a/b/main.tf")
    assert glob_match("a/**/x.tf", "a/x.tf") and glob_match("a/**/x.tf", "a/b/c/x.tf")
    assert not glob_match("*.tf", "a/main.tf") and glob_match("main.tf?", "main.tfx")


def test_without_config_every_root_module_is_a_dirspace(checkout: Path) -> None:
    graph = module_graph(read_terraform_files(checkout, TREE))
    assert graph["stacks/web"] == {"modules/app"} and graph["modules/app"] == {"modules/vpc"}
    assert graph["stacks/api"] == {"modules/vpc"}  # JSON syntax too
    assert "network" not in graph  # a source leaving the repository is ignored
    dirspaces = expand(parse_terraplane(""), TREE, module_dirs(graph))
    assert keys(dirspaces) == [
        "network:default",
        "stacks/api:default",
        "stacks/batch:default",
        "stacks/web:default",
    ]


def test_module_changes_reach_their_users_transitively(checkout: Path) -> None:
    graph = module_graph(read_terraform_files(checkout, TREE))
    dirspaces = expand(parse_terraplane(""), TREE, module_dirs(graph))
    assert keys(affected(dirspaces, ["modules/vpc/main.tf"], graph)) == [
        "stacks/api:default",
        "stacks/web:default",
    ]
    assert keys(affected(dirspaces, ["modules/app/main.tf"], graph)) == ["stacks/web:default"]
    assert keys(affected(dirspaces, ["network/prod.tfvars"], graph)) == ["network:default"]
    assert affected(dirspaces, ["stacks/batch/README.md", "docs/index.md"], graph) == []


CONFIG = """\
dirs:
  - dir: "stacks/*"
    workspaces: [staging, prod]
    when_modified: ["**/*", "!README.md", "../../modules/**/*.tf"]
  - dir: network
    name: net
    depends_on: [stacks/web]
  - dir: modules/app
    name: app-module
    depends_on: [net]
"""


def test_configured_dirs_workspaces_and_patterns(checkout: Path) -> None:
    config = parse_terraplane(CONFIG)
    graph = module_graph(read_terraform_files(checkout, TREE))
    dirspaces = expand(config, TREE)
    assert keys(dirspaces) == [
        "modules/app:default",
        "network:default",
        "stacks/api:prod",
        "stacks/api:staging",
        "stacks/batch:prod",
        "stacks/batch:staging",
        "stacks/web:prod",
        "stacks/web:staging",
    ]
    # "!README.md" excludes what "**/*" matched; a module's .tf reaches every stack.
    assert affected(dirspaces, ["stacks/batch/README.md"], graph) == []
    touched = affected(dirspaces, ["stacks/batch/vars.tf"], graph)
    assert keys(touched) == ["stacks/batch:prod", "stacks/batch:staging"]
    assert len(affected(dirspaces, ["modules/vpc/main.tf"], graph)) == 7  # 3 stacks x 2, app

    order = [[d.key for d in layer] for layer in layers(dirspaces)]
    web = order.index(next(layer for layer in order if "stacks/web:prod" in layer))
    net = order.index(next(layer for layer in order if "network:default" in layer))
    app = order.index(next(layer for layer in order if "modules/app:default" in layer))
    assert web < net < app


@pytest.mark.parametrize(
    "text,problem",
    [
        ("dirs:\n  - dir: nowhere\n", "dir 'nowhere' holds no Terraform files"),
        ("dirs:\n  - dir: 'stacks/*'\n    name: one\n", "would name 3 dirspaces"),
        ("dirs:\n  - dir: network\n  - dir: network\n", "configured twice"),
        ("dirs:\n  - dir: network\n    depends_on: [ghost]\n", "which is no dirspace here"),
        (
            "dirs:\n  - dir: network\n    depends_on: [stacks/web]\n"
            "  - dir: stacks/web\n    depends_on: [network]\n",
            "cycle",
        ),
    ],
)
def test_config_that_does_not_fit_the_checkout_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        expand(parse_terraplane(text), TREE)
