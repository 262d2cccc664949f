"""The top entries of a py-spy profile (`bench.run --profile`): where the bot's CPU went.

Run: `python -m bench.profile_top bench/results/profiles/modbot-tps50-*.txt [--top 25]`.
Reads py-spy's raw (folded) output: one stack per line, frames separated by `;`, then a count.
Prints the functions with the most samples on top of the stack (self) and anywhere in it
(total), as shares of all samples, and the packages the self samples fall in.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Leaf frames that are waits, not work. py-spy cannot always tell a blocked thread from a busy
# one (in containers it often cannot), so these are dropped unless --all is given: a thread
# waiting for its next job (aiosqlite's and the thread pools' queue.get), the event loop
# waiting in epoll, and a botocore thread waiting for the emulator's answer.
IDLE = (
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "_worker (concurrent/futures/thread.py:81)",
    "EpollSelector.select (selectors.py",
    "SocketIO.readinto (socket.py",
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
)


def function(frame: str) -> str:
    """'name (path/file.py:123)' -> 'name (path/file.py)': one entry per function, not per line."""
    match = FRAME.match(frame)
    return f"{match['name']} ({match['file']})" if match else frame


def package(frame: str) -> str:
    match = FRAME.match(frame)
    path = match["file"] if match else frame
    parts = [p for p in path.split("/") if p]
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if not parts:
        return "?"
    if parts[0] in ("bot", "handlers") and len(parts) > 1:
        return "/".join(parts[:2]).removesuffix(".py")
    return parts[0].removesuffix(".py") if len(parts) > 1 else f"stdlib:{parts[0]}"


def busy(stack: list[str]) -> bool:
    return bool(stack) and not stack[-1].startswith(IDLE)


def read(paths: Iterable[Path]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                # py-spy prints the thread first when asked; frames run outermost first.
                stacks.append(([f for f in stack.split(";") if f], int(count)))
    return stacks


def summary(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for frames, n in stacks:
        if not frames:
            continue
        own[function(frames[-1])] += n
        packages[package(frames[-1])] += n
        for name in {function(f) for f in frames}:
            anywhere[name] += n

    def table(title: str, counts: Counter[str]) -> list[str]:
        lines = [f"{title} (share of {total} samples)"]
        lines += [f"  {n / total * 100:5.1f} %  {name}" for name, n in counts.most_common(top)]
        return lines

    return "\n".join(
        [
            *table("self: on top of the stack", own),
            "",
            *table("total: anywhere in the stack", anywhere),
            "",
            *table("self, by package", packages),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--all", action="store_true", help="keep samples of waiting threads")
    args = parser.parse_args()
    stacks = read(args.profiles)
    if not args.all:
        stacks = [(frames, n) for frames, n in stacks if busy(frames)]
    print(summary(stacks, args.top))


if __name__ == "__main__":
    main()
