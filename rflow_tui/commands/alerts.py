"""`rflow alerts`: send the alerts escalations queued, see them, queue a failed one again, test the URLs."""

from __future__ import annotations

import argparse
import asyncio

from rflow_tui.commands.common import CommandError, acting_user, load, run_async, run_watching, sessions, whole_number
from rflow_tui.commands.output import say
from rflow_tui.commands.psa import poll_seconds


def register(sub: argparse._SubParsersAction) -> None:
    alerts = sub.add_parser("alerts", help="escalation alerts to Slack, Teams, e-mail or a webhook ([alerts] urls)")
    cmds = alerts.add_subparsers(dest="alerts_cmd", required=True)
    p = cmds.add_parser("push", help="send every alert that is due to the configured URLs, once each")
    p.add_argument("--watch", action="store_true", help="keep sending what escalations queue until Ctrl+C")
    p.add_argument(
        "--every", type=poll_seconds, default=30, metavar="SECONDS", help="with --watch: seconds between drains (30)"
    )
    p.set_defaults(handler=cmd_alerts_push)
    p = cmds.add_parser("status", help="the alerts: pending, delivered, failed and skipped, with the last error")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(handler=cmd_alerts_status)
    p = cmds.add_parser("retry", help="queue a failed alert again (after fixing the URL); unconfirmed sends go again")
    p.add_argument("item_id", type=whole_number, metavar="ID")
    p.set_defaults(handler=cmd_alerts_retry)
    cmds.add_parser("test", help="send a test alert to each configured URL and say which went out").set_defaults(
        handler=cmd_alerts_test
    )


def _urls(settings) -> None:
    if not settings.alerts.urls:
        raise CommandError(f"no alert URLs: add [alerts] urls = [...] to {settings.config_path} (config.example.toml)")


def cmd_alerts_push(args) -> int:
    settings = load(args)
    _urls(settings)

    async def go() -> int:
        from rflow_tui.services.alert_outbox import drain

        async with sessions(settings, "send escalation alerts") as open_db:
            async with open_db() as db:
                actor = await acting_user(db, settings)
            while True:
                drained = await drain(open_db, actor=actor, alerts=settings.alerts, privacy=settings.privacy.policy())
                if not args.watch or drained.delivered or drained.failed or drained.waiting or drained.skipped:
                    say(
                        f"sent {drained.delivered}, failed {drained.failed}, waiting to retry {drained.waiting}, "
                        f"not wanted by the filters {drained.skipped}"
                    )
                if not args.watch:
                    return 1 if drained.failed else 0
                await asyncio.sleep(args.every)

    return run_watching(args, go)


def cmd_alerts_status(args) -> int:
    from rflow_tui.commands.outbox import show_status
    from rflow_tui.services.alert_outbox import as_row, outbox

    def what(row: dict) -> str:
        reached = f" reached {len(row['sent_to'])}" if row["sent_to"] else ""
        return f"ticket {row['ticket']} ({row['reason_category']}){reached}"

    return show_status(
        args,
        listing=outbox,
        as_row=as_row,
        what=what,
        empty="no alerts yet: nothing has been escalated since alerts came in",
    )


def cmd_alerts_retry(args) -> int:
    from rflow_tui.commands.outbox import requeue
    from rflow_tui.services.alert_outbox import retry

    return requeue(
        args,
        retry=retry,
        said=lambda item: f"alert #{item.id} (ticket {item.ticket_id}) is queued again: rflow alerts push sends it",
    )


def cmd_alerts_test(args) -> int:
    """No store: the URLs themselves are under test, each told this is only a test."""
    settings = load(args, allow_missing=True)
    _urls(settings)

    async def go() -> int:
        import secrets

        from rflow_tui.alerts.message import Alert
        from rflow_tui.alerts.send import Outcome, destination_key, send
        from rflow_tui.services.alert_outbox import destinations

        alert = Alert(
            title="rflow test alert",
            body="A test alert from rflow (rflow alerts test): escalations will arrive here like this.",
        )
        key = secrets.token_hex(16)
        targets = destinations(settings.alerts)
        results = await asyncio.gather(
            *(send(t, alert, key=destination_key(key, t), timeout=settings.alerts.timeout_seconds) for t in targets)
        )
        for n, (target, result) in enumerate(zip(targets, results, strict=True), start=1):
            name = f"#{n} {target.kind} ({target.fingerprint[:8]})"
            if result.outcome is Outcome.SENT:
                say(f"{name}: sent")
            else:
                say(f"{name}: not sent ({result.outcome.value}): {result.detail}")
        sent = sum(result.outcome is Outcome.SENT for result in results)
        say(f"{sent} of {len(targets)} went out")
        return 0 if sent == len(targets) else 1

    return run_async(go)
