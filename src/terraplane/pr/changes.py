"""The files a pull request changes: from GitHub's files API, or from git beyond its cap.

The API lists at most 3,000 files of a pull request (100 per page). A larger pull request's
files come from `git diff` between its base and head in the mirror, which has no cap. Renames
count for both their old and new paths (a module moved away affects its old users).
"""

from __future__ import annotations

from pathlib import Path

from terraplane.engine.checkouts import git
from terraplane.github.app import GitHubApp

API_FILE_LIMIT = 3000


async def changed_files_from_api(
    app: GitHubApp, installation_id: int, repo: str, number: int
) -> list[str]:
    files = await app.paginate(
        f"/repos/{repo}/pulls/{number}/files", installation_id=installation_id
    )
    paths: list[str] = []
    for item in files:
        if isinstance(item, dict):
            paths.extend(
                str(item[key]) for key in ("filename", "previous_filename") if item.get(key)
            )
    return sorted(set(paths))


async def changed_files_from_git(mirror: Path, base: str, head: str) -> list[str]:
    """Files changed by `head` since its merge base with `base` (what GitHub shows)."""
    out = await git("diff", "--name-status", "--no-renames", "-z", f"{base}...{head}", cwd=mirror)
    fields = [f for f in out.split("\0") if f]
    return sorted(set(fields[1::2]))


def listed_by_api(changed_count: int) -> bool:
    """Whether the files API lists all of a pull request's `changed_count` files."""
    return changed_count <= API_FILE_LIMIT
