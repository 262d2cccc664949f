"""The scale-out table, measured in one run: `python -m bench.scaleout [--quick]`.

- Images per second with 1, 2 and 4 `modbot serve` replicas on one PostgreSQL database, at a
  quota one process cannot reach (200 TPS, 200 ms per Rekognition call).
- The share of a quota of 50 that 4 replicas reach together, and whether they ever exceeded it.
- Ack latency under a 500-event burst, one process on PostgreSQL next to one on SQLite.

Each measurement gets a fresh database (a throwaway PostgreSQL database, or a new SQLite file),
fresh replicas and a reset emulator; events are spread round-robin over the replicas, as a load
balancer would. Needs a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres,
or --postgres-url / MODBOT_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import load
from bench.load import Sent, Upload, percentile
from bench.phases import Env, call_summary, configure_emulator, rekognition_calls
from bench.stack import BotProcess, processes, start_bot, start_emulator, start_fake_slack
from tests import postgres

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    parser.add_argument("--postgres-url", default=os.environ.get("MODBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--replicas", default="1,2,4", help="replica counts at the high quota")
    parser.add_argument("--high-tps", type=float, default=200.0)
    parser.add_argument("--low-tps", type=float, default=50.0)
    parser.add_argument("--low-replicas", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None, help="images = TPS x seconds")
    parser.add_argument("--burst", type=int, default=None, help="events in the ack burst")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rekognition-latency-ms", type=float, default=200.0)
    parser.add_argument("--slack-latency-ms", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (4.0 if args.quick else 10.0)
    args.burst = args.burst or (200 if args.quick else 500)
    args.replica_counts = [int(n) for n in args.replicas.split(",")]
    return args


async def replicated_run(
    env: Env,
    *,
    replicas: int,
    tps: float,
    uploads: Sequence[Upload],
    label: str,
    database_url: str,
) -> dict[str, Any]:
    """`replicas` bots on one database; one event per upload, spread over them; every alert."""
    await configure_emulator(env, tps)
    bots: list[BotProcess] = []
    try:
        for n in range(replicas):  # one at a time: the first applies the migrations
            bot = await start_bot(
                env.procs,
                "modbot",
                slack_url=env.slack_url,
                aws_url=env.aws_url,
                tps=tps,
                label=f"{label}-r{n}",
                extra_env={"DATABASE_URL": database_url},
            )
            bots.append(bot)
        since = time.time()
        shares = [list(uploads[n :: len(bots)]) for n in range(len(bots))]
        sent_lists = await asyncio.gather(
            *(
                load.send_events(
                    bot.events_url, share, concurrency=max(1, env.concurrency // len(bots))
                )
                for bot, share in zip(bots, shares, strict=True)
            )
        )
        sent: list[Sent] = [s for group in sent_lists for s in group]
        names = {u.name for u in uploads}
        posted = await load.wait_for_alerts(bots[0].health_url, env.slack_url, names, since)
        calls = await rekognition_calls(env)
    finally:
        for bot in bots:
            env.procs.stop(bot.child)
    alerted = sorted(posted.alerts[n] for n in names if n in posted.alerts)
    elapsed = alerted[-1] - min(s.sent_at for s in sent) if alerted else None
    rate = len(alerted) / elapsed if elapsed else None
    ok_times = [c["time"] for c in calls if not c["error"]]
    acks = [s.ack_seconds for s in sent]
    return {
        "replicas": replicas,
        "tps": tps,
        "database": database_url.split(":", 1)[0],
        "events": len(uploads),
        "alerts": len(alerted),
        "could_not_scan": len(posted.could_not_scan),
        "images_per_second": rate,
        "share_of_quota": rate / tps if rate else None,
        "most_calls_in_one_second": most_in_one_second(ok_times),
        "ack_p50_ms": _ms(percentile(acks, 50)),
        "ack_p99_ms": _ms(percentile(acks, 99)),
        "non_200_acks": sum(1 for s in sent if s.status != 200),
        "rekognition": call_summary(calls),
    }


def most_in_one_second(times: Sequence[float]) -> int:
    """The largest number of accepted calls in any half-open one-second window."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = postgres.server_url(args.postgres_url)
    problem = postgres.unreachable(server)
    if problem is not None:
        raise SystemExit(f"bench.scaleout needs PostgreSQL: {problem}")
    high_n = int(args.high_tps * args.seconds)
    low_n = int(args.low_tps * args.seconds)
    count = max(high_n, low_n, args.burst)
    print(f"making {count} distinct JPEGs ...", flush=True)
    images = await asyncio.to_thread(load.distinct_jpegs, count, (480, 360))
    results: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    with processes(workdir) as procs:
        slack = start_fake_slack(procs, args.slack_latency_ms)
        aws = start_emulator(procs)
        env = Env(procs, slack.url, aws.url, args.rekognition_latency_ms / 1000, args.concurrency)

        async def run(
            title: str, replicas: int, tps: float, n: int, database: str | None
        ) -> dict[str, Any]:
            # Names are bench-<letters>-NNNNN.jpg (bench.load.NAME): the title's letters only.
            prefix = "".join(c for c in title if c.isalpha()) + "abcdefghij"[replicas % 10]
            uploads = await load.upload_all(slack.url, prefix, images[:n])
            print(f"{title}: {replicas} replica(s), {n} events @ {tps:g} TPS ...", end=" ")
            started = time.monotonic()
            if database is None:
                with postgres.throwaway_database(server) as url:
                    out = await replicated_run(
                        env,
                        replicas=replicas,
                        tps=tps,
                        uploads=uploads,
                        label=title,
                        database_url=url,
                    )
            else:
                out = await replicated_run(
                    env,
                    replicas=replicas,
                    tps=tps,
                    uploads=uploads,
                    label=title,
                    database_url=database,
                )
            print(f"{time.monotonic() - started:.0f}s  {one_line(out)}", flush=True)
            return out

        for replicas in args.replica_counts:
            results[f"high_r{replicas}"] = await run(
                f"high-r{replicas}", replicas, args.high_tps, high_n, None
            )
        results["low"] = await run("low", args.low_replicas, args.low_tps, low_n, None)
        results["burst_postgresql"] = await run("burst-pg", 1, args.low_tps, args.burst, None)
        sqlite = f"sqlite:///{workdir / 'burst-sqlite.db'}"
        results["burst_sqlite"] = await run("burst-sqlite", 1, args.low_tps, args.burst, sqlite)
    return results


def one_line(out: dict[str, Any]) -> str:
    rate = out["images_per_second"]
    return (
        f"{out['alerts']}/{out['events']} alerted, {rate or 0:.1f} images/s,"
        f" max {out['most_calls_in_one_second']} calls in 1 s,"
        f" throttled {out['rekognition']['throttled']}, ack p99 {out['ack_p99_ms'] or 0:.0f} ms"
    )


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    base = results[f"high_r{args.replica_counts[0]}"]["images_per_second"] or 0.0
    rows = ["| Measure | Replicas | Result | Quota kept (max calls in 1 s) |", "|---|---|---|---|"]
    for replicas in args.replica_counts:
        out = results[f"high_r{replicas}"]
        rate = out["images_per_second"] or 0.0
        speedup = f" ({rate / base:.1f}× one replica)" if base else ""
        rows.append(
            f"| Images/s at {args.high_tps:g} TPS | {replicas} | {rate:.1f}/s{speedup} |"
            f" {out['most_calls_in_one_second']} ≤ {args.high_tps:g} |"
        )
    low = results["low"]
    rows.append(
        f"| Share of a {args.low_tps:g} TPS quota | {args.low_replicas} |"
        f" {(low['share_of_quota'] or 0) * 100:.1f} % ({low['images_per_second'] or 0:.1f}/s),"
        f" {low['could_not_scan']} shown to users, {low['rekognition']['throttled']} throttled |"
        f" {low['most_calls_in_one_second']} ≤ {args.low_tps:g} |"
    )
    for key, name in (("burst_postgresql", "PostgreSQL"), ("burst_sqlite", "SQLite")):
        out = results[key]
        rows.append(
            f"| Ack p50 / p99, {args.burst}-event burst, {name} | 1 |"
            f" {out['ack_p50_ms'] or 0:.0f} / {out['ack_p99_ms'] or 0:.0f} ms"
            f" ({out['non_200_acks']} not acked) | |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modbot-scaleout-") as tmp:
        results = asyncio.run(measure(args, Path(tmp)))
    text = table(results, args)
    (args.out / "scaleout.json").write_text(json.dumps(results, indent=2, default=str))
    (args.out / "scaleout.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
