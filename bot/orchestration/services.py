"""What the Slack handlers may use: the pipeline, the policy, and votes (slack backend)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.policy import Policy
from bot.orchestration.pipeline import Pipeline
from bot.orchestration.review import Votes


@dataclass
class Services:
    pipeline: Pipeline
    policy: Policy
    votes: Votes | None = None  # set when MODBOT_REVIEW_BACKEND=slack
