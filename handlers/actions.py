"""Review buttons on alerts: `modbot_review_violation` and `modbot_review_ok`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core import messages
from bot.orchestration.review import VoteResult
from bot.orchestration.services import Services

VIOLATION = messages.ACTION_VIOLATION
NO_VIOLATION = messages.ACTION_OK


def register(app: AsyncApp, services: Services) -> None:
    async def on_vote(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        votes = services.votes
        if votes is None:  # buttons from a time when the slack backend was configured
            await ack()
            await respond(
                text=messages.already_decided(), response_type="ephemeral", replace_original=False
            )
            return
        violation = action.get("action_id") == VIOLATION
        result = await votes.vote(str(action.get("value")), body["user"]["id"], violation)
        await ack()  # the vote is in the database before Slack hears back
        text = {
            VoteResult.REFUSED: messages.vote_refused(),
            VoteResult.CLOSED: messages.already_decided(),
            VoteResult.RECORDED: messages.vote_recorded(violation),
            VoteResult.DECIDED: None,  # the verdict itself is posted in the thread
        }[result]
        if text:
            await respond(text=text, response_type="ephemeral", replace_original=False)

    app.action(VIOLATION)(on_vote)
    app.action(NO_VIOLATION)(on_vote)
