"""GitHub-flavoured Markdown for comments: splitting a body above GitHub's size limit without
breaking its markup.

GitHub refuses an issue comment longer than 65,536 characters. A longer body is cut at line
boundaries into parts; a part that ends inside a code fence or a `<details>` block closes them,
and the next part opens them again, so every part renders on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GITHUB_COMMENT_LIMIT = 65_536
# Room for the "part i of n" line and the markup closed and reopened at a cut.
_RESERVE = 1_024


@dataclass
class _Markup:
    fence: str | None = None  # the opening fence line, while inside a code block
    details: list[str] = field(default_factory=list)  # opening lines of open <details>

    def feed(self, line: str) -> None:
        stripped = line.strip()
        if self.fence is not None:
            ticks = len(self.fence) - len(self.fence.lstrip("`"))
            if stripped.startswith("`" * ticks) and not stripped.strip("`"):
                self.fence = None
            return
        if stripped.startswith("```"):
            self.fence = stripped
        elif stripped.startswith("<details"):
            self.details.append(stripped)
        elif stripped.startswith("</details>") and self.details:
            self.details.pop()

    def closing(self) -> str:
        text = ""
        if self.fence is not None:
            text = "\n" + "`" * (len(self.fence) - len(self.fence.lstrip("`"))) + "\n"
        return text + "\n</details>\n" * len(self.details)

    def reopening(self) -> str:
        text = "".join(f"{opening}\n\n" for opening in self.details)
        return text + (f"{self.fence}\n" if self.fence is not None else "")


def _pieces(line: str, size: int) -> list[str]:
    """A line longer than a part can hold, cut into pieces that fit."""
    return [line[i : i + size] for i in range(0, len(line), size)] or [line]


def split_markdown(body: str, limit: int = GITHUB_COMMENT_LIMIT) -> list[str]:
    """`body` as one or more comment bodies of at most `limit` characters each."""
    if len(body) <= limit:
        return [body]
    budget = limit - _RESERVE
    parts: list[str] = []
    markup = _Markup()
    current = ""
    for raw in body.splitlines(keepends=True):
        for line in _pieces(raw, budget // 2):
            if current and len(current) + len(line) + len(markup.closing()) > budget:
                parts.append(current.rstrip("\n") + markup.closing())
                current = markup.reopening()
            current += line
            markup.feed(line)
    if current.strip():
        parts.append(current)
    total = len(parts)
    return [
        (f"*(part {i} of {total})*\n\n" if i > 1 else "")
        + part
        + (f"\n\n*(continued in part {i + 1} of {total})*" if i < total else "")
        for i, part in enumerate(parts, start=1)
    ]
