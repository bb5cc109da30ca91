"""spikesim core speed: encoder, .dat reading, TFI, each against its reference in one run.

    .venv/bin/python -m benchmarks.bench_core [--frames N]

Prints a Markdown table (paste it into docs/benchmarks.md with the date).
"""

from __future__ import annotations

import argparse

from benchmarks import core_dat, core_encode, core_tfi
from benchmarks._report import header, table

# The targets, on the rows that compare like with like (wall time, same output).
TARGETS = {"encode": 8.0, "dat read": 10.0, "tfi": 5.0}
NOT_TARGETED = ("CPU seconds", "share of", "packed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=None, help="frames per measurement")
    args = parser.parse_args()
    kwargs = {} if args.frames is None else {"frames": args.frames}
    rows = []
    for module in (core_encode, core_dat, core_tfi):
        rows += module.run(**kwargs)
    for row in rows:
        for key, target in TARGETS.items():
            name = row["name"]
            if name.lower().startswith(key) and not any(k in name for k in NOT_TARGETED):
                row["target"] = target
    print(header("spikesim core (benchmarks/bench_core.py)"))
    print(table(rows))


if __name__ == "__main__":
    main()
