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
