"""localbase's start-up: cold (initdb, bootstrap, platform upgrades, migrations, seed) and warm
(the same data dir again), until /health answers — and, with ``--against REV``, the same for
the tree at REV (a temporary git worktree), interleaved run by run so both see the same load.

    .venv/bin/python bench/startup.py [--runs 10] [--against REV]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from common import percentile, run, table, timed_starts

from devstack.child import ROOT


def worktree(rev: str, path: Path) -> Path:
    made = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise SystemExit(f"startup.py: --against {rev}: {made.stderr.strip() or 'git failed'}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--against", metavar="REV", help="also time the tree at this revision")
    args = parser.parse_args()
    trees: dict[str, Path | None] = {"this tree": None}
    samples: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "against"
        if args.against:
            trees = {args.against: worktree(args.against, other), **trees}
        try:
            for i in range(args.runs):
                order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
                for name, project in order:
                    cold, warm = timed_starts(Path(tmp) / f"{i}-{len(samples)}", 1, project)
                    samples.setdefault(name, ([], []))
                    samples[name][0].extend(cold)
                    samples[name][1].extend(warm)
        finally:
            if args.against:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
                    check=False,
                    capture_output=True,
                )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"localbase start-up, {args.runs} runs of each, load average {load}\n")
    rows = []
    first = next(iter(samples.values()))
    for name, (cold, warm) in samples.items():
        for kind, values, reference in (("cold", cold, first[0]), ("warm", warm, first[1])):
            p50 = percentile(values, 0.5)
            rows.append(
                [
                    name,
                    kind,
                    f"{p50:.2f} s",
                    f"{percentile(values, 0.9):.2f} s",
                    f"{max(values):.2f} s",
                    f"{p50 / percentile(reference, 0.5):.2f}×",
                ]
            )
    print(table(["tree", "start", "p50", "p90", "max", f"p50 vs {next(iter(samples))}"], rows))


if __name__ == "__main__":
    run(main)
