"""What the Slack handlers may use: the pipeline, the policy, votes (slack backend), the Home
tab, and removals and appeals (with SLACK_ADMIN_TOKEN)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.policy import Policy
from bot.orchestration.appeal import Appeals
from bot.orchestration.home import HomeTab
from bot.orchestration.pipeline import Pipeline
from bot.orchestration.removal import Removals
from bot.orchestration.review import Votes


@dataclass
class Services:
    pipeline: Pipeline
    policy: Policy
    votes: Votes | None = None  # set when MODBOT_REVIEW_BACKEND=slack
    home: HomeTab | None = None  # the App Home tab
    removals: Removals | None = None  # set with SLACK_ADMIN_TOKEN
    appeals: Appeals | None = None
