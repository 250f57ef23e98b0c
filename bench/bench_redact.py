"""Redaction on the test corpus: recall of secrets and false alarms on look-alikes
(results go in BENCHMARKS.md, section "Redaction").

A secret counts as withheld when every character of every occurrence of it lies inside a withheld span; a
look-alike survives when it is still in the output verbatim. "Spurious" counts withheld
spans that cover no expected secret. Compared: rflow's own patterns (``rflow_tui.redact``),
``detect-secrets`` (its default plugins, line by line, as a library would run it on
ticket text), and detect-secrets' vendor plugins only (no entropy, no keyword plugin).

Run: .venv/bin/python bench/bench_redact.py [CORPUS.json]   (default: the test corpus;
tests/data/redaction_holdout.json is a second set written after the patterns, to see how
far the figures carry). The detect-secrets rows need `pip install detect-secrets==1.5.0`.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CORPUS = DATA / "redaction_corpus.json"
Spans = list[tuple[int, int]]


def own(text: str) -> Spans:
    from rflow_tui.redact import find

    return [(f.start, f.end) for f in find(text)]


def _ds_spans(text: str, allowed: set[str] | None) -> Spans:
    from detect_secrets.core.scan import scan_line

    spans: Spans = []
    offset = 0
    for line in text.split("\n"):
        for secret in scan_line(line):
            if allowed is not None and secret.type not in allowed:
                continue
            value = secret.secret_value or ""
            for m in re.finditer(re.escape(value), line) if value else ():
                spans.append((offset + m.start(), offset + m.end()))
        offset += len(line) + 1
    return spans


VENDOR = {
    "AWS Access Key",
    "Azure Storage Account access key",
    "GitHub Token",
    "GitLab Token",
    "JSON Web Token",
    "Private Key",
    "Slack Token",
    "Stripe Access Key",
    "NPM tokens",
    "OpenAI Token",
    "SendGrid API Key",
    "Basic Auth Credentials",
    "Discord Bot Token",
    "Twilio API Key",
    "Mailchimp Access Key",
}


def covered(start: int, end: int, spans: Spans) -> bool:
    return all(any(a <= i < b for a, b in spans) for i in range(start, end))


def score(name: str, detect: Callable[[str], Spans], corpus: list[dict]) -> dict:
    hits, total, kept, keeps, spurious, timings = 0, 0, 0, 0, 0, []
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in corpus:
        text = case["text"]
        started = time.perf_counter()
        spans = detect(text)
        timings.append(time.perf_counter() - started)
        secret_spans = []
        for item in case["withhold"]:
            places = [(m.start(), m.end()) for m in re.finditer(re.escape(item["value"]), text)]
            secret_spans += places
            ok = all(covered(start, end, spans) for start, end in places)
            hits += ok
            total += 1
            by_kind[item["kind"]][0] += ok
            by_kind[item["kind"]][1] += 1
        for value in case["keep"]:
            keeps += 1
            kept += all(
                not any(a < m.start() + len(value) and m.start() < b for a, b in spans)
                for m in re.finditer(re.escape(value), text)
            )
        spurious += sum(not any(a < e and s < b for s, e in secret_spans) for a, b in spans)
    return {
        "name": name,
        "recall": hits / total,
        "hits": hits,
        "total": total,
        "lookalikes_hit": keeps - kept,
        "keeps": keeps,
        "spurious": spurious,
        "by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())},
        "ms_per_text": 1000 * statistics.mean(timings),
    }


def shipped_texts() -> list[str]:
    """Every string of 16+ characters in the starter flows and the demo tickets: help-desk
    text full of "password", "code" and numbers, with nothing in it to withhold."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str) and len(value) > 15:
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    data = Path(__file__).resolve().parent.parent / "rflow_tui" / "data"
    for path in sorted([*data.glob("flows/*.json"), *data.glob("demo/*.json")]):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return found


def union(*detectors: Callable[[str], Spans]) -> Callable[[str], Spans]:
    return lambda text: [span for detect in detectors for span in detect(text)]


def main() -> None:
    import sys

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS
    corpus = json.loads(path.read_text(encoding="utf-8"))
    rows = [score("rflow_tui.redact", own, corpus)]
    try:
        from detect_secrets.settings import default_settings

        with default_settings():
            rows.append(score("detect-secrets 1.5.0, default plugins", lambda t: _ds_spans(t, None), corpus))
            rows.append(score("detect-secrets 1.5.0, vendor plugins", lambda t: _ds_spans(t, VENDOR), corpus))
            both = union(own, lambda t: _ds_spans(t, VENDOR))
            rows.append(score("rflow_tui.redact + detect-secrets vendor plugins", both, corpus))
    except ImportError:
        print("(detect-secrets not installed: its rows are skipped)")
    kinds = ("key", "token", "private-key")
    print(f"{path.name}: {len(corpus)} texts, {rows[0]['total']} secrets, {rows[0]['keeps']} look-alikes\n")
    columns = ["detector", "secrets withheld (recall)", "keys/tokens/private keys", "look-alikes hit", "spurious spans"]
    print("| " + " | ".join([*columns, "ms/text"]) + " |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        kt = [r["by_kind"].get(k, "0/0").split("/") for k in kinds]
        kt_line = f"{sum(int(a) for a, _ in kt)}/{sum(int(b) for _, b in kt)}"
        print(
            f"| {r['name']} | {r['hits']}/{r['total']} ({r['recall']:.0%}) | {kt_line} | "
            f"{r['lookalikes_hit']}/{r['keeps']} | {r['spurious']} | {r['ms_per_text']:.2f} |"
        )
    print()
    for r in rows:
        print(r["name"], r["by_kind"])
    from rflow_tui.redact import find

    texts = shipped_texts()
    spans = [(f.kind, text[:60]) for text in texts for f in find(text)]
    print(
        f"\nshipped flows and demo tickets: {len(texts)} texts, {sum(map(len, texts))} characters,",
        f"{len(spans)} withheld",
    )
    for kind, where in spans:
        print(f"  {kind}: {where!r}")


if __name__ == "__main__":
    main()
