#!/usr/bin/env python3
"""compare-summary.py RAW.tsv: medians per tool and step, then opc-store's ratios against
restic and against the best peer, with issue 9's goals. Written by benches/compare.sh."""
import csv
import statistics
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = defaultdict(lambda: defaultdict(list))  # tool -> metric -> values
verify = defaultdict(list)
tools = []
for r in rows:
    t = r["tool"]
    if t not in tools:
        tools.append(t)
    if r["step"].startswith("f_verify"):
        verify[t].append(r["note"])
        continue
    if "rc=" in r["note"]:
        continue
    by[t][r["step"] + ".wall"].append(float(r["wall_s"]))
    by[t][r["step"] + ".cpu"].append(float(r["user_s"]) + float(r["sys_s"]))
    by[t][r["step"] + ".rss"].append(int(r["maxrss_kib"]) / 1024)
    by[t][r["step"] + ".repo"].append(int(r["repo_bytes"]) / 1e6)
# Growth of one simulated day: repository after d minus after c, per run.
for t in tools:
    runs = defaultdict(dict)
    for r in rows:
        if r["tool"] == t and r["step"] in ("c_nochange", "d_mutated") and "rc=" not in r["note"]:
            runs[r["run"]][r["step"]] = int(r["repo_bytes"]) / 1e6
    by[t]["growth"] = [v["d_mutated"] - v["c_nochange"] for v in runs.values() if len(v) == 2]

med = lambda t, k: statistics.median(by[t][k]) if by[t][k] else None  # noqa: E731
STEPS = [("a_initial", "first backup"), ("c_nochange", "unchanged backup"),
         ("d_mutated", "backup after --mutate"), ("e1_restore_full", "full restore"),
         ("e2_restore_chromadb", "chromadb-only restore"), ("x_export", "export tar.gz")]
print("| tool | " + " | ".join(l + " s" for _, l in STEPS) + " | repo MB | day growth MB | peak RSS MiB (a / e1) |")
print("|---" * (len(STEPS) + 4) + "|")
fmt = lambda v, p=2: "" if v is None else f"{v:.{p}f}"  # noqa: E731
for t in tools:
    cells = [fmt(med(t, s + ".wall")) for s, _ in STEPS]
    print(f"| {t} | " + " | ".join(cells) + f" | {fmt(med(t, 'a_initial.repo'), 1)} | "
          f"{fmt(med(t, 'growth'), 1)} | {fmt(med(t, 'a_initial.rss'), 0)} / {fmt(med(t, 'e1_restore_full.rss'), 0)} |")

peers = [t for t in tools if t not in ("opc-store", "tar-gz", "tar-pigz")]
GOALS = [("a_initial.wall", "first backup time", 0.45), ("c_nochange.wall", "unchanged backup time", 0.10),
         ("d_mutated.wall", "backup after --mutate, time", 0.55), ("growth", "bytes added by the day", 0.6),
         ("e1_restore_full.wall", "full restore time", 0.5), ("e2_restore_chromadb.wall", "chromadb restore time", 0.45),
         ("a_initial.repo", "repository size", 0.9), ("a_initial.rss", "peak RSS, first backup", None)]
if "opc-store" in tools and "restic" in tools:
    print("\n| row | opc-store | restic | ratio | goal | best peer | vs best |")
    print("|---|---|---|---|---|---|---|")
    for key, label, goal in GOALS:
        o, r = med("opc-store", key), med("restic", key)
        if o is None or r is None:
            continue
        cand = [(med(p, key), p) for p in peers if med(p, key) is not None]
        best = min(cand) if cand else (None, "")
        ratio = o / r if r else float("nan")
        mark = "" if goal is None else (" (met)" if ratio <= goal else " (MISSED)")
        vs = f"{o / best[0]:.2f}x {best[1]}" if best[0] else ""
        print(f"| {label} | {o:.2f} | {r:.2f} | {ratio:.2f}{mark} | {'' if goal is None else f'<= {goal}'} | "
              f"{fmt(best[0])} | {vs} |")
    x = med("opc-store", "x_export.wall")
    for tar in ("tar-pigz", "tar-gz"):
        tv = med(tar, "a_initial.wall")
        if x and tv:
            print(f"| export tar.gz vs `{tar}` | {x:.2f} | | {x / tv:.2f} vs {tar} | {'<= 1' if tar == 'tar-pigz' else '<= 0.5'} | {tv:.2f} | |")
print()
for t in tools:
    print(f"- verify {t}: {', '.join(verify[t]) or 'none'}")
