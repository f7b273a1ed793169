#!/usr/bin/env python3
"""A/B of two dokku-certs binaries on bench.py's own roots and inputs.

    python3 benches/ab.py OLD_BINARY NEW_BINARY      # ROUNDS=31 by default

Each round runs both binaries back to back, the order alternating, so that load from other
processes (a shared machine) hits both alike; prints median and min per binary. Used for
the before/after rows of BENCHMARKS.md, where a whole `make bench` per binary, one after
the other, measured the machine's load more than the change.
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "31"))


def once(binary, args, env, stdin=None):
    start = time.perf_counter()
    subprocess.run([binary] + args, env=env, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def ab(label, binaries, args, env, stdin=None):
    samples = {b: [] for b in binaries}
    for i in range(ROUNDS):
        for b in binaries if i % 2 == 0 else binaries[::-1]:
            samples[b].append(once(b, args, env, stdin))
    cells = [f"{statistics.median(samples[b]) * 1000:.2f} ms" for b in binaries]
    cells += [f"{min(samples[b]) * 1000:.2f} ms" for b in binaries]
    print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def main():
    binaries = [os.path.abspath(b) for b in sys.argv[1:3]]
    if len(binaries) != 2:
        raise SystemExit(__doc__)
    pairs = bench.pairs(bench.fixtures())
    print("| what | before median | after median | before min | after min |")
    print("| --- | --- | --- | --- | --- |")
    for n in (1, 30, 1000):
        root = bench.make_root(n, pairs)
        ab(f"certs:report, {n} app{'s' if n > 1 else ''}", binaries, ["certs:report"], bench.base_env(root))
    root = bench.make_root(1, pairs)
    archive = bench.tar_bytes([("server.crt", pairs[0][0]), ("server.key", pairs[0][1])])
    ab("certs:add < cert-key.tar (DOKKU_NGINX_CMD=true)", binaries, ["certs:add", "app00000"], bench.base_env(root), archive)


if __name__ == "__main__":
    main()
