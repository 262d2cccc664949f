"""What the Slack handlers may use: the pipeline, the policy, and the Slack vote backend."""

from __future__ import annotations

from dataclasses import dataclass

from bot.pipeline import Pipeline
from bot.policy import Policy
from bot.review_slack import SlackVotes


@dataclass
class Services:
    pipeline: Pipeline
    policy: Policy
    votes: SlackVotes | None = None  # set when MODBOT_REVIEW_BACKEND=slack
