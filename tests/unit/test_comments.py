"""Comment bodies: plans as diffs, bodies split at GitHub's limit with intact markup, the plan
part of terraform's output, the scan of Terraform files for module sources and backends."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from terraplane.domain.plans import plan_text
from terraplane.github.markdown import GITHUB_COMMENT_LIMIT, split_markdown
from terraplane.pr.render import as_diff
from terraplane.repoconfig.hclscan import declares_backend, module_sources

PLAN_OUTPUT = """\
null_resource.a: Refreshing state... [id=123]

Terraform used the selected providers to generate the following execution
plan. Resource actions are indicated with the following symbols:
  + create
  ~ update in-place

Terraform will perform the following actions:

  # null_resource.b will be created
  + resource "null_resource" "b" {
      + id       = (known after apply)
      + triggers = {
          + "value" = "x"
        }
    }

  # null_resource.c must be replaced
-/+ resource "null_resource" "c" {
      ~ id = "1" -> (known after apply)
    }

Plan: 2 to add, 0 to change, 1 to destroy.

─────────────────────────────────────────────────────────────────────────────

Saved the plan to: terraplane.tfplan

To perform exactly these actions, run the following command to apply:
    terraform apply "terraplane.tfplan"
"""


def test_plan_text_keeps_the_actions_and_drops_the_noise() -> None:
    text = plan_text(PLAN_OUTPUT)
    assert text.startswith("Terraform will perform the following actions:")
    assert "Refreshing state" not in text and "Saved the plan" not in text
    assert "terraform apply" not in text
    assert text.rstrip().endswith("Plan: 2 to add, 0 to change, 1 to destroy.")
    assert plan_text("No changes. Your infrastructure matches the configuration.\n").startswith(
        "No changes."
    )
    assert plan_text("Error: bad\n") == "Error: bad"  # no marker: kept whole


def test_diff_moves_change_markers_to_the_first_column() -> None:
    lines = as_diff(plan_text(PLAN_OUTPUT)).splitlines()
    assert '+   resource "null_resource" "b" {' in lines
    assert "+       id       = (known after apply)" in lines
    assert any(line.startswith('!   resource "null_resource" "c"') for line in lines)
    assert any(line.startswith("!       id =") for line in lines)
    assert "  # null_resource.b will be created" in lines


def _balanced(part: str) -> bool:
    fences = [m for m in re.findall(r"^(`{3,})", part, re.M)]
    return len(fences) % 2 == 0 and part.count("<details>") == part.count("</details>")


def test_a_short_body_is_one_part() -> None:
    assert split_markdown("hello") == ["hello"]


def test_a_long_plan_is_split_without_breaking_fences_or_details() -> None:
    plan = "\n".join(f"+ resource line {i} " + "x" * 60 for i in range(3000))
    body = (
        "### Terraplane plan\n\n| a | b |\n| --- | --- |\n\n"
        "<details><summary>stacks/a</summary>\n\n```diff\n" + plan + "\n```\n\n</details>\n"
    )
    assert len(body) > GITHUB_COMMENT_LIMIT * 2
    parts = split_markdown(body)
    assert len(parts) >= 3
    for i, part in enumerate(parts, start=1):
        assert len(part) <= GITHUB_COMMENT_LIMIT
        assert _balanced(part), f"part {i} breaks its markup"
        if i > 1:
            assert part.startswith(f"*(part {i} of {len(parts)})*")
            assert "```diff" in part  # the code block opens again
    joined = "".join(parts)
    assert all(f"+ resource line {i} " in joined for i in (0, 1500, 2999))


def test_a_single_huge_line_is_cut() -> None:
    body = "```\n" + "y" * 200_000 + "\n```\n"
    parts = split_markdown(body)
    assert all(len(p) <= GITHUB_COMMENT_LIMIT and _balanced(p) for p in parts)
    assert sum(p.count("y") for p in parts) == 200_000


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="ab `<>/\n", max_size=3000),
            st.sampled_from(
                ["```diff\n", "```\n", "<details><summary>x</summary>\n", "</details>\n"]
            ),
        ),
        max_size=80,
    ),
    st.integers(min_value=4000, max_value=20000),
)
def test_parts_never_exceed_the_limit(pieces: list[str], limit: int) -> None:
    for part in split_markdown("".join(pieces), limit):
        assert len(part) <= limit


def test_module_sources_and_backends() -> None:
    text = """\
# a comment with module "fake" { source = "./nope" }
terraform {
  backend "s3" {
    bucket = "x"
  }
}

module "a" {
  source  = "../modules/a"
  name    = "${var.x}-a"
}

module "b" { source = "./b" }

module "registry" {
  source = "hashicorp/consul/aws"
}

resource "aws_iam_policy" "p" {
  policy = "arn:aws:s3:::bucket/*"
}
/* module "commented" {
  source = "./gone"
} */
"""
    assert module_sources(text) == ["../modules/a", "./b", "hashicorp/consul/aws"]
    assert declares_backend(text)
    assert not declares_backend('terraform {\n  required_version = ">= 1.0"\n}\n')
    assert declares_backend('terraform {\n  cloud {\n    organization = "x"\n  }\n}\n')
    assert module_sources('{"module": {"m": {"source": "./m"}}}', json_syntax=True) == ["./m"]
    assert declares_backend('{"terraform": {"backend": {"local": {}}}}', json_syntax=True)
