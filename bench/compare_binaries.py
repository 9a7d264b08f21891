#!/usr/bin/env python3
"""Two strata binaries on the same files, interleaved (A B A B …) so machine noise hits both
alike: `strata bench` pp and tg tokens/s of each, and the ratio new / old.
usage: compare_binaries.py --old BIN --new BIN [--pp 128] [--tg 32] [--threads 2] [--rounds 2]
                           [--old-args "..."] [--new-args "..."] FILE.gguf…
"""
import argparse, re, shlex, statistics, subprocess, sys

ROW = re.compile(r"^\|\s*(?P<file>[^|]+?)\s*\|\s*(?P<threads>\d+)\s*\|\s*(?P<test>(pp|tg)\d+)\s*\|\s*(?P<mean>[\d.]+)")


def bench(binary, extra, path, a):
    cmd = [binary, "bench", "-m", path, "-p", str(a.pp), "-n", str(a.tg), "-t", str(a.threads), "-r", str(a.reps)]
    cmd += shlex.split(extra)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {m["test"]: float(m["mean"]) for m in map(ROW.match, out.splitlines()) if m}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--old", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--old-args", default="")
    p.add_argument("--new-args", default="")
    p.add_argument("--pp", type=int, default=128)
    p.add_argument("--tg", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    print(f"| file | test | old tok/s | new tok/s | new / old |\n|---|---|---|---|---|")
    for path in a.files:
        runs = {"old": [], "new": []}
        for _ in range(a.rounds):
            runs["old"].append(bench(a.old, a.old_args, path, a))
            runs["new"].append(bench(a.new, a.new_args, path, a))
        for test in runs["old"][0]:
            old = statistics.mean(r[test] for r in runs["old"])
            new = statistics.mean(r[test] for r in runs["new"])
            print(f"| {path.split('/')[-1]} | {test} | {old:.2f} | {new:.2f} | {new / old:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
