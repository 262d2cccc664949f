"""`modbot scan` end to end against the Rekognition emulator and a local web server: folders with
bad files, URLs through the SSRF guard, the cache, --json, --compare and the exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest

from bot.__main__ import main
from tests.fakes.images import make_image, truncated
from tests.harness import CLEAN_COLOR, FLAG_COLOR, REVIEW_COLOR, Stack

GENITALIA_LINE = "Explicit \u203a Explicit Nudity \u203a Exposed Male Genitalia — 97.3% ▰▰▰▰▰▰▰▰▰▰"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]


async def scan(*args: str) -> Ran:
    """`modbot scan ARGS` in a thread with its own event loop, as the command runs it, while
    this loop keeps serving the emulator and web servers."""

    def run() -> Ran:
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(["scan", *args])
            except SystemExit as exc:  # argparse's own exit on bad arguments
                code = int(exc.code or 0)
        return Ran(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(run)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three images the emulator knows (flag, review, clean) in nested folders."""
    root = tmp_path / "pictures"
    (root / "holiday").mkdir(parents=True)
    (root / "flag.png").write_bytes(make_image(FLAG_COLOR))
    (root / "holiday" / "review.jpg").write_bytes(make_image(REVIEW_COLOR, fmt="JPEG"))
    (root / "holiday" / "clean.png").write_bytes(make_image(CLEAN_COLOR))
    (root / ".hidden.png").write_bytes(b"not looked at")
    return root


@pytest.fixture
def bad_files(folder: Path) -> Iterator[dict[str, str]]:
    """Files that cannot be scanned, each with the reason it must be named with."""
    bad = folder / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("shopping list")
    (bad / "broken.jpg").write_bytes(truncated(make_image(CLEAN_COLOR, fmt="JPEG")))
    (bad / "loop.jpg").symlink_to("loop.jpg")
    (bad / "dangling.png").symlink_to("gone.png")
    (bad / "up").symlink_to("..")  # back to the folder being walked
    # Unreadable even for root: reading /proc/self/mem at offset 0 fails with EIO.
    (bad / "unreadable.png").symlink_to("/proc/self/mem")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(bad / "socket.png"))
    yield {
        f"{bad}/notes.txt": "not an image",
        f"{bad}/broken.jpg": "truncated image",
        f"{bad}/loop.jpg": "symbolic link loop",
        f"{bad}/dangling.png": "broken symbolic link",
        f"{bad}/up": "symbolic link loop",
        f"{bad}/unreadable.png": "unreadable (Input/output error)",
        f"{bad}/socket.png": "not a regular file",
    }
    sock.close()


async def test_a_folder_prints_decisions_breakdowns_and_names_every_bad_file(
    stack: Stack, folder: Path, bad_files: dict[str, str]
) -> None:
    """Recursive scan: each image's decision and §5 breakdown lines, every bad file named with
    its reason, the summary table, exit 1; one Rekognition call per image."""
    ran = await scan(str(folder))
    assert ran.code == 1, ran.err
    out = ran.out
    assert f"Flagged: {folder}/flag.png\n  {GENITALIA_LINE}\n" in out
    assert "Weapons \u203a Weapons — 55.0%" not in out  # Weapons is an L2 under Violence
    assert "Violence \u203a Weapons — 55.0% ▰▰▰▰▰▰▱▱▱▱" in out
    assert "  Caused by: Exposed Male Genitalia (97.3%)" in out
    assert f"Needs review: {folder}/holiday/review.jpg\n" in out
    assert (
        "  Explicit \u203a Explicit Nudity \u203a Exposed Female Nipple — 72.4% ▰▰▰▰▰▰▰▱▱▱" in out
    )
    assert f"Allowed: {folder}/holiday/clean.png\n  No moderation labels found.\n" in out
    for path, reason in bad_files.items():
        assert f"Could not scan {path}: {reason}\n" in out
    assert ".hidden" not in out
    summary = out[out.index("Decision ") :].splitlines()
    assert [line.split()[-1] for line in summary[1:5]] == ["1", "1", "1", str(len(bad_files))]
    assert any(line.startswith("Exposed Male Genitalia") for line in summary)
    assert len(stack.aws.calls) == 3
    assert "7/10" in ran.err or "10/10" in ran.err  # the progress bar (more than a few images)


async def test_a_second_scan_reuses_the_stored_results(stack: Stack, folder: Path) -> None:
    """Same images again: no detector call at all, same decisions, marked as stored; exit 0."""
    first = await scan(str(folder))
    assert first.code == 0, first.out + first.err
    calls = len(stack.aws.calls)
    second = await scan(str(folder))
    assert second.code == 0
    assert len(stack.aws.calls) == calls == 3
    assert f"Flagged: {folder}/flag.png  (stored result, no detector call)" in second.out
    assert second.out.count("stored result") == 3


async def test_urls_go_through_the_ssrf_guard(stack: Stack) -> None:
    """An allowed host is fetched and scanned; a loopback address is refused before any
    connection, named with the address, and the command exits 1."""
    stack.web.add("/cat.png", make_image(REVIEW_COLOR))
    stack.target.add("/secret.png", make_image(FLAG_COLOR))
    allowed = f"{stack.web.url}/cat.png"
    refused = f"{stack.target.url}/secret.png"
    ran = await scan(allowed, refused, "http://169.254.169.254/latest/meta-data")
    assert ran.code == 1
    assert f"Needs review: {allowed}\n" in ran.out
    assert f"Could not scan {refused}: blocked address 127.0.0.1\n" in ran.out
    assert "Could not scan http://169.254.169.254/latest/meta-data: blocked address" in ran.out
    assert stack.target.hits == []
    assert len(stack.aws.calls) == 1


async def test_json_prints_one_object_per_image(
    stack: Stack, folder: Path, bad_files: dict[str, str]
) -> None:
    """--json: one parseable object per image, scanned or failed, and nothing else on stdout."""
    ran = await scan("--json", str(folder))
    assert ran.code == 1
    objects = ran.json_lines()
    assert len(objects) == 3 + len(bad_files)
    by_source = {str(o["source"]): o for o in objects}
    flagged = by_source[f"{folder}/flag.png"]
    assert flagged["decision"] == "flag"
    assert flagged["causes"] == ["Exposed Male Genitalia"]
    assert flagged["breakdown"][0] == GENITALIA_LINE  # type: ignore[index]
    assert flagged["detector"] == "rekognition"
    assert flagged["cached"] is False
    assert {"name": "Explicit", "parent": "", "level": 1, "confidence": 97.26} in flagged["labels"]  # type: ignore[operator]
    for path, reason in bad_files.items():
        assert by_source[path] == {"source": path, "status": "failed", "reason": reason}


async def test_compare_lists_the_images_whose_decision_differs(
    stack: Stack, folder: Path, tmp_path: Path
) -> None:
    """A stricter flag threshold backtested: one Rekognition call per image serves both
    policies, and only the image that changes is listed."""
    current = tmp_path / "current.toml"
    current.write_text("[defaults]\nreview = 50\nflag = 90\n")
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(
        '[defaults]\nreview = 50\nflag = 70\n[labels."Weapons"]\naction = "ignore"\n'
    )
    ran = await scan("--policy", str(current), "--compare", str(stricter), str(folder))
    assert ran.code == 0, ran.err
    assert len(stack.aws.calls) == 3
    lines = ran.out.splitlines()
    assert lines[lines.index(f"1 image decided differently under {stricter}:") :] == [
        f"1 image decided differently under {stricter}:",
        f"  {folder}/holiday/review.jpg: review -> flag",
    ]
    assert "  Under the compared policy: Flagged" in ran.out
    as_json = (await scan("--json", "--compare", str(stricter), str(folder))).json_lines()
    differs = [o["source"] for o in as_json if o["compared"]["differs"]]  # type: ignore[index]
    assert differs == [f"{folder}/holiday/review.jpg"]


async def test_channel_rules_apply_with_channel(stack: Stack, folder: Path, tmp_path: Path) -> None:
    """--channel decides as in that channel: its ignore rule turns the review into an allow."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[channels.C0ART]\nlabels."Exposed Female Nipple".action = "ignore"\n')
    image = str(folder / "holiday" / "review.jpg")
    assert "Needs review:" in (await scan("--policy", str(policy), image)).out
    assert "Allowed:" in (await scan("--policy", str(policy), "--channel", "C0ART", image)).out


async def test_bad_arguments_exit_2(stack: Stack, folder: Path, tmp_path: Path) -> None:
    """A missing path, an invalid policy, or no path at all: exit 2 before any scan."""
    missing = await scan(str(folder), str(tmp_path / "nope"))
    assert missing.code == 2
    assert missing.err.strip() == f"modbot: {tmp_path / 'nope'}: no such file or folder"
    bad_policy = tmp_path / "bad.toml"
    bad_policy.write_text('[labels."Explcit"]\nreview = 40\n')
    invalid = await scan("--compare", str(bad_policy), str(folder))
    assert invalid.code == 2
    assert 'unknown label "Explcit"' in invalid.err
    assert (await scan()).code == 2
    assert stack.aws.calls == []


def test_scan_needs_no_slack_settings_and_creates_its_database(tmp_path: Path) -> None:
    """A fresh directory, no Slack or AWS settings, the local detector: the real command
    scans a folder with the default SQLite database (./modbot.db) and exits 0."""
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "white.png").write_bytes(make_image((250, 250, 250)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWS_", "MODBOT_"))}
    env.pop("DATABASE_URL", None)
    env["MODBOT_DETECTOR"] = "nudenet"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "scan", "pictures"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Allowed: pictures/white.png\n  No moderation labels found.\n")
    assert "Model nudenet-3.4." in done.stdout
    assert (tmp_path / "modbot.db").exists()
