"""Argon2id verifications per second at the production cost, on the core this runs on.

The ceiling of logins per core: every login verifies one password. Run by
``bench/run.py`` under ``taskset -c 0`` (the provider's core), before the load,
and printed as one JSON object::

    taskset -c 0 .venv/bin/python bench/argon2_rate.py --seconds 2
"""

from __future__ import annotations

import argparse
import json
import time

from argon2 import PasswordHasher

from idp import config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    # The provider's own settings (IDP_ARGON2_* or the documented defaults).
    settings = config.load()
    hasher = PasswordHasher(time_cost=settings["IDP_ARGON2_TIME_COST"],
                            memory_cost=settings["IDP_ARGON2_MEMORY_COST"],
                            parallelism=settings["IDP_ARGON2_PARALLELISM"])
    password = "Bench-password-2024"
    stored = hasher.hash(password)
    hasher.verify(stored, password)  # warm-up: first allocation of the memory

    count = 0
    start = time.perf_counter()
    deadline = start + args.seconds
    while time.perf_counter() < deadline:
        hasher.verify(stored, password)
        count += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "verifications_per_s": round(count / elapsed, 2),
        "ms_per_verification": round(elapsed / count * 1000, 2),
        "memory_cost_kib": hasher.memory_cost,
        "time_cost": hasher.time_cost,
        "parallelism": hasher.parallelism,
    }))


if __name__ == "__main__":
    main()
