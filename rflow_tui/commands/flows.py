"""Flow commands (``flows import/export/list/check``) and ``sessions export`` for PSA tickets."""

from __future__ import annotations

import argparse
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rflow_tui.commands.common import CommandError, acting_user, load, run_async, store, whole_number
from rflow_tui.commands.output import emit, say
from rflow_tui.files import FileProblem, read_text
from rflow_tui.text import inert_json

if TYPE_CHECKING:
    from rflow_tui.flows.check import Problem, Waiver


def register(sub: argparse._SubParsersAction) -> None:
    flows = sub.add_parser("flows", help="the desk's flow library").add_subparsers(dest="flows_cmd", required=True)
    p = flows.add_parser("import", help="check and import flow files (JSON); any failing file imports nothing")
    p.add_argument("files", nargs="+", metavar="FILE", help="flow files, directories or glob patterns")
    p.add_argument(
        "--new-version",
        action="store_true",
        help="a file whose slug (or title) is already in the library becomes its next version",
    )
    p.set_defaults(handler=cmd_flows_import)
    p = flows.add_parser("export", help="print a flow as JSON (the import format) or as a diagram")
    p.add_argument("flow_ref", metavar="ID|SLUG", help="the flow's id, or its slug for the current version")
    p.add_argument(
        "--format",
        choices=("json", "mermaid", "dot"),
        default="json",
        help="json (default; re-importable), mermaid (renders in Markdown) or dot (Graphviz)",
    )
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(handler=cmd_flows_export)
    p = flows.add_parser("list", help="list the desk's flows")
    p.add_argument("--all", action="store_true", help="every version, not just the current ones")
    p.set_defaults(handler=cmd_flows_list)
    p = flows.add_parser("check", help="check flow files without importing them (no database needed)")
    p.add_argument("files", nargs="+", metavar="FILE", help="flow files, directories (every *.json in them) or globs")
    p.add_argument("--json", action="store_true", help="one JSON report on standard output, for editors and CI")
    p.set_defaults(handler=cmd_flows_check)

    p = flows.add_parser("stats", help="the numbers behind every node of a flow, from the walks stored")
    p.add_argument("slug", metavar="SLUG")
    p.add_argument(
        "--version", type=whole_number, metavar="N", help="count the nodes of version N (default: the current one)"
    )
    p.add_argument("--json", action="store_true", help="the numbers as JSON")
    p.set_defaults(handler=cmd_flows_stats)

    sessions = sub.add_parser("sessions", help="walk sessions").add_subparsers(dest="sessions_cmd", required=True)
    p = sessions.add_parser("export", help="a session transcript to paste into a PSA ticket")
    p.add_argument("session_id", type=whole_number, metavar="ID")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(handler=cmd_sessions_export)


def read_flow_file(path: Path) -> Any:
    try:
        raw = read_text(path)
    except FileProblem as exc:
        raise CommandError(str(exc)) from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise CommandError(f"{path}: JSON nested too deeply") from exc


def flow_files(patterns: list[str]) -> list[Path]:
    """The files named: a file as given, a directory's *.json (in its subfolders too), a glob's
    matches (for shells that do not expand them). Something that names no file is an error."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*.json") if p.is_file())
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        else:
            matches = [path]  # read_flow_file says what is wrong with a missing file
        if not matches:
            raise CommandError(f"{pattern}: no flow files (*.json) there")
        found += [p for p in matches if p not in found]
    return found


@dataclass
class FileReport:
    """One flow file as read and checked; ``doc`` is None when the file could not be read."""

    path: Path
    doc: Any
    errors: list[Problem]
    warnings: list[Problem] = field(default_factory=list)
    waived: list[Waiver] = field(default_factory=list)


def _review_files(paths: list[Path]) -> list[FileReport]:
    from rflow_tui.flows.check import Problem, review_flow

    reports = []
    for path in paths:
        try:
            doc = read_flow_file(path)
        except CommandError as exc:
            reports.append(FileReport(path, None, [Problem("$", str(exc))]))
            continue
        review = review_flow(doc, require_title=True)
        reports.append(FileReport(path, doc, review.problems, review.warnings, review.waived))
    return reports


def _say_reports(reports: list[FileReport]) -> int:
    """Errors and warnings on stderr, the waivers that applied on stdout (part of what the flow
    says); returns the error count."""
    for report in reports:
        for problem in report.errors:
            say(problem.message if report.doc is None else f"{report.path}: {problem}", err=True)
        for waiver in report.waived:
            say(f"{report.path}: {waiver}")
        for warning in report.warnings:
            say(f"{report.path}: warning: {warning}", err=True)
    return sum(len(report.errors) for report in reports)


def _json_report(reports: list[FileReport]) -> str:
    def problem(p: Problem) -> dict[str, Any]:
        return {"path": p.path, "node": p.node_id, "message": p.message}

    return inert_json(
        [
            {
                "file": str(r.path),
                "ok": not r.errors,
                "errors": [problem(p) for p in r.errors],
                "warnings": [problem(p) for p in r.warnings],
                "waivers": [
                    {"path": w.path, "node": w.node_id, "rule": w.rule_id, "reason": w.reason} for w in r.waived
                ],
            }
            for r in reports
        ],
        indent=2,
    )


def _write(text: str, output: Path | None) -> None:
    if output is None:
        emit(text)
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{output}: cannot be written: {exc.strerror}") from exc
    say(f"wrote {output}", err=True)


def cmd_flows_check(args) -> int:
    """Exit 0 when every file passes (warnings allowed), 2 when any has an error."""
    paths = flow_files(args.files)
    reports = _review_files(paths)
    if args.json:
        emit(_json_report(reports))
        return 2 if any(r.errors for r in reports) else 0
    errors = _say_reports(reports)
    if errors:
        raise CommandError(f"{errors} problem(s) in {len(paths)} file(s)")
    for report in reports:
        say(f"{report.path}: ok" + (f" ({len(report.warnings)} warning(s))" if report.warnings else ""))
    return 0


def cmd_flows_import(args) -> int:
    reports = _review_files(flow_files(args.files))
    errors = _say_reports(reports)
    if errors:
        raise CommandError(f"{errors} problem(s); nothing was imported")
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.library import import_flow_doc

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            for report in reports:
                flow = await import_flow_doc(
                    db, actor=actor, doc=report.doc, source=str(report.path), new_version=args.new_version
                )
                say(f"{report.path}: flow {flow.id} '{flow.title}' ({flow.slug} v{flow.version})")
        return 0

    return run_async(go)


def cmd_flows_export(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.flows.diagram import RENDERERS
        from rflow_tui.services.library import find_flow, flow_document

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            flow = await find_flow(db, actor=actor, ref=args.flow_ref)
        doc = flow_document(flow)
        _write(RENDERERS[args.format](doc) if args.format in RENDERERS else inert_json(doc, indent=2), args.output)
        return 0

    return run_async(go)


def cmd_flows_list(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.library import list_flows

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            rows = await list_flows(db, actor=actor, current_only=not args.all)
        if not rows:
            say("no flows yet: `rflow flows import FILE` adds one")
            return 0
        for f in rows:
            mark = "" if f.is_current else "  (old version)"
            say(f"{f.id:>5}  {f.slug:36} v{f.version:<3} {f.category or '-':14} {f.title}{mark}")
        return 0

    return run_async(go)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _stats_text(stats: Any) -> list[str]:
    lines = [f"{stats.slug} · {stats.title}", ""]
    lines.append(
        f"{'version':8} {'walks':>6} {'resolved':>9} {'escalated':>10} {'abandoned':>10} {'open':>5}  "
        f"{'resolution':>10}  median walk"
    )
    for v in stats.versions:
        rate = "-" if v.resolution_rate is None else f"{v.resolution_rate:.0%}"
        lines.append(
            f"{'v' + str(v.version):8} {v.walks:>6} {v.resolved:>9} {v.escalated:>10} {v.abandoned:>10} "
            f"{v.in_progress:>5}  {rate:>10}  {_duration(v.median_walk_seconds)}"
        )
    lines += ["", f"v{stats.version}, node by node (escalated and abandoned: of the walks that reached the node)"]
    lines.append(f"{'node':24} {'reached':>7} {'on step':>8} {'escalated':>9} {'abandoned':>9}  answers")
    for n in stats.nodes:
        answers = " · ".join(f"{label} {count}" for label, count in n.answers.most_common())
        lines.append(
            f"{n.node_id[:24]:24} {n.reached:>7} {_duration(n.median_seconds):>8} {_share(n.escalated, n.reached):>9} "
            f"{_share(n.abandoned, n.reached):>9}  {answers}"
        )
    return lines


def _stats_json(stats: Any) -> str:
    return inert_json(
        {
            "slug": stats.slug,
            "title": stats.title,
            "nodes_of_version": stats.version,
            "versions": [
                {
                    "version": v.version,
                    "walks": v.walks,
                    "resolved": v.resolved,
                    "escalated": v.escalated,
                    "abandoned": v.abandoned,
                    "in_progress": v.in_progress,
                    "resolution_rate": v.resolution_rate,
                    "median_walk_seconds": v.median_walk_seconds,
                }
                for v in stats.versions
            ],
            "nodes": [
                {
                    "id": n.node_id,
                    "type": n.node_type,
                    "reached": n.reached,
                    "answers": dict(n.answers),
                    "median_seconds_on_step": n.median_seconds,
                    "escalated": n.escalated,
                    "abandoned": n.abandoned,
                }
                for n in stats.nodes
            ],
        },
        indent=2,
    )


def cmd_flows_stats(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.flow_stats import flow_stats

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            stats = await flow_stats(db, actor=actor, slug=args.slug, version=args.version)
        if args.json:
            emit(_stats_json(stats))
        else:
            for line in _stats_text(stats):
                say(line)
        return 0

    return run_async(go)


def cmd_sessions_export(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.export import transcript_json, transcript_markdown
        from rflow_tui.services.walks.reads import read_transcript

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            transcript = await read_transcript(db, actor=actor, session_id=args.session_id)
        render = transcript_json if args.format == "json" else transcript_markdown
        _write(render(transcript), args.output)
        return 0

    return run_async(go)
