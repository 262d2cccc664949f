"""The A2I adapter's pure parts: what an event may tell, and where output may be read."""

from __future__ import annotations

import json

import pytest

from bot.adapters.a2i import event_loop_name
from bot.orchestration.a2i_review import flow_name, output_in_flow_location

LOOP = "modbot-0123456789abcdef"
FLOW = "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/image-moderation-fd"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (json.dumps({"detail": {"humanLoopName": LOOP, "humanLoopStatus": "Completed"}}), LOOP),
        (json.dumps({"detail": {"humanLoopName": LOOP, "humanLoopOutput": "junk"}}), LOOP),
        ("not json", None),
        ("[]", None),
        (json.dumps({"detail": ["junk"]}), None),
        (json.dumps({"detail": {"humanLoopName": 7}}), None),
        (json.dumps({"detail": {"humanLoopName": ""}}), None),
    ],
)
def test_an_event_only_names_the_loop_to_ask_about(body: str, name: str | None) -> None:
    """Malformed events give None (deleted); nothing but the loop name is taken from them."""
    assert event_loop_name(body) == name


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        (f"s3://out/reviews/image-moderation-fd/2025/03/04/10/12/31/{LOOP}/output.json", True),
        (f"s3://out/image-moderation-fd/2025/03/04/10/12/31/{LOOP}/output.json", True),
        (f"s3://attacker/x/image-moderation-fd/2025/03/04/10/12/31/{LOOP}/output.json", True),
        ("s3://attacker-bucket/out/output.json", False),
        (f"https://out/image-moderation-fd/2025/03/04/10/12/31/{LOOP}/output.json", False),
        (f"s3://out/other-fd/2025/03/04/10/12/31/{LOOP}/output.json", False),
        ("s3://out/image-moderation-fd/2025/03/04/10/12/31/modbot-other/output.json", False),
        (f"s3://out/image-moderation-fd/2025/03/04/{LOOP}/output.json", False),
        (f"s3://out/image-moderation-fd/2025/03/04/10/12/31/{LOOP}/output.json.evil", False),
    ],
)
def test_output_is_read_only_from_the_flow_definitions_layout(uri: str, ok: bool) -> None:
    """s3://, then <flow name>/YYYY/MM/DD/hh/mm/ss/<loop name>/output.json at the end."""
    assert output_in_flow_location(uri, flow_name(FLOW), LOOP) is ok
