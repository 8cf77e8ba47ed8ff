"""Load benchmark: the provider served as production serves it, on one core, under N concurrent clients.

The server (``idp serve --workers 1 --threads 4``: granian, or the peer) is
pinned to core 0, this load generator and its SMTP server to core 1 (with
PostgreSQL's backends for the run, as if the database had a host of its own). Per
scenario: seeding (logins whose tokens the scenario uses), a warm-up, then a
timed window; requests/s, logins/s, p50/p95/p99 and errors are printed as a
table and appended, one JSON line per scenario, to
``bench/results/<date>-<backend>.jsonl``. Argon2id verifications per second at
the production cost are measured on core 0 in the same run, and every login
figure is given as a fraction of it.

    make bench                          # SQLite
    make bench BACKEND=postgresql       # PostgreSQL (database bench_h, recreated)
    make bench-peer                     # the same load against panva's oidc-provider
    make bench-scale                    # 10k vs 1M filler accounts and live tokens, side by side
    make bench-sweep                    # 4, 16 and 64 clients, side by side
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
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from loadgen import SCENARIOS, Mailbox, discover, run_scenario
from targets import ROOT, SERVER_CORE, pin_database_backends, start_idp, start_peer, temporary_dir

LOADGEN_CORE = 1
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Run:
    """One server started on a fresh database: how many clients load it, how many filler rows it holds."""

    clients: int
    accounts: int = 0
    tokens: int = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["idp", "peer", "both"], default="idp",
                        help="idp (default), peer (oidc-provider alone) or both, one after the other, with ratios")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a throw-away file, default), postgresql (database bench_h on 127.0.0.1, "
                             "recreated) or a SQLAlchemy URL (a PostgreSQL database whose name starts with 'bench', "
                             "recreated)")
    parser.add_argument("--clients", type=parse_counts, default=[16],
                        help="concurrent virtual users (default 16); a list (4,16,64) runs the scenarios once per "
                             "count, each on a fresh server and database, and prints them side by side")
    parser.add_argument("--accounts", type=parse_count, default=0,
                        help="filler accounts loaded before the run (bench/seed.py; 1M or 1000000; default none)")
    parser.add_argument("--tokens", type=parse_count, default=0,
                        help="live tokens (each with its grant) loaded before the run (default none)")
    parser.add_argument("--scale", type=parse_counts,
                        help="sizes (10k,1M): the scenarios once per size, each on a freshly recreated database "
                             "holding that many filler accounts and as many live tokens, printed side by side")
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
    if args.scale and (args.accounts or args.tokens):
        parser.error("--scale sets the accounts and tokens of each run: no --accounts or --tokens with it")
    if args.target != "idp" and (args.scale or args.accounts or args.tokens):
        parser.error("filler accounts and tokens go into the provider's database: --target idp only")
    sizes = [(size, size) for size in args.scale] if args.scale else [(args.accounts, args.tokens)]
    runs = [Run(clients, accounts, tokens) for accounts, tokens in sizes for clients in args.clients]

    os.sched_setaffinity(0, {LOADGEN_CORE})  # the load generator and its SMTP server: the other core
    argon2 = measure_argon2(args.argon2_seconds)
    print(f"Argon2id m={argon2['memory_cost_kib']} KiB t={argon2['time_cost']} p={argon2['parallelism']} on core "
          f"{SERVER_CORE}: {argon2['verifications_per_s']:.1f} verifications/s "
          f"({argon2['ms_per_verification']:.1f} ms each)")

    targets = ["idp", "peer"] if args.target == "both" else [args.target]
    outcomes: dict[tuple[str, Run], dict] = {}
    for run in runs:
        for which in targets:
            outcomes[which, run] = run_loop(bench(which, run, names, args, argon2))
        if len(targets) == 2:
            print_ratios(outcomes["idp", run]["results"], outcomes["peer", run]["results"], run.clients)
    if len(runs) > 1:
        for which in targets:
            print_side_by_side(which, names, {run: outcomes[which, run] for run in runs})


def parse_count(text: str) -> int:
    """A count as typed: 10000, 10_000, 10k or 1M."""
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if factor > 1 else text) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None


def parse_counts(text: str) -> list[int]:
    return [parse_count(part) for part in text.split(",") if part.strip()]


async def bench(which: str, run: Run, names: list[str], args, argon2: dict) -> dict:
    """One server on a fresh database under ``run.clients`` clients: each scenario's figures and the worker's memory."""
    work = temporary_dir()
    mailbox = Mailbox()
    smtp_port = await mailbox.start()
    if which == "idp":
        server, target, accounts = start_idp(args.database, f"smtp://127.0.0.1:{smtp_port}?timeout=10", work,
                                             run.clients, run.accounts, run.tokens)
    else:
        server, target, accounts = start_peer(work, run.clients)
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
            filler = (f"; {run.accounts:,} filler accounts, {run.tokens:,} live tokens"
                      if run.accounts or run.tokens else "")
            print(f"\n{target.name} ({target.meta['server']}; {backend}{filler}), worker pid {server.worker_pid()} "
                  f"pinned to core {SERVER_CORE}, {idle['rss_mib']} MiB idle; {run.clients} clients on core "
                  f"{LOADGEN_CORE}{' with the PostgreSQL backends' if backend == 'postgresql' else ''}; "
                  f"warm-up {args.warmup:g} s, window {args.duration:g} s")
            header(argon2)
            pinning = None
            if backend == "postgresql":  # its backends on the load generator's core, as on a host of their own
                pinning = asyncio.create_task(_keep_database_pinned(target.meta["url"]))
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
            if pinning is not None:
                pinning.cancel()
                target.meta["database_core"] = LOADGEN_CORE
        print(f"\nWorker memory: {memory['rss_mib']} MiB now, peak {memory['peak_rss_mib']} MiB (VmHWM); "
              f"idle before the load {idle['rss_mib']} MiB; {mailbox.received} mails received.")
    finally:
        server.stop()
        mailbox.stop()
        for database in work.glob("bench.sqlite3*"):  # up to a gigabyte with a million filler rows
            database.unlink()
    if not args.no_save:
        save(target, run, results, args, argon2, idle, memory)
    return {"results": results, "idle_rss_mib": idle["rss_mib"], "peak_rss_mib": memory["peak_rss_mib"]}


async def _keep_database_pinned(url: str) -> None:
    """Every half second, pin the database's new backends (a pool connection opened meanwhile)."""
    while True:
        await asyncio.to_thread(pin_database_backends, url, LOADGEN_CORE)
        await asyncio.sleep(0.5)


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


def print_ratios(idp: dict, peer: dict, clients: int) -> None:
    print(f"\nidp/peer, {clients} clients")
    print(f"{'scenario':<20}{'idp req/s':>11}{'peer req/s':>12}{'idp/peer':>10}")
    for name, f in idp.items():
        p = peer.get(name, {})
        if "requests_per_s" in f and "requests_per_s" in p and p["requests_per_s"]:
            print(f"{name:<20}{f['requests_per_s']:>11.1f}{p['requests_per_s']:>12.1f}"
                  f"{f['requests_per_s'] / p['requests_per_s']:>10.2f}")


def print_side_by_side(which: str, names: list[str], outcomes: dict[Run, dict]) -> None:
    """One column group per run (a size, a client count): req/s, p50/p95/p99 ms and errors per scenario,
    then the worker's RSS idle and peak."""
    runs = list(outcomes)
    varies = lambda attribute: len({getattr(run, attribute) for run in runs}) > 1  # noqa: E731
    labels = []
    for run in runs:
        parts = []
        if varies("accounts") or varies("tokens"):
            parts.append(f"{short(run.accounts)} accounts + tokens" if run.accounts == run.tokens
                         else f"{short(run.accounts)} accounts, {short(run.tokens)} tokens")
        if varies("clients"):
            parts.append(f"{run.clients} clients")
        labels.append(", ".join(parts))
    width = max(36, *(len(label) + 2 for label in labels))
    ms = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    print(f"\n{which}: req/s, p50/p95/p99 ms, errors")
    print(f"{'':<20}" + "".join(label.rjust(width) for label in labels))
    print(f"{'scenario':<20}" + f"{'req/s':>10}{'p50':>7}{'p95':>7}{'p99':>7}{'err':>5}".rjust(width) * len(runs))
    for name in names:
        cells = []
        for run in runs:
            f = outcomes[run]["results"][name]
            cells.append("skipped" if "skipped" in f else
                         f"{f['requests_per_s']:>10.1f}{ms(f['p50_ms']):>7}{ms(f['p95_ms']):>7}{ms(f['p99_ms']):>7}"
                         f"{f['errors']:>5}")
        print(f"{name:<20}" + "".join(cell.rjust(width) for cell in cells))
    print(f"{'worker RSS MiB':<20}" + "".join(
        f"idle {o['idle_rss_mib']}, peak {o['peak_rss_mib']}".rjust(width) for o in outcomes.values()))


def short(n: int) -> str:
    """10k, 1M: the sizes as the table's column labels."""
    for factor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= factor and n % (factor // 10) == 0:
            return f"{n / factor:g}{suffix}"
    return str(n)


def save(target, run: Run, results: dict, args, argon2: dict, idle: dict, memory: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    backend = target.meta["backend"] if target.name == "idp" else "peer"
    path = RESULTS / f"{now:%Y-%m-%d}-{backend}.jsonl"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    # Uncommitted changes under idp/ are what was served: the commit alone would not say so.
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "idp", "wsgi.py"],
                                capture_output=True, text=True, cwd=ROOT).stdout.strip())
    common = {
        "at": now.isoformat(timespec="seconds"), "target": target.name, "backend": backend, "commit": commit,
        "uncommitted_changes": dirty,
        "server": target.meta["server"], "clients": run.clients, "warmup_s": args.warmup,
        "duration_s": args.duration, "cpus": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(), "argon2_per_s": argon2["verifications_per_s"],
        "loadavg_at_end": os.getloadavg(), "worker_idle_rss_mib": idle["rss_mib"], "worker_peak_rss_mib": memory["peak_rss_mib"],
    }
    if target.name == "idp":
        common.update(database_url=target.meta["database_url"], database_core=target.meta.get("database_core"),
                      filler_accounts=run.accounts,
                      filler_tokens=run.tokens,
                      seeding_s={k: round(v, 1) for k, v in target.meta["seeding_s"].items()})
    with path.open("a") as fh:
        for name, figures in results.items():
            fh.write(json.dumps({**common, "scenario": name, **figures}) + "\n")
    print(f"Appended {len(results)} lines to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"Whole run: {time.monotonic() - started:.0f} s")
