"""Starts the stand-ins and the bots under test as child processes, and always stops them.

Every process listens on 127.0.0.1 only. Children get SIGTERM if the benchmark dies (Linux
PR_SET_PDEATHSIG), and `Processes` stops them in reverse order on any exit, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MODBOT = str(Path(PYTHON).with_name("modbot"))

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token"  # what FakeSlack accepts
ALERTS = "C0ALERTS"
GENERAL = "C0GENERAL"
POSTER = "U0POSTER"

# Variables of the developer's own shell that must not reach the bots (real AWS or Slack).
_SCRUBBED_PREFIXES = ("AWS_", "SLACK_", "MODBOT_", "DATABASE_URL", "PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    return env


@dataclass
class Child:
    """One child process, its log file and (for stand-ins) the URL it printed."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} (pid {self.pid}) ignored SIGTERM for {grace}s; killing")
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class Processes:
    """Every child started in this run; `close()` stops them newest first."""

    workdir: Path
    children: list[Child] = field(default_factory=list)

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path | None = None,
        url_from_stdout: bool = False,
    ) -> Child:
        log_path = self.workdir / f"{name}.log"
        log: IO[bytes] = log_path.open("ab")
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd or ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if url_from_stdout else log,
            stderr=log,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads exist yet at spawn time
        )
        log.close()
        child = Child(name, proc, log_path)
        self.children.append(child)
        if url_from_stdout:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()
            if not line.startswith("http"):
                raise RuntimeError(f"{name} did not print its URL; log:\n{child.log_tail()}")
            child.url = line
            # Nothing more is read from the pipe; the stand-ins print only at start.
        return child

    def stop(self, child: Child, grace: float = 30.0) -> int | None:
        code = child.stop(grace)
        if child in self.children:
            self.children.remove(child)
        return code

    def close(self) -> None:
        while self.children:
            child = self.children.pop()
            with contextlib.suppress(Exception):
                child.stop(grace=10.0)


@contextlib.contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    """Children stopped on any exit; SIGTERM to the benchmark is treated like Ctrl-C."""
    procs = Processes(workdir)

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C raises KeyboardInterrupt even where SIGINT was inherited as ignored (`cmd &`).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield procs
    finally:
        procs.close()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


# ------------------------------------------------------------------------- the stand-ins


def start_fake_slack(procs: Processes, latency_ms: float) -> Child:
    argv = [PYTHON, "-m", "tests.fakes.slack", "--port", "0", "--latency-ms", str(latency_ms)]
    return procs.spawn("fake-slack", argv, env=base_env(), url_from_stdout=True)


def start_emulator(procs: Processes) -> Child:
    argv = [PYTHON, "-m", "tests.fakes.aws", "--port", "0"]
    return procs.spawn("aws-emulator", argv, env=base_env(), url_from_stdout=True)


def bot_env(slack_url: str, aws_url: str, tps: float, database: Path) -> dict[str, str]:
    """The same settings for modbot and the naive baseline: only the stand-ins differ from prod."""
    return {
        **base_env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{slack_url}/api/",
        "MODBOT_ALERT_CHANNEL": ALERTS,
        "MODBOT_REKOGNITION_TPS": f"{tps:g}",
        "DATABASE_URL": f"sqlite:///{database}",
        "AWS_ENDPOINT_URL_REKOGNITION": aws_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_A2I_RUNTIME": aws_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class BotProcess:
    """A bot under test (modbot or the naive baseline) serving signed Slack requests."""

    kind: str  # "modbot" or "naive"
    child: Child
    port: int

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


async def start_bot(
    procs: Processes,
    kind: str,
    *,
    slack_url: str,
    aws_url: str,
    tps: float,
    label: str,
    extra_env: dict[str, str] | None = None,
) -> BotProcess:
    """Start modbot (`modbot serve --http`) or the naive baseline, fresh database, and wait."""
    run_dir = procs.workdir / label
    repeat = 1
    while run_dir.exists():  # a repeated measurement: a fresh database, as for the first run
        repeat += 1
        run_dir = procs.workdir / f"{label}-{repeat}"
    label = run_dir.name
    run_dir.mkdir(parents=True)
    env = {**bot_env(slack_url, aws_url, tps, run_dir / "state.db"), **(extra_env or {})}
    port = free_port()
    if kind == "modbot":
        argv = [MODBOT, "serve", "--http", "--port", str(port)]
    else:
        argv = [PYTHON, "-m", "bench.naive", "--port", str(port)]
    # The checkout first on the path: an editable install made before a package gained its
    # __init__.py maps it as a namespace package, and `modbot` then fails to import handlers.
    env["PYTHONPATH"] = str(ROOT)
    # cwd is the run's own directory: no stray .env or modbot.db from the checkout is picked up.
    child = procs.spawn(f"{label}", argv, env=env, cwd=run_dir)
    bot = BotProcess(kind, child, port)
    await wait_healthy(bot)
    return bot


async def wait_healthy(bot: BotProcess, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not bot.child.alive():
                raise RuntimeError(f"{bot.child.name} exited at start:\n{bot.child.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(bot.health_url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{bot.child.name} not healthy in {within}s:\n{bot.child.log_tail()}")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process so far (its threads included), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After "pid (comm)": state is fields[0], so utime (14th field) and stime (15th) are 11, 12.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a live process, in KiB, from /proc."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found
