"""Appeals: the Appeal button in the poster's direct message (`modbot_appeal`), its modal
(`modbot_appeal_submit`), and the votes on an appeal in the alert's thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.messages import appeal as texts
from bot.core.messages import removal as removal_texts
from bot.orchestration.appeal import AppealStart, AppealVote
from bot.orchestration.services import Services

_REFUSALS = {
    AppealStart.NOTHING: texts.nothing_to_appeal(),
    AppealStart.NOT_POSTER: texts.not_your_removal(),
    AppealStart.ALREADY: texts.already_appealed(),
}


def _reason(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    field = (values.get(texts.REASON_BLOCK) or {}).get(texts.REASON_ACTION) or {}
    return str(field.get("value") or "")


def register(app: AsyncApp, services: Services) -> None:
    async def on_appeal(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        appeals = services.appeals
        scan_id = str(action.get("value"))
        result = (
            await appeals.may_appeal(scan_id, body["user"]["id"])
            if appeals is not None
            else AppealStart.NOTHING
        )
        if result is AppealStart.OPEN:
            await client.views_open(trigger_id=body["trigger_id"], view=texts.appeal_modal(scan_id))
            return
        await respond(text=_REFUSALS[result], response_type="ephemeral", replace_original=False)

    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = _reason(view)
        problem = texts.reason_problem(reason)
        appeals = services.appeals
        if problem is None:
            result = (
                await appeals.submit(str(view.get("private_metadata")), body["user"]["id"], reason)
                if appeals is not None
                else AppealStart.NOTHING
            )
            problem = _REFUSALS.get(result)
        if problem is not None:
            await ack(response_action="errors", errors={texts.REASON_BLOCK: problem})
            return
        await ack()

    async def on_vote(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        appeals = services.appeals
        upheld = action.get("action_id") == texts.ACTION_UPHOLD
        result = (
            await appeals.vote(str(action.get("value")), body["user"]["id"], upheld)
            if appeals is not None
            else AppealVote.CLOSED
        )
        await ack()
        text = {
            AppealVote.REFUSED: texts.appeal_vote_refused(),
            AppealVote.CLOSED: texts.appeal_closed(),
            AppealVote.RECORDED: texts.appeal_vote_recorded(upheld),
            AppealVote.DECIDED: None,
        }[result]
        if text:
            await respond(text=text, response_type="ephemeral", replace_original=False)

    app.action(removal_texts.ACTION_APPEAL)(on_appeal)
    app.view(texts.APPEAL_CALLBACK)(on_submit)
    app.action(texts.ACTION_UPHOLD)(on_vote)
    app.action(texts.ACTION_OVERTURN)(on_vote)
