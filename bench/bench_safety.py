"""Safety guard, rules layer: recall, false positives and scan time (results in BENCHMARKS.md).

Recall and false-positive rate, overall, per rule and per phrasing family, on both splits of the
corpus: the tuning split the rules were written against, and the held-out split written first by
someone who never saw them. Scan time is per node (text and labels), rules only, over every case.

Run: .venv/bin/python bench/bench_safety.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from rflow_tui.safety import rule_catalogue, scan_node

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
ROUNDS = 5


def load(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))["cases"]


def score(cases: list[dict]) -> tuple[dict, dict, dict]:
    """(overall, per rule, per family) as {key: [hits, total]} for unsafe and safe cases."""
    overall = {"unsafe": [0, 0], "safe": [0, 0]}
    per_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        found = [f.rule_id for f in scan_node(case["text"], case.get("labels", []))]
        if case["unsafe"]:
            hit = case["rule"] in found
            for bucket in (overall["unsafe"], per_rule[case["rule"]], per_family[case["family"]]):
                bucket[0] += hit
                bucket[1] += 1
        else:
            flagged = bool(found)
            for bucket in (overall["safe"], per_family["safe: " + case["family"]]):
                bucket[0] += flagged
                bucket[1] += 1
    return overall, per_rule, per_family


def timings(cases: list[dict]) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        for case in cases:
            started = time.perf_counter()
            scan_node(case["text"], case.get("labels", []))
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def pct(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / total:.1f}%)" if total else "-"


def main() -> None:
    scan_node("warm up the rule catalogue")
    splits = {"tuning": load("hard_floor_corpus.json"), "held-out": load("hard_floor_heldout.json")}
    results = {name: score(cases) for name, cases in splits.items()}
    print("| split | cases | recall | false positives |\n|---|---|---|---|")
    for name, (overall, _, _) in results.items():
        cases = len(splits[name])
        print(f"| {name} | {cases} | {pct(*overall['unsafe'])} | {pct(*overall['safe'])} |")
    print("\n| rule | recall, tuning | recall, held-out |\n|---|---|---|")
    for rule in rule_catalogue():
        cells = [pct(*results[name][1][rule.id]) for name in splits]
        print(f"| {rule.id} | {' | '.join(cells)} |")
    families = sorted({f for name in splits for f in results[name][2]})
    print("\n| family | tuning | held-out |\n|---|---|---|")
    for family in families:
        cells = [pct(*results[name][2][family]) if family in results[name][2] else "-" for name in splits]
        print(f"| {family} | {' | '.join(cells)} |")
    samples = timings(splits["tuning"] + splits["held-out"])
    samples.sort()
    print(
        f"\nScan time per node ({len(samples)} scans): median {statistics.median(samples):.2f} ms, "
        f"p95 {samples[int(0.95 * len(samples))]:.2f} ms, max {samples[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()
