"""Plan summaries from `terraform show -json`.

A summary holds resource addresses and actions only, never attribute values, so no sensitive
value can reach it."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel


class ResourceChange(BaseModel):
    address: str
    actions: list[str]


class PlanSummary(BaseModel):
    add: int = 0
    change: int = 0
    destroy: int = 0
    outputs_changed: int = 0
    resources: list[ResourceChange] = []

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.outputs_changed)

    def headline(self) -> str:
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"


def summarize_plan(plan: dict[str, Any]) -> PlanSummary:
    """Count changes the way Terraform's own summary line does (a replace is +1 and -1)."""
    summary = PlanSummary()
    for rc in plan.get("resource_changes") or []:
        actions = list((rc.get("change") or {}).get("actions") or [])
        if actions in (["no-op"], ["read"]) or not actions:
            continue
        summary.add += "create" in actions
        summary.change += actions == ["update"]
        summary.destroy += "delete" in actions
        summary.resources.append(ResourceChange(address=str(rc.get("address")), actions=actions))
    for change in (plan.get("output_changes") or {}).values():
        if (change.get("actions") or ["no-op"]) != ["no-op"]:
            summary.outputs_changed += 1
    return summary


# Where the part of `terraform plan` output worth showing begins (the first one found), across
# Terraform 1.0 to 1.11 and OpenTofu.
_PLAN_START_MARKERS = (
    "Terraform will perform the following actions:",
    "OpenTofu will perform the following actions:",
    "Note: Objects have changed outside of",
    "Changes to Outputs:",
    "No changes.",
)
_PLAN_NOISE = (
    "Saved the plan to:",
    "To perform exactly these actions, run the following command to apply:",
    "terraform apply ",
    "tofu apply ",
    "─────",
)
MAX_PLAN_TEXT = 1_000_000


def plan_text(output: str) -> str:
    """The readable part of a `terraform plan` output: from the first action listing (or "No
    changes.") to the end, without the refresh lines before it and the how-to-apply hints
    after it. Output without a known marker (an error) is kept whole."""
    lines = output.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.strip().startswith(_PLAN_START_MARKERS)), 0
    )
    kept = [line for line in lines[start:] if not line.strip().startswith(_PLAN_NOISE)]
    text = "\n".join(kept).strip("\n")
    return text[:MAX_PLAN_TEXT]


_ACTION_START = (
    "Terraform will perform the following actions:",
    "OpenTofu will perform the following actions:",
)
# `# ADDRESS <phrase>` -> the actions `show -json` would list for it.
_PHRASES: tuple[tuple[str, list[str]], ...] = (
    (" will be created", ["create"]),
    (" will be destroyed", ["delete"]),
    (" will be updated in-place", ["update"]),
    (" must be replaced", ["delete", "create"]),
    (" will be replaced, as requested", ["delete", "create"]),
    (" will be read during apply", ["read"]),
    (" will no longer be managed by Terraform", ["forget"]),
    (" will no longer be managed by OpenTofu", ["forget"]),
)
_TOTALS = re.compile(r"^Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")
_OUTPUT_CHANGE = re.compile(r"^  [+~-] \S")


def summarize_plan_output(output: str) -> PlanSummary | None:
    """The summary of a plan from `terraform plan`'s own output, without a `show -json`
    process: addresses and actions from its `# ADDRESS will be ...` lines, counts from its
    `Plan:` line. None when the output is not one this reads (then ask `show -json`)."""
    lines = output.splitlines()
    summary = PlanSummary()
    start = next((i for i, line in enumerate(lines) if line.strip() in _ACTION_START), None)
    if start is not None:
        for line in lines[start + 1 :]:
            text = line.strip()
            if _TOTALS.match(text):
                break
            if not text.startswith("# ") or text.startswith("# ("):
                continue
            for phrase, actions in _PHRASES:
                if text.endswith(phrase):
                    if actions != ["read"]:
                        address = text[2 : -len(phrase)].removesuffix(" is tainted, so")
                        summary.resources.append(ResourceChange(address=address, actions=actions))
                    break
        totals = next((m for line in lines if (m := _TOTALS.match(line.strip()))), None)
        if totals is None:
            return None
        summary.add, summary.change, summary.destroy = (int(g) for g in totals.groups())
    elif not any(line.strip().startswith(("No changes.", "Changes to Outputs:")) for line in lines):
        return None
    in_outputs = False
    for line in lines:
        if line.startswith("Changes to Outputs:"):
            in_outputs = True
        elif in_outputs and _OUTPUT_CHANGE.match(line):
            summary.outputs_changed += 1
        elif in_outputs and line and not line.startswith(" "):
            in_outputs = False
    return summary
