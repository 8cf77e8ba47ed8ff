"""Load benchmark: the provider served as production serves it, on one core, under N concurrent clients.

The server (gunicorn ``wsgi:app --workers 1 --threads 4``, or the peer) is
pinned to core 0, this load generator and its SMTP server to core 1. Per
scenario: seeding (logins whose tokens the scenario uses), a warm-up, then a
timed window; requests/s, logins/s, p50/p95/p99 and errors are printed as a
table and appended, one JSON line per scenario, to
``bench/results/<date>-<backend>.jsonl``. Argon2id verifications per second at
the production cost are measured on core 0 in the same run, and every login
figure is given as a fraction of it.

    make bench                          # SQLite
    make bench BACKEND=postgresql       # PostgreSQL (database bench_h, recreated)
    make bench-peer                     # the same load against panva's oidc-provider
    .venv/bin/python bench/run.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from loadgen import SCENARIOS, Mailbox, discover, run_scenario
from targets import ROOT, SERVER_CORE, start_idp, start_peer, temporary_dir

LOADGEN_CORE = 1
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["idp", "peer", "both"], default="idp",
                        help="idp (default), peer (oidc-provider alone) or both, one after the other, with ratios")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a throw-away file, default), postgresql (database bench_h on 127.0.0.1, "
                             "recreated) or a SQLAlchemy URL (a PostgreSQL database whose name starts with 'bench', "
                             "recreated)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent virtual users (default 16)")
    parser.add_argument("--duration", type=float, default=10, help="timed window per scenario, seconds (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up per scenario, seconds (default 2)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, among: {', '.join(SCENARIOS)}")
    parser.add_argument("--argon2-seconds", type=float, default=2)
    parser.add_argument("--no-save", action="store_true", help="print only, append nothing to bench/results/")
    args = parser.parse_args()
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")

    os.sched_setaffinity(0, {LOADGEN_CORE})  # the load generator and its SMTP server: the other core
    argon2 = measure_argon2(args.argon2_seconds)
    print(f"Argon2id m={argon2['memory_cost_kib']} KiB t={argon2['time_cost']} p={argon2['parallelism']} on core "
          f"{SERVER_CORE}: {argon2['verifications_per_s']:.1f} verifications/s "
          f"({argon2['ms_per_verification']:.1f} ms each)")

    targets = ["idp", "peer"] if args.target == "both" else [args.target]
    all_results = {}
    for which in targets:
        all_results[which] = run_loop(bench(which, names, args, argon2))
    if len(targets) == 2:
        print_ratios(all_results["idp"], all_results["peer"])


async def bench(which: str, names: list[str], args, argon2: dict) -> dict[str, dict]:
    work = temporary_dir()
    mailbox = Mailbox()
    smtp_port = await mailbox.start()
    if which == "idp":
        server, target, accounts = start_idp(args.database, f"smtp://127.0.0.1:{smtp_port}?timeout=10", work,
                                             args.clients)
    else:
        server, target, accounts = start_peer(work, args.clients)
    results: dict[str, dict] = {}
    try:
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         cookie_jar=aiohttp.DummyCookieJar()) as http:
            target.meta.update(await discover(http, target.base))
            target.meta["mailbox"] = mailbox
            idle = server.memory()
            backend = target.meta["backend"]
            print(f"\n{target.name} ({target.meta['server']}; {backend}), worker pid {server.worker_pid()} "
                  f"pinned to core {SERVER_CORE}, {idle['rss_mib']} MiB idle; {args.clients} clients on core "
                  f"{LOADGEN_CORE}; warm-up {args.warmup:g} s, window {args.duration:g} s")
            header(argon2)
            for name in names:
                skipped = target.supports.get(name)
                if skipped:
                    results[name] = {"skipped": skipped}
                    row(name, results[name], argon2)
                    continue
                figures = await run_scenario(target, SCENARIOS[name], accounts, http, args.warmup, args.duration,
                                             server.cpu_seconds)
                if figures["unit"] == "login":
                    figures["argon2_fraction"] = round(figures["ops_per_s"] / argon2["verifications_per_s"], 3)
                results[name] = figures
                row(name, figures, argon2)
            memory = server.memory()
        print(f"\nWorker memory: {memory['rss_mib']} MiB now, peak {memory['peak_rss_mib']} MiB (VmHWM); "
              f"idle before the load {idle['rss_mib']} MiB; {mailbox.received} mails received.")
    finally:
        server.stop()
        mailbox.stop()
    if not args.no_save:
        save(target, results, args, argon2, idle, memory)
    return results


def run_loop(coroutine):
    """uvloop when installed (the ``bench`` extras): the load generator's core goes further with it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def measure_argon2(seconds: float) -> dict:
    out = subprocess.run(["taskset", "-c", SERVER_CORE, sys.executable, str(Path(__file__).with_name("argon2_rate.py")),
                          "--seconds", str(seconds)], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={k: v for k, v in os.environ.items() if not k.startswith("IDP_ARGON2_")})
    return json.loads(out.stdout)


def header(argon2: dict) -> None:
    print(f"{'scenario':<20}{'req/s':>9}{'logins/s':>10}{'×argon2':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}{'server cpu':>12}{'loadgen cpu':>13}")


def row(name: str, f: dict, argon2: dict) -> None:
    if "skipped" in f:
        print(f"{name:<20}  skipped: {f['skipped']}")
        return
    logins = f"{f['ops_per_s']:.2f}" if f["unit"] == "login" else ""
    fraction = f"{f['argon2_fraction']:.2f}" if f["unit"] == "login" else ""
    ms = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    print(f"{name:<20}{f['requests_per_s']:>9.1f}{logins:>10}{fraction:>9}{ms(f['p50_ms']):>9}{ms(f['p95_ms']):>9}"
          f"{ms(f['p99_ms']):>9}{f['errors']:>8}{f.get('server_cpu', 0):>12.0%}{f['loadgen_cpu']:>13.0%}")
    for message, count in f.get("error_samples", {}).items():
        print(f"    {count} × {message}")


def print_ratios(idp: dict, peer: dict) -> None:
    print(f"\n{'scenario':<20}{'idp req/s':>11}{'peer req/s':>12}{'idp/peer':>10}")
    for name, f in idp.items():
        p = peer.get(name, {})
        if "requests_per_s" in f and "requests_per_s" in p and p["requests_per_s"]:
            print(f"{name:<20}{f['requests_per_s']:>11.1f}{p['requests_per_s']:>12.1f}"
                  f"{f['requests_per_s'] / p['requests_per_s']:>10.2f}")


def save(target, results: dict, args, argon2: dict, idle: dict, memory: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    backend = target.meta["backend"] if target.name == "idp" else "peer"
    path = RESULTS / f"{now:%Y-%m-%d}-{backend}.jsonl"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    # Uncommitted changes under idp/ are what was served: the commit alone would not say so.
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "idp", "wsgi.py", "gunicorn.conf.py"],
                                capture_output=True, text=True, cwd=ROOT).stdout.strip())
    common = {
        "at": now.isoformat(timespec="seconds"), "target": target.name, "backend": backend, "commit": commit,
        "uncommitted_changes": dirty,
        "server": target.meta["server"], "clients": args.clients, "warmup_s": args.warmup,
        "duration_s": args.duration, "cpus": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(), "argon2_per_s": argon2["verifications_per_s"],
        "loadavg_at_end": os.getloadavg(), "worker_idle_rss_mib": idle["rss_mib"], "worker_peak_rss_mib": memory["peak_rss_mib"],
    }
    if target.name == "idp":
        common["database_url"] = target.meta["database_url"]
    with path.open("a") as fh:
        for name, figures in results.items():
            fh.write(json.dumps({**common, "scenario": name, **figures}) + "\n")
    print(f"Appended {len(results)} lines to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"Whole run: {time.monotonic() - started:.0f} s")
