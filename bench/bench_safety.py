"""Safety guard, rules layer: recall, false positives and scan time (results in BENCHMARKS.md).

Recall and false-positive rate, overall, per rule, per language and per phrasing family, on every
corpus: the two tuning splits the rules were written against, and the two held-out splits written
by someone who never saw them (only these aggregates are ever read from those). Scan time is per
node (text and labels), rules only, over every case.

Run: .venv/bin/python bench/bench_safety.py [--quick]   (--quick: scores only, no timing)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from rflow_tui.safety import rule_catalogue, scan_node

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
ROUNDS = 5
SPLITS = {
    "tuning": "hard_floor_corpus.json",
    "tuning-meaning": "hard_floor_tuning_meaning.json",
    "held-out": "hard_floor_heldout.json",
    "held-out-meaning": "hard_floor_heldout_meaning.json",
    "held-out-blind2": "hard_floor_heldout_blind2.json",
}


def load(name: str) -> list[dict]:
    path = DATA / name
    return json.loads(path.read_text(encoding="utf-8"))["cases"] if path.exists() else []


def language(case: dict) -> str:
    return case.get("language") or case.get("lang") or "en"


Buckets = dict[str, list[int]]


def score(cases: list[dict]) -> dict[str, Buckets]:
    """{"overall"|"rule"|"language"|"family": {key: [hits, total]}}; safe keys are prefixed 'safe: '."""
    out: dict[str, Buckets] = {k: defaultdict(lambda: [0, 0]) for k in ("overall", "rule", "language", "family")}
    known = {rule.id for rule in rule_catalogue()}
    for case in cases:
        found = [f.rule_id for f in scan_node(case["text"], case.get("labels", []))]
        if case["unsafe"]:  # a corpus written in its own hazard names counts a refusal by any rule
            hit = case["rule"] in found if case["rule"] in known else bool(found)
            keys = [("overall", "unsafe"), ("rule", case["rule"]), ("language", language(case))]
            keys.append(("family", case["family"]))
        else:
            hit = bool(found)
            keys = [("overall", "safe"), ("language", "safe: " + language(case)), ("family", "safe: " + case["family"])]
        for table, key in keys:
            out[table][key][0] += hit
            out[table][key][1] += 1
    return out


def timings(cases: list[dict]) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        for case in cases:
            started = time.perf_counter()
            scan_node(case["text"], case.get("labels", []))
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def pct(bucket: list[int] | None) -> str:
    if not bucket or not bucket[1]:
        return "-"
    hits, total = bucket
    return f"{hits}/{total} ({100 * hits / total:.1f}%)"


def table(title: str, results: dict[str, dict[str, Buckets]], part: str, keys: list[str]) -> None:
    names = list(results)
    print(f"\n| {title} | {' | '.join(names)} |\n|---|{'---|' * len(names)}")
    for key in keys:
        print(f"| {key} | {' | '.join(pct(results[n][part].get(key)) for n in names)} |")


def main() -> None:
    scan_node("warm up the rule catalogue")
    splits = {name: cases for name, file in SPLITS.items() if (cases := load(file))}
    results = {name: score(cases) for name, cases in splits.items()}
    print("| split | cases | recall | false positives |\n|---|---|---|---|")
    for name, res in results.items():
        print(f"| {name} | {len(splits[name])} | {pct(res['overall']['unsafe'])} | {pct(res['overall']['safe'])} |")
    table("rule (recall)", results, "rule", [r.id for r in rule_catalogue()])
    languages = sorted({k for r in results.values() for k in r["language"] if not k.startswith("safe: ")})
    table("language: recall", results, "language", languages)
    table("language: false positives", results, "language", [f"safe: {k}" for k in languages])
    families = sorted({k for r in results.values() for k in r["family"]}, key=lambda k: (k.startswith("safe"), k))
    table("family", results, "family", families)
    if "--quick" in sys.argv:
        return
    samples = sorted(timings([c for cases in splits.values() for c in cases]))
    print(
        f"\nScan time per node ({len(samples)} scans): p50 {statistics.median(samples):.2f} ms, "
        f"p95 {samples[int(0.95 * len(samples))]:.2f} ms, max {samples[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()
