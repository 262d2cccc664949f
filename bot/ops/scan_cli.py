"""`modbot scan`: try a policy on local files, folders and URLs with no Slack (PRODUCT §12).

Exit 0 when every image was scanned, 1 when some could not be (each named with its reason), 2 on
bad arguments or settings. The images go through the bot's own fetch (SSRF rules), checks,
preparation, detector, detection cache (DATABASE_URL) and policy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import TextIO

from tqdm import tqdm

from bot.adapters import local_files
from bot.adapters.aws_credentials import aws_problems
from bot.adapters.database.scans import Store
from bot.adapters.detectors import REKOGNITION, build_detector, detector_problems
from bot.adapters.fetch import Fetcher
from bot.adapters.images.budget import DecodeBudget, install
from bot.core import taxonomy
from bot.core.errors import ConfigError, ScanFailed
from bot.core.messages import terminal
from bot.core.model import Decision, Outcome
from bot.core.policy import Policy, load_policy
from bot.ops import settings as ops_settings
from bot.orchestration.local_scan import LocalScanner, Scanned, is_url

FEW = 3  # more images than this get a progress bar
IN_FLIGHT = 8  # images read, fetched or detected at once (results still print in order)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = commands.add_parser(
        "scan",
        help="scan local files, folders (recursively) and URLs with the configured detector "
        "and policy, without Slack",
    )
    scan.add_argument("--policy", default=None, metavar="FILE", help="policy TOML to apply")
    scan.add_argument("--channel", default=None, metavar="ID", help="decide as in this channel")
    scan.add_argument("--json", action="store_true", help="one JSON object per image")
    scan.add_argument(
        "--compare",
        default=None,
        metavar="FILE",
        help="also decide under this policy and list the images whose decision differs",
    )
    scan.add_argument("sources", nargs="+", metavar="PATH_OR_URL")


def run(args: argparse.Namespace) -> int:
    """Exit code; ConfigError (exit 2) is left to the caller."""
    settings = ops_settings.load(ops_settings.ScanSettings)
    policy = load_policy(args.policy or settings.policy_file)
    compare = load_policy(args.compare) if args.compare else None
    problems = [
        f"{source}: no such file or folder"
        for source in args.sources
        if not is_url(source) and not os.path.lexists(source)
    ]
    problems += detector_problems(settings.detector.value)
    if settings.detector.value == REKOGNITION:
        problems += aws_problems(settings.region)
    if problems:
        raise ConfigError(problems)
    try:
        return asyncio.run(_scan(args, settings, policy, compare))
    except KeyboardInterrupt:
        print("modbot: scan interrupted; what was scanned is stored", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `modbot scan DIR | head`: the reader stopped, the scan did too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


async def _scan(
    args: argparse.Namespace,
    settings: ops_settings.ScanSettings,
    policy: Policy,
    compare: Policy | None,
) -> int:
    async with AsyncExitStack() as stack:
        install(DecodeBudget(settings.decode_memory_mb * 1024 * 1024))
        store = Store.from_url(settings.sqlalchemy_url)
        stack.push_async_callback(store.close)
        await store.upgrade()
        fetcher = await stack.enter_async_context(
            Fetcher(
                token_origins=(),
                trusted_origins=(),
                allow_networks=settings.allow_private_networks,
                max_bytes=settings.max_download_bytes,
            )
        )
        detector = build_detector(
            settings.detector.value,
            store.engine,
            region=settings.region,
            tps=settings.rekognition_tps,
        )
        stack.callback(detector.close)

        async def read(path: str) -> bytes:
            return await asyncio.to_thread(local_files.read_file, path, settings.max_download_bytes)

        scanner = LocalScanner(
            cache=store,
            fetcher=fetcher,
            detector=detector,
            policy=policy,
            channel=args.channel,
            compare=compare,
            read_file=read,
            link_timeout=settings.link_timeout_seconds,
        )
        report = Report(sys.stdout, json_lines=args.json, compared_with=args.compare)
        total = await asyncio.to_thread(_count, args.sources)
        with tqdm(
            total=total,
            unit="image",
            file=sys.stderr,
            disable=total <= FEW,
            mininterval=0.5,
            dynamic_ncols=True,
        ) as progress:
            async for source, result in _results(scanner, args.sources):
                progress.clear()
                report.add(source, result, detector.name)
                progress.update(1)
        report.finish()
        return 1 if report.failed else 0


def _count(sources: list[str]) -> int:
    return sum(1 if is_url(source) else local_files.count([source]) for source in sources)


def _entries(sources: list[str]) -> Iterator[local_files.Found]:
    for source in sources:
        if is_url(source):
            yield local_files.Found(source)
        else:
            yield from local_files.walk(source)


async def _results(
    scanner: LocalScanner, sources: list[str]
) -> AsyncIterator[tuple[str, Scanned | ScanFailed]]:
    """Each entry's result in walk order, with up to IN_FLIGHT scans under way at once; the
    walk advances only as results are taken, so memory holds IN_FLIGHT images at most."""

    async def one(found: local_files.Found) -> Scanned | ScanFailed:
        if found.problem is not None:
            return ScanFailed(found.problem, found.path)
        try:
            return await scanner.scan(found.path)
        except ScanFailed as exc:
            return exc

    window: deque[tuple[str, asyncio.Task[Scanned | ScanFailed]]] = deque()
    try:
        for found in _entries(sources):
            window.append((found.path, asyncio.create_task(one(found))))
            if len(window) >= IN_FLIGHT:
                source, task = window.popleft()
                yield source, await task
        while window:
            source, task = window.popleft()
            yield source, await task
    finally:
        for _, task in window:
            task.cancel()


class Report:
    """Prints each result as it comes and keeps the counts for the summary."""

    def __init__(self, out: TextIO, *, json_lines: bool, compared_with: str | None) -> None:
        self._out = out
        self._json = json_lines
        self._compared_with = compared_with
        self.failed = 0
        self._decisions: Counter[Decision] = Counter()
        self._labels: Counter[str] = Counter()
        self._differences: list[tuple[str, Outcome, Outcome]] = []

    def add(self, source: str, result: Scanned | ScanFailed, detector: str) -> None:
        if isinstance(result, ScanFailed):
            self.failed += 1
            if self._json:
                self._print(json.dumps(terminal.failure_json(source, result)))
            else:
                self._print(terminal.failure_text(source, result))
            return
        self._decisions[result.outcome.decision] += 1
        self._labels.update(label.name for label in taxonomy.deepest(result.detection.labels))
        if result.differs and result.compared is not None:
            self._differences.append((source, result.outcome, result.compared))
        if self._json:
            found = terminal.image_json(
                source,
                result.detection,
                result.outcome,
                sha256=result.sha256,
                detector=detector,
                reused=result.reused,
                compared=result.compared,
            )
            self._print(json.dumps(found, ensure_ascii=False))
            return
        lines = terminal.image_text(
            source,
            result.detection,
            result.outcome,
            reused=result.reused,
            compared=result.compared,
        )
        self._print("\n".join(lines))

    def finish(self) -> None:
        if self._json:
            return
        lines = terminal.summary_lines(self._decisions, self._labels, self.failed)
        if self._compared_with is not None:
            lines += terminal.comparison_lines(self._compared_with, self._differences)
        self._print("\n".join(lines))

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)
