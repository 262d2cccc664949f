"""The benchmark: modbot against the naive sequential baseline, side by side, in one run.

Run: `.venv/bin/python -m bench.run` (about 5 minutes on 2 cores) or `--quick` (under 2).
Writes bench/results/results.json and results.md and prints the table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load, phases, report
from bench.phases import Env
from bench.stack import ROOT, processes, start_emulator, start_fake_slack

QUICK = {
    "seconds": 5.0,
    "naive_images": 20,
    "burst": 100,
    "light": 10,
    "reposts": 50,
    "rss_events": 300,
    "prep_runs": 5,
    "repeat": 1,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--tps", default="20,50,100", help="quotas to test (MODBOT_REKOGNITION_TPS)")
    p.add_argument("--seconds", type=float, default=20.0, help="throughput run: tps*s images")
    p.add_argument("--naive-images", type=int, default=60, help="naive throughput run size")
    p.add_argument("--burst", type=int, default=500, help="events in the ack/latency burst")
    p.add_argument("--burst-tps", type=float, default=50.0)
    p.add_argument("--light", type=int, default=20, help="events sent one at a time")
    p.add_argument("--light-interval", type=float, default=0.5, help="seconds between them")
    p.add_argument("--reposts", type=int, default=100, help="posts in the cache run")
    p.add_argument("--distinct", type=int, default=10, help="distinct images among them")
    p.add_argument("--rss-events", type=int, default=1000, help="scans queued for peak RSS")
    p.add_argument("--rss-tps", type=float, default=5.0, help="low quota so the queue builds")
    p.add_argument("--rss-hold", type=float, default=3.0, help="seconds sampled after sending")
    p.add_argument("--concurrency", type=int, default=50, help="client requests in flight")
    p.add_argument("--rekognition-latency-ms", type=float, default=200.0)
    p.add_argument("--slack-latency-ms", type=float, default=50.0)
    p.add_argument("--image-size", default="480x360", help="WxH of the uploaded JPEGs")
    p.add_argument("--prep-runs", type=int, default=20, help="timed runs per prep case")
    p.add_argument("--bots", default="modbot,naive", help="which bots to run")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement: median and spread reported"
    )
    p.add_argument(
        "--naive-repeat",
        type=int,
        default=1,
        help="runs per measurement of the naive baseline (slow; its figures are context)",
    )
    p.add_argument(
        "--phases",
        default="throughput,burst,light,reposts,rss",
        help="which measurements to run (image preparation always runs)",
    )
    p.add_argument(
        "--profile",
        metavar="PY_SPY",
        help="path of a py-spy executable: every modbot run is sampled into <out>/profiles/",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.quick:  # quick sizes, unless a flag was given explicitly
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv}
        for key, value in QUICK.items():
            if key not in given:
                setattr(args, key, value)
    args.tps_list = [float(x) for x in args.tps.split(",") if x]
    args.bot_list = [b for b in args.bots.split(",") if b]
    args.phase_list = [p for p in args.phases.split(",") if p]
    return args


def _git() -> dict[str, Any]:
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False).stdout

    changed = run("git", "status", "--porcelain", "--", "bot", "handlers").strip()
    return {"commit": run("git", "rev-parse", "HEAD").strip(), "product_code_dirty": bool(changed)}


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    print(f"image preparation ({args.prep_runs} runs per case) ...", flush=True)
    results["image_prep"] = await asyncio.to_thread(report.image_prep, args.prep_runs, args.repeat)

    pool_size = max(
        [int(t * args.seconds) for t in args.tps_list]
        + [args.burst, args.light, args.rss_events, args.naive_images, args.distinct]
    )
    size = load.image_size(args.image_size)
    print(f"making {pool_size} distinct {args.image_size} JPEGs ...", flush=True)
    images = await asyncio.to_thread(load.distinct_jpegs, pool_size, size)
    repost_bytes = [images[i % args.distinct] for i in range(args.reposts)]

    with processes(workdir) as procs:
        slack = start_fake_slack(procs, args.slack_latency_ms)
        aws = start_emulator(procs)
        print(f"fake Slack {slack.url}, AWS emulator {aws.url}; uploading ...", flush=True)
        pool = await load.upload_all(slack.url, "pool", images)
        repost_uploads = await load.upload_all(slack.url, "rp", repost_bytes)
        env = Env(
            procs,
            slack.url,
            aws.url,
            args.rekognition_latency_ms / 1000,
            args.concurrency,
            profiler=args.profile,
            profile_dir=args.out / "profiles",
        )

        async def each_bot(title: str, run: Any) -> dict[str, Any]:
            out = {}
            for kind in args.bot_list:
                runs = []
                repeat = args.repeat if kind == "modbot" else args.naive_repeat
                for n in range(repeat):
                    started = time.monotonic()
                    of = f" {n + 1}/{repeat}" if repeat > 1 else ""
                    print(f"{title} [{kind}{of}] ...", end=" ", flush=True)
                    runs.append(await run(kind))
                    took = time.monotonic() - started
                    print(f"{took:.0f}s  {report.one_line(runs[-1])}", flush=True)
                out[kind] = report.combine(runs)
            return out

        for tps in args.tps_list if "throughput" in args.phase_list else []:
            modbot_n = int(tps * args.seconds)

            def throughput(kind: str, tps: float = tps, n: int = modbot_n) -> Any:
                count = n if kind == "modbot" else args.naive_images
                return phases.scan_run(
                    env, kind, tps=tps, uploads=pool[:count], label=f"{kind}-tps{tps:g}"
                )

            title = f"throughput @ {tps:g} TPS"
            results[f"throughput_tps{tps:g}"] = await each_bot(title, throughput)

        wanted = args.phase_list
        if "burst" in wanted:
            results["burst"] = await each_bot(
                f"{args.burst}-event burst @ {args.burst_tps:g} TPS",
                lambda kind: phases.scan_run(
                    env, kind, tps=args.burst_tps, uploads=pool[: args.burst], label=f"{kind}-burst"
                ),
            )
        if "light" in wanted:
            results["light"] = await each_bot(
                f"{args.light} events, one every {args.light_interval:g}s",
                lambda kind: phases.scan_run(
                    env,
                    kind,
                    tps=args.burst_tps,
                    uploads=pool[: args.light],
                    label=f"{kind}-light",
                    interval=args.light_interval,
                ),
            )
        if "reposts" in wanted:
            results["reposts"] = await each_bot(
                f"{args.reposts} posts of {args.distinct} distinct images",
                lambda kind: phases.reposts(
                    env, kind, tps=args.burst_tps, uploads=repost_uploads, distinct=args.distinct
                ),
            )
        if "rss" in wanted:
            results["rss"] = await each_bot(
                f"peak RSS, {args.rss_events} scans queued @ {args.rss_tps:g} TPS",
                lambda kind: phases.memory_under_queue(
                    env,
                    kind,
                    tps=args.rss_tps,
                    uploads=pool[: args.rss_events],
                    hold=args.rss_hold,
                ),
            )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="modbot-bench-") as tmp:
        workdir = Path(tmp)
        try:
            figures = asyncio.run(measure(args, workdir))
        except KeyboardInterrupt:
            print("\ninterrupted; every child process was stopped")
            return 130
        except Exception:
            logs = args.out / "logs"
            logs.mkdir(exist_ok=True)
            for log in workdir.rglob("*.log"):
                (logs / log.name).write_bytes(log.read_bytes())
            print(f"failed; process logs copied to {logs}")
            raise
        logs = args.out / "logs"
        logs.mkdir(exist_ok=True)
        for log in workdir.glob("*.log"):
            (logs / log.name).write_bytes(log.read_bytes())
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "git": _git(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "figures": figures,
    }
    table = report.markdown(document)
    (args.out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "results.md").write_text(table)
    print()
    print(table)
    print(f"written: {args.out / 'results.json'}, {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
