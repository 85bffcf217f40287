"""Plan summaries from `terraform show -json`.

A summary holds resource addresses and actions only, never attribute values, so no sensitive
value can reach it."""

from __future__ import annotations

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
