"""What the Slack handlers may use: pipeline, policy, votes (slack backend), the Home tab."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.policy import Policy
from bot.orchestration.home import HomeTab
from bot.orchestration.pipeline import Pipeline
from bot.orchestration.review import Votes


@dataclass
class Services:
    pipeline: Pipeline
    policy: Policy
    votes: Votes | None = None  # set when MODBOT_REVIEW_BACKEND=slack
    home: HomeTab | None = None  # the App Home tab
