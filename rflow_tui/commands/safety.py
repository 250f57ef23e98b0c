"""``rflow safety scan``: vet text with the safety guard, JSON Lines in, JSON Lines out.

Each input line is ``{"text": "...", "labels": ["...", "..."]}`` (labels optional;
other keys are ignored, so a corpus can carry ids). Each output line is
``{"unsafe": true|false, "rules": [rule ids]}`` from the rules layer; with
``--judge`` it also carries ``"judge"``: the configured judge's verdict
(``{"verdict", "rule", "reason"}``) or ``{"error": kind}`` when the judge could not
answer. Blank lines are skipped and get no output line. The whole input is checked
before anything is scanned: a malformed line stops the command with every bad line
named, and nothing is written to standard output.

Exit status: 0 whatever the scan finds; 2 for malformed input or a judge that cannot
be set up; 1 when ``--judge`` was asked and some lines could not be judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rflow_tui.commands.common import CommandError, load
from rflow_tui.commands.output import say
from rflow_tui.text import inert_json

SCAN_HELP = """\
Reads JSON Lines, one step a line: {"text": "...", "labels": ["...", "..."]}
(labels optional; other keys ignored). Writes one JSON line per step:
{"unsafe": true|false, "rules": ["rule-id", ...]} from the safety rules, and with
--judge also "judge": {"verdict", "rule", "reason"} (or {"error": kind}).
Blank lines are skipped. Exit 0 whatever is found; 2 for malformed input (every
bad line is named and nothing is scanned); 1 if some lines could not be judged."""
JUDGE_CONCURRENCY = 4  # judge calls in flight at once: lines are independent
MAX_REPORTED = 20


def register(sub: argparse._SubParsersAction) -> None:
    safety = sub.add_parser("safety", help="the safety guard for AI steps").add_subparsers(
        dest="safety_cmd", required=True
    )
    p = safety.add_parser(
        "scan",
        help="scan steps given as JSON Lines with the safety rules; one JSON line out per step in",
        description=SCAN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="JSON Lines to scan (default -: standard input)"
    )
    p.add_argument(
        "--judge", action="store_true", help="also ask the configured safety judge ([llm] judge) about each step"
    )
    p.set_defaults(handler=cmd_safety_scan)


def read_input(name: str) -> str:
    if name == "-" and sys.stdin.isatty():  # nobody piped anything: say what it waits for
        say("rflow safety scan: reading JSON Lines from standard input (Ctrl+D ends; --help says more)", err=True)
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise CommandError(f"{name}: cannot be read: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = "standard input" if name == "-" else name
        raise CommandError(f"{where}: not UTF-8 text (byte {exc.start})") from exc


def line_problem(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """One input line as ``{"text", "labels"}``, or what is wrong with it."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "JSON nested too deeply"
    if not isinstance(item, dict):
        return None, 'expected a JSON object like {"text": "...", "labels": ["...", "..."]}'
    text = item.get("text")
    if not isinstance(text, str):
        return None, '"text" is missing' if "text" not in item else '"text" must be a string'
    labels = item.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return None, '"labels" must be a list of strings'
    return {"text": text, "labels": labels}, None


def parse_lines(text: str) -> list[dict[str, Any]]:
    """Every non-blank line, checked; CommandError naming each malformed line (1-based)."""
    items, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        item, problem = line_problem(line)
        if item is None:
            problems.append(f"line {number}: {problem}")
        else:
            items.append(item)
    if problems:
        for problem in problems[:MAX_REPORTED]:
            say(problem, err=True)
        more = f" (the first {MAX_REPORTED} shown)" if len(problems) > MAX_REPORTED else ""
        raise CommandError(f"{len(problems)} malformed line(s){more}; nothing was scanned")
    return items


def build_judge(args):
    from dataclasses import replace

    from rflow_tui.ai.errors import NoJudgeError
    from rflow_tui.ai.registry import make_judge

    settings = load(args, allow_missing=True)
    llm = replace(settings.llm, record_to="")  # vetting text is not a walk: nothing to record
    try:
        judge = make_judge(llm)
    except NoJudgeError as exc:
        raise CommandError(f"--judge: {exc}") from exc
    if judge is None:
        raise CommandError(f"--judge: the safety judge is off ([llm] judge in {settings.config_path})")
    return judge


async def judge_all(judge, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's verdict, or the kind of failure; several calls in flight, results in input order."""
    import asyncio

    from rflow_tui.ai.errors import JudgeError
    from rflow_tui.ai.judge import CandidateNode

    gate = asyncio.Semaphore(JUDGE_CONCURRENCY)

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            try:
                verdict = await judge.judge(CandidateNode(item["text"], tuple(item["labels"])))
            except JudgeError as exc:
                return {"error": exc.kind}
        return {"verdict": verdict.verdict, "rule": verdict.rule, "reason": verdict.reason}

    return list(await asyncio.gather(*(one(item) for item in items)))


def cmd_safety_scan(args) -> int:
    from rflow_tui.safety import scan_node

    items = parse_lines(read_input(args.file))
    judge = build_judge(args) if args.judge else None
    results = []
    for item in items:
        findings = scan_node(item["text"], item["labels"])
        results.append({"unsafe": bool(findings), "rules": [finding.rule_id for finding in findings]})
    failed = 0
    if judge is not None:
        import asyncio

        for result, verdict in zip(results, asyncio.run(judge_all(judge, items)), strict=True):
            result["judge"] = verdict
            failed += "error" in verdict
    out = sys.stdout
    for result in results:
        out.write(inert_json(result) + "\n")  # a scanned step may carry terminal escapes
    out.flush()
    if failed:
        say(f'rflow: {failed} of {len(items)} line(s) could not be judged (see "judge": {{"error": ...}})', err=True)
        return 1
    return 0
