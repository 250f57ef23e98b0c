"""Flow commands (``flows import/export/list/check``) and ``sessions export`` for PSA tickets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rflow_tui.commands.common import CommandError, acting_user, load, run_async, store
from rflow_tui.commands.output import emit, say
from rflow_tui.files import FileProblem, read_text
from rflow_tui.text import inert_json


def register(sub: argparse._SubParsersAction) -> None:
    flows = sub.add_parser("flows", help="the desk's flow library").add_subparsers(dest="flows_cmd", required=True)
    p = flows.add_parser("import", help="check and import flow files (JSON); any failing file imports nothing")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(handler=cmd_flows_import)
    p = flows.add_parser("export", help="print a flow as JSON (the import format)")
    p.add_argument("flow_id", type=int, metavar="ID")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(handler=cmd_flows_export)
    p = flows.add_parser("list", help="list the desk's flows")
    p.add_argument("--all", action="store_true", help="every version, not just the current ones")
    p.set_defaults(handler=cmd_flows_list)
    p = flows.add_parser("check", help="check flow files without importing them (no database needed)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(handler=cmd_flows_check)

    sessions = sub.add_parser("sessions", help="walk sessions").add_subparsers(dest="sessions_cmd", required=True)
    p = sessions.add_parser("export", help="a session transcript to paste into a PSA ticket")
    p.add_argument("session_id", type=int, metavar="ID")
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


def _check_files(paths: list[Path]) -> tuple[list[tuple[Path, Any]], int]:
    """Parse and check every file, printing each problem (stderr), each safety waiver that
    applied (stdout: it is part of what the flow says) and notes; returns the docs and the
    problem count."""
    from rflow_tui.flow_format import review_flow

    docs, failures = [], 0
    for path in paths:
        try:
            doc = read_flow_file(path)
        except CommandError as exc:
            say(exc, err=True)
            failures += 1
            continue
        review = review_flow(doc, require_title=True)
        for problem in review.problems:
            say(f"{path}: {problem}", err=True)
        for waiver in review.waived:
            say(f"{path}: {waiver}")
        for note in review.notes:
            say(f"{path}: note: {note}", err=True)
        failures += len(review.problems)
        docs.append((path, doc))
    return docs, failures


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
    docs, failures = _check_files(args.files)
    if failures:
        raise CommandError(f"{failures} problem(s) in {len(args.files)} file(s)")
    for path, _ in docs:
        say(f"{path}: ok")
    return 0


def cmd_flows_import(args) -> int:
    docs, failures = _check_files(args.files)
    if failures:
        raise CommandError(f"{failures} problem(s); nothing was imported")
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.flows import import_flow_doc

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            for path, doc in docs:
                flow = await import_flow_doc(db, actor=actor, doc=doc, source=str(path))
                say(f"{path}: flow {flow.id} '{flow.title}' ({flow.slug} v{flow.version})")
        return 0

    return run_async(go)


def cmd_flows_export(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.flows import flow_document, get_flow

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            flow = await get_flow(db, actor=actor, flow_id=args.flow_id)
        _write(inert_json(flow_document(flow), indent=2), args.output)
        return 0

    return run_async(go)


def cmd_flows_list(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.flows import list_flows

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


def cmd_sessions_export(args) -> int:
    settings = load(args)

    async def go() -> int:
        from rflow_tui.services.export import session_transcript, transcript_json, transcript_markdown

        async with store(settings) as db:
            actor = await acting_user(db, settings)
            transcript = await session_transcript(db, actor=actor, session_id=args.session_id)
        render = transcript_json if args.format == "json" else transcript_markdown
        _write(render(transcript), args.output)
        return 0

    return run_async(go)
