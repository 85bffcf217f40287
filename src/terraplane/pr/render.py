"""A command's summary comment, in GitHub-flavoured Markdown.

One comment per command: a header, a table of dirspaces (result and +/~/- counts), then per
dirspace its plan folded in `<details>` as a `diff` block (Terraform's `+`, `-`, `~` moved to
the first column so GitHub colours them), or the tail of its log when it failed. Splitting above
GitHub's size limit is `github.markdown.split_markdown`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from terraplane.domain.commands import CommandKind
from terraplane.domain.pullrequests import CommandStatus, DirspaceStatus, Trigger
from terraplane.pr.commands import CommandRow, DirspaceRow

# A plan shown in a comment is cut beyond this (the full plan is in the run's log): GitHub
# comments are 64 KiB each, and a pull request should not get dozens of them.
MAX_PLAN_CHARS = 250_000
MAX_LOG_TAIL = 4_000

_ICONS = {
    DirspaceStatus.PENDING: "⏳",
    DirspaceStatus.RUNNING: "🔄",
    DirspaceStatus.SUCCEEDED: "✅",
    DirspaceStatus.FAILED: "❌",
    DirspaceStatus.CANCELLED: "⏹️",
    DirspaceStatus.SKIPPED: "⏭️",
    DirspaceStatus.BLOCKED: "🔒",
}
_DIFF_LINE = re.compile(r"^(\s*)(-/\+|\+/-|[+~-])(\s)")


@dataclass(frozen=True)
class RunView:
    status: str
    has_changes: bool | None
    plan_summary: dict[str, Any] | None
    plan_text: str | None
    error: str | None
    log_tail: str | None


def as_diff(plan: str) -> str:
    """Terraform's change markers moved to column 0 (`~` and replacements as `!`)."""
    out = []
    for line in plan.splitlines():
        match = _DIFF_LINE.match(line)
        if match:
            symbol = {"~": "!", "-/+": "!", "+/-": "!"}.get(match.group(2), match.group(2))
            # The marker moves to column 0; the text after it keeps its column.
            pad = " " * (len(match.group(2)) - 1)
            line = symbol + match.group(1) + pad + line[match.end(2) :]
        out.append(line)
    return "\n".join(out)


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _block(text: str, language: str = "") -> str:
    fence = _fence(text)
    return f"{fence}{language}\n{text}\n{fence}"


def _verb(kind: CommandKind, status: DirspaceStatus) -> str:
    if status is DirspaceStatus.SUCCEEDED:
        return "planned" if kind is CommandKind.PLAN else "applied"
    return status.value


def _counts(summary: dict[str, Any] | None) -> tuple[str, str, str]:
    if not summary:
        return "", "", ""
    return str(summary.get("add", 0)), str(summary.get("change", 0)), str(summary.get("destroy", 0))


def _result(kind: CommandKind, row: DirspaceRow, run: RunView | None) -> str:
    text = _verb(kind, row.status)
    if row.status is DirspaceStatus.SUCCEEDED and run is not None and kind is CommandKind.PLAN:
        text = "planned" if run.has_changes else "planned, no changes"
    if row.message and row.status is not DirspaceStatus.FAILED:
        text += f": {row.message}"
    return text.replace("|", "\\|").replace("\n", " ")


def _section(
    kind: CommandKind, row: DirspaceRow, run: RunView | None, link: str | None
) -> str | None:
    if run is None or row.status in (DirspaceStatus.PENDING, DirspaceStatus.RUNNING):
        return None
    icon = _ICONS[row.status]
    where = f"<code>{row.label}</code>"
    if row.status is DirspaceStatus.SUCCEEDED and run.plan_text is not None:
        headline = (run.plan_summary or {}).get("headline") or "planned"
        plan = run.plan_text
        if len(plan) > MAX_PLAN_CHARS:
            plan = plan[:MAX_PLAN_CHARS] + "\n… (cut here: the whole plan is in the run's log)"
        body = _block(as_diff(plan), "diff")
    elif row.status is DirspaceStatus.SUCCEEDED:
        headline = "applied" if kind is CommandKind.APPLY else "done"
        body = _block((run.log_tail or "").strip() or "(no output)")
    else:
        headline = f"{row.status.value}: {run.error or 'see the log'}"
        body = _block((run.log_tail or "").strip() or "(no output)")
    more = f"\n\n[Run {row.run_id}]({link})" if link else ""
    return f"<details><summary>{icon} {where}: {headline}</summary>\n\n{body}{more}\n\n</details>"


def _tally(kind: CommandKind, rows: list[DirspaceRow]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        key = _verb(kind, row.status)
        counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in counts.items())
    return f"{len(rows)} dirspace{'s' if len(rows) != 1 else ''}: {parts}"


def _footer(command: CommandRow, rows: list[DirspaceRow]) -> str:
    if command.kind is CommandKind.PLAN and command.status is not CommandStatus.RUNNING:
        planned = [r for r in rows if r.status is DirspaceStatus.SUCCEEDED]
        if planned:
            example = planned[0]
            flag = f"-d {example.dir}" + (
                f" -w {example.workspace}" if example.workspace != "default" else ""
            )
            return (
                "To apply these plans, comment `terraplane apply`; one dirspace: "
                f"`terraplane apply {flag}`. `terraplane unlock` releases this pull "
                "request's locks and discards its plans."
            )
    if command.kind is CommandKind.APPLY and command.status is CommandStatus.REFUSED:
        return "Nothing was applied. Fix the requirements above, then comment `terraplane apply`."
    return ""


def render(
    command: CommandRow,
    rows: list[DirspaceRow],
    runs: dict[int, RunView],
    run_link: Callable[[int], str | None],
) -> str | None:
    """The comment's body; None when the command has nothing to say (an autoplan that found
    no dirspace to plan)."""
    title = f"### Terraplane {command.kind.value} · `{command.head_sha[:7]}`"
    who = (
        "autoplan"
        if command.trigger is Trigger.AUTOPLAN
        else "apply on merge"
        if command.trigger is Trigger.MERGE
        else f"@{command.requested_by}: `terraplane {command.text}`"
    )
    if command.kind in (CommandKind.HELP, CommandKind.UNLOCK) or not rows:
        if not command.message:
            return None
        return f"{title}\n\n{who}\n\n{command.message}"
    lines = [title, "", f"{who} · **{_tally(command.kind, rows)}**", ""]
    if command.message:
        lines += [command.message, ""]
    lines += [
        "| | dirspace | result | add | change | destroy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        run = runs.get(row.run_id) if row.run_id else None
        add, change, destroy = _counts(run.plan_summary if run else None)
        lines.append(
            f"| {_ICONS[row.status]} | `{row.label}` | {_result(command.kind, row, run)} "
            f"| {add} | {change} | {destroy} |"
        )
    sections = [
        s
        for row in rows
        if (
            s := _section(
                command.kind,
                row,
                runs.get(row.run_id) if row.run_id else None,
                run_link(row.run_id) if row.run_id else None,
            )
        )
    ]
    body = "\n".join(lines)
    if sections:
        body += "\n\n" + "\n\n".join(sections)
    footer = _footer(command, rows)
    return body + (f"\n\n---\n{footer}" if footer else "")
