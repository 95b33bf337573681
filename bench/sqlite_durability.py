"""What SQLite's synchronous=FULL costs the service: committed audit-sized rows per second in WAL
mode, NORMAL against FULL, on this machine's disk, in the same run.

Each commit is one transaction inserting one row of about the size of an audit record (the
service commits every signature's record before giving the signature out). NORMAL syncs the WAL
only at checkpoints, so a power cut or an OS crash can lose the last commits; FULL syncs it at
every commit. The ratio is the price of durability for single-digest signing (a batch of 100
digests commits once).

    .venv/bin/python bench/sqlite_durability.py [--commits 2000] [--folder DIR]

The folder defaults to a temporary one; give one on the disk the service's data directory is
on. Not a test: nothing here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time

ROW = os.urandom(165).hex()  # an audit record is about 330 bytes


def commits_per_second(path: str, synchronous: str, commits: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    connection.execute("CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, body TEXT)")
    started = time.perf_counter()
    for _ in range(commits):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO audit (body) VALUES (?)", (ROW,))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return commits / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--folder", help="where the database goes (default: a temporary folder)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=arguments.folder) as folder:
        rates = {
            mode: commits_per_second(
                os.path.join(folder, f"{mode}.sqlite3"), mode, arguments.commits
            )
            for mode in ("NORMAL", "FULL")
        }
    print(f"{'synchronous':<12} {'commits/s':>12} {'ratio to NORMAL':>16}")
    for mode, rate in rates.items():
        print(f"{mode:<12} {rate:>12,.0f} {rate / rates['NORMAL']:>16.2f}")


if __name__ == "__main__":
    main()
