"""`modbot scan`'s pieces: a bounded window of scans in walk order, and the printed text."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from bot.core.errors import FetchBlocked, ScanFailed
from bot.core.messages import terminal
from bot.core.model import Decision, Detection, Label, Outcome
from bot.ops.scan_cli import IN_FLIGHT, _results
from bot.orchestration.local_scan import Scanned

NIPPLE = (
    Label("Explicit", "", 1, 72.44),
    Label("Explicit Nudity", "Explicit", 2, 72.44),
    Label("Exposed Female Nipple", "Explicit Nudity", 3, 72.44),
)


class CountingScanner:
    """Stands in for LocalScanner: records how many scans run at once; fails on 'bad' names."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0

    async def scan(self, source: str) -> Scanned:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.001 * (hash(source) % 5))  # finish out of order
            if "bad" in source:
                raise ScanFailed("not an image", source)
            detection = Detection(labels=(), model_version="m")
            return Scanned(source, "0" * 64, detection, Outcome(Decision.ALLOW), reused=False)
        finally:
            self.running -= 1


async def test_at_most_in_flight_scans_run_and_results_come_in_walk_order(tmp_path: Path) -> None:
    """200 files: never more than IN_FLIGHT scans at once, results in name order, failures
    returned (not raised) in their place."""
    names = [f"{i:03}{'-bad' if i % 50 == 7 else ''}.png" for i in range(200)]
    for name in names:
        (tmp_path / name).touch()
    scanner = CountingScanner()
    got = [
        (source, result)
        async for source, result in _results(scanner, [str(tmp_path)])  # type: ignore[arg-type]
    ]
    assert scanner.most == IN_FLIGHT
    assert [source for source, _ in got] == [f"{tmp_path}/{name}" for name in names]
    failed = [source for source, result in got if isinstance(result, ScanFailed)]
    assert len(failed) == 4
    assert all("bad" in source for source in failed)


def test_image_text_has_the_decision_the_breakdown_and_the_causes() -> None:
    """The per-image block: title and source, §5 breakdown lines, causes, model; notes for a
    stored result and a shadow channel."""
    from bot.core.model import ChannelMode

    outcome = Outcome(Decision.REVIEW, causes=(NIPPLE[2],), mode=ChannelMode.SHADOW)
    lines = terminal.image_text(
        "a.png", Detection(NIPPLE, "7.0"), outcome, reused=True, compared=Outcome(Decision.FLAG)
    )
    assert lines == [
        "Needs review: a.png  (channel in shadow mode; stored result, no detector call)",
        "  Explicit › Explicit Nudity › Exposed Female Nipple — 72.4% ▰▰▰▰▰▰▰▱▱▱",
        "  Caused by: Exposed Female Nipple (72.4%)",
        "  Under the compared policy: Flagged",
        "  Model 7.0",
    ]


def test_failures_are_worded_as_in_slack() -> None:
    """A refused URL reads as the bot's 'Could not scan' note does; JSON carries the reason."""
    error = FetchBlocked("http://10.0.0.1/x.png", "10.0.0.1")
    assert terminal.failure_text("http://10.0.0.1/x.png", error) == (
        "Could not scan http://10.0.0.1/x.png: blocked address 10.0.0.1"
    )
    assert terminal.failure_json("u", error) == {
        "source": "u",
        "status": "failed",
        "reason": "blocked address 10.0.0.1",
    }


def test_summary_counts_every_decision_and_label() -> None:
    """Every decision has a row (zeros included), then labels, most images first."""
    lines = terminal.summary_lines(
        Counter({Decision.FLAG: 2, Decision.ALLOW: 5}),
        Counter({"Weapons": 1, "Exposed Male Genitalia": 2}),
        failed=3,
    )
    assert [line.split()[-1] for line in lines[2:6]] == ["2", "0", "5", "3"]
    assert lines[7].startswith("Label")
    assert lines[8].startswith("Exposed Male Genitalia")
    assert lines[9].startswith("Weapons")
