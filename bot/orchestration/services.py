"""What the Slack handlers may use: the pipeline, the policy, and the Slack vote backend."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.policy import Policy
from bot.orchestration.pipeline import Pipeline
from bot.orchestration.slack_review import SlackVotes


@dataclass
class Services:
    pipeline: Pipeline
    policy: Policy
    votes: SlackVotes | None = None  # set when MODBOT_REVIEW_BACKEND=slack
