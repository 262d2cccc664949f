"""The reviewer directory adapter against the fake Slack: members, and failures as our own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import SlackUnavailable
from bot.adapters.slack_directory import SlackDirectory, members_of
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def directory(fake: FakeSlack) -> SlackDirectory:
    return SlackDirectory(AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, timeout=5))


async def test_a_groups_members_come_from_usergroups_users_list(
    fake: FakeSlack, directory: SlackDirectory
) -> None:
    """usergroups.users.list's `users`, as a set."""
    fake.add_usergroup("S1", ["U1", "U2"])
    assert await directory.group_members("S1") == frozenset({"U1", "U2"})
    (call,) = fake.calls_to("usergroups.users.list")
    assert call.params["usergroup"] == "S1"


async def test_an_unknown_group_is_slack_unavailable_not_transient(
    directory: SlackDirectory,
) -> None:
    """no_such_subteam: Slack cannot say who is in it, and asking again will not help."""
    with pytest.raises(SlackUnavailable, match="no_such_subteam") as caught:
        await directory.group_members("S404")
    assert caught.value.transient is False


async def test_slack_down_is_slack_unavailable_and_transient(
    fake: FakeSlack, directory: SlackDirectory
) -> None:
    """A 503 beyond slack_sdk's retries (or a dropped connection) is worth asking again."""
    fake.add_usergroup("S1", ["U1"])
    fake.start_outage(drop_connections=True)
    with pytest.raises(SlackUnavailable) as caught:
        await directory.group_members("S1")
    assert caught.value.transient is True


@pytest.mark.parametrize(
    ("answer", "members"),
    [
        ({"ok": True, "users": ["U1", "U2"]}, {"U1", "U2"}),
        ({"ok": True, "users": []}, set()),
        ({"ok": True}, set()),
        ({"ok": True, "users": ["U1", 7, None]}, {"U1"}),
        (["junk"], set()),
    ],
)
def test_members_are_parsed_from_the_answer(answer: object, members: set[str]) -> None:
    """Only string ids count; an odd answer gives nobody rather than an error."""
    assert members_of(answer) == frozenset(members)
