"""Rules-layer recall / false positives on the TUNING splits only (never the held-out ones).

Run: .venv/bin/python bench/score_tuning.py [--miss] [--fp] [--lang xx] [--split name] [--last N] [--fam] [--time]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from rflow_tui.safety import scan_node

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TUNING = ("hard_floor_corpus.json", "hard_floor_tuning_meaning.json")  # the only files this reads


def cases() -> list[dict]:
    out = []
    for name in TUNING:
        for c in json.loads((DATA / name).read_text(encoding="utf-8"))["cases"]:
            c["split"] = name
            out.append(c)
    return out


def lang(c: dict) -> str:
    code = c.get("language") or c.get("lang") or "en"
    return "pt" if code.startswith("pt") else code


def ratio(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / max(total, 1):.1f}%)"


def main() -> None:
    args = sys.argv[1:]
    only = args[args.index("--lang") + 1] if "--lang" in args else None
    split = args[args.index("--split") + 1] if "--split" in args else None
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # caught, unsafe, refused, safe
    fam: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    all_cases = [c for c in cases() if (not only or lang(c) == only) and (not split or split in c["split"])]
    if "--last" in args:  # the newest cases of the meaning split: a batch's score before and after a change
        meaning = [c for c in all_cases if "meaning" in c["split"]]
        all_cases = meaning[-int(args[args.index("--last") + 1]) :]
    for c in all_cases:
        found = [f.rule_id for f in scan_node(c["text"], c.get("labels", []))]
        p = per[lang(c)]
        if c["unsafe"]:
            hit = c["rule"] in found
            p[0] += hit
            p[1] += 1
            if not hit and "--miss" in args:
                print("MISS", lang(c), c["rule"], c["family"], repr(c["text"]), c.get("labels", ""), found)
        else:
            hit = bool(found)
            p[2] += hit
            p[3] += 1
            if hit and "--fp" in args:
                print("FP  ", lang(c), c["family"], repr(c["text"]), c.get("labels", ""), found)
        fam[("safe:" if not c["unsafe"] else "") + c["family"]][0] += hit
        fam[("safe:" if not c["unsafe"] else "") + c["family"]][1] += 1
    tot = [sum(v[i] for v in per.values()) for i in range(4)]
    print("| language | recall | false positives |\n|---|---|---|")
    for k, v in [*sorted(per.items()), ("all", tot)]:
        print(f"| {k} | {ratio(v[0], v[1])} | {ratio(v[2], v[3])} |")
    if "--fam" in args:
        for k in sorted(fam):
            print(k, fam[k])
    if "--time" in args:
        samples = []
        for _ in range(3):
            for c in all_cases:
                t = time.perf_counter()
                scan_node(c["text"], c.get("labels", []))
                samples.append((time.perf_counter() - t) * 1000)
        samples.sort()
        p50, p95 = statistics.median(samples), samples[int(0.95 * len(samples))]
        print(f"scan per node: p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {samples[-1]:.2f} ms")


if __name__ == "__main__":
    main()
