"""The GitHub App client against the local GitHub stand-in over real HTTP: JWTs the stand-in
verifies with the App's public key, installation tokens cached until shortly before expiry,
primary and secondary rate limits waited out as GitHub documents."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from terraplane.domain.errors import InvalidInput
from terraplane.github.app import GitHubApp, GitHubError
from tests.support.github import GitHubStandIn


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)  # the wait GitHub asked for, without spending it


@pytest.fixture
async def app(github: GitHubStandIn) -> AsyncIterator[tuple[GitHubApp, Clock]]:
    clock = Clock()
    github.clock = clock
    client = GitHubApp(
        github.app_id, github.private_key_pem, github.url, clock=clock, sleep=clock.sleep
    )
    try:
        yield client, clock
    finally:
        await client.close()


async def test_installation_token_is_exchanged_and_cached(
    app: tuple[GitHubApp, Clock], github: GitHubStandIn
) -> None:
    client, clock = app
    token = await client.installation_token(7)
    assert token.startswith("ghs_") and github.issued == [token]
    assert await client.installation_token(7) == token  # cached
    path, headers = github.requests[0][1], github.requests[0][2]
    assert path == "/app/installations/7/access_tokens"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"

    clock.offset = timedelta(minutes=54).total_seconds()  # 6 minutes left: still good
    assert await client.installation_token(7) == token
    clock.offset = timedelta(minutes=56).total_seconds()  # 4 minutes left: renewed
    renewed = await client.installation_token(7)
    assert renewed != token and github.issued == [token, renewed]
    assert await client.installation_token(8) not in (token, renewed)  # one per installation


async def test_a_jwt_signed_with_another_key_is_refused(github: GitHubStandIn) -> None:
    other = GitHubStandIn(app_id=github.app_id)
    client = GitHubApp(github.app_id, other.private_key_pem, github.url)
    try:
        with pytest.raises(GitHubError) as err:
            await client.installation_token(7)
        assert err.value.status == 401
    finally:
        await client.close()


@pytest.mark.parametrize("secondary", [False, True])
async def test_rate_limits_are_waited_out(
    app: tuple[GitHubApp, Clock], github: GitHubStandIn, secondary: bool
) -> None:
    client, clock = app
    github.rate_limit_next(secondary=secondary, wait=30)
    github.rate_limit_next(secondary=secondary, wait=30)
    token = await client.installation_token(7)
    assert token in github.issued
    assert len(clock.slept) == 2 and all(25 <= s <= 31 for s in clock.slept), clock.slept


async def test_a_rate_limit_too_long_to_wait_is_an_error(
    app: tuple[GitHubApp, Clock], github: GitHubStandIn
) -> None:
    client, _clock = app
    github.rate_limit_next(secondary=False, wait=3600)
    with pytest.raises(GitHubError, match="rate limited"):
        await client.installation_token(7)


def test_a_bad_private_key_is_named() -> None:
    with pytest.raises(InvalidInput, match="not a PEM private key"):
        GitHubApp("1", "not a key")
