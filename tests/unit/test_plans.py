"""Plan summaries count like Terraform's own summary line; redaction leaves no secret."""

from __future__ import annotations

import json

from terraplane.domain.plans import summarize_plan, summarize_plan_output

PLAN = {
    "format_version": "1.0",
    "resource_changes": [
        {"address": "a.new", "change": {"actions": ["create"], "after": {"x": 1}}},
        {"address": "a.upd", "change": {"actions": ["update"]}},
        {"address": "a.del", "change": {"actions": ["delete"]}},
        {"address": "a.rep", "change": {"actions": ["delete", "create"]}},
        {"address": "a.same", "change": {"actions": ["no-op"]}},
        {"address": "data.x", "change": {"actions": ["read"]}},
        {
            "address": "a.secret",
            "change": {
                "actions": ["update"],
                "before": {"password": "hunter2-old", "name": "db", "tags": ["t1", "s3cr3t"]},
                "after": {"password": "hunter2-new", "name": "db", "tags": ["t1", "s3cr3t"]},
                "before_sensitive": {"password": True, "tags": [False, True]},
                "after_sensitive": {"password": True, "tags": [False, True]},
            },
        },
    ],
    "output_changes": {
        "token": {"actions": ["create"], "after": "tok-value-1", "after_sensitive": True},
        "same": {"actions": ["no-op"], "after": 1},
    },
    "prior_state": {"values": {"password": "hunter2-old"}},
    "variables": {"password": {"value": "hunter2-new"}},
}


def test_summary_counts_a_replace_as_add_and_destroy() -> None:
    s = summarize_plan(PLAN)
    assert (s.add, s.change, s.destroy, s.outputs_changed) == (2, 2, 2, 1)
    assert [r.address for r in s.resources] == ["a.new", "a.upd", "a.del", "a.rep", "a.secret"]
    assert s.headline() == "2 to add, 2 to change, 2 to destroy"
    assert s.has_changes


def test_empty_plan_has_no_changes() -> None:
    assert not summarize_plan({"resource_changes": []}).has_changes


def test_summary_holds_no_values() -> None:
    text = json.dumps(summarize_plan(PLAN).model_dump())
    for secret in ("hunter2-old", "hunter2-new", "s3cr3t", "tok-value-1"):
        assert secret not in text


OTHER_ACTIONS = """\
OpenTofu will perform the following actions:

  # aws_instance.web will be updated in-place
  ~ resource "aws_instance" "web" {
      ~ instance_type = "t3.small" -> "t3.large"
    }

  # aws_instance.old is tainted, so must be replaced
-/+ resource "aws_instance" "old" {
    }

  # data.aws_ami.latest will be read during apply
  # (config refers to values not yet known)
 <= data "aws_ami" "latest" {
    }

  # module.app.aws_s3_bucket.logs["a b"] will be created
  + resource "aws_s3_bucket" "logs" {
    }

Plan: 2 to add, 1 to change, 1 to destroy.
"""


def test_a_summary_from_plan_output() -> None:
    summary = summarize_plan_output(OTHER_ACTIONS)
    assert summary is not None
    assert (summary.add, summary.change, summary.destroy) == (2, 1, 1)
    assert [(r.address, r.actions) for r in summary.resources] == [
        ("aws_instance.web", ["update"]),
        ("aws_instance.old", ["delete", "create"]),
        ('module.app.aws_s3_bucket.logs["a b"]', ["create"]),
    ]
    nothing = summarize_plan_output("No changes. Your infrastructure matches the configuration.")
    assert nothing is not None and not nothing.has_changes
    assert summarize_plan_output("Error: Invalid reference\n") is None  # ask show -json instead
