"""The tech's day after a walk: My walks opens a finished walk (its transcript, notes, outcome
and what the engineers did with it since), `x` exports it without overwriting a file, and an
escalation made without a walk says so wherever it shows (issue 22)."""

from __future__ import annotations

import pytest

from rflow_tui.services import escalations as esc
from rflow_tui.services.export import transcript_markdown
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks import steps as walk_steps
from rflow_tui.services.walks.reads import read_transcript
from tests.tui_support import INJECTION, make_app, seed_tickets, wait_for
from tests.walk_paths import put_path

CHARGER_STEP = {
    "node_type": "question",
    "id": "q1",
    "text": "Does the spare charger light up?",
    "answer": "no",
    "l1_note": "tried the spare from the cupboard",
    "answer_label": "No light at all",
    "yes_label": "It lights up",
    "no_label": "No light at all",
}


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """Inside tmux: the export also goes to a file under this data directory."""
    monkeypatch.delenv("SSH_TTY", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "rflow" / "transcripts"


def shown(app, name: str) -> str:
    return str(app.screen.query_one(f"#finished-{name}").render())


async def open_my_walks(pilot, app, rows: int) -> None:
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PickerScreen")
    await pilot.press("f3")
    await wait_for(
        pilot, lambda: app.screen.__class__.__name__ == "MyWalksScreen" and len(app.screen.walks or []) == rows
    )


async def open_highlighted(pilot, app) -> None:
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "FinishedWalkScreen" and app.screen.transcript)


async def escalated_and_worked(db, desk, ticket_id: str):
    """A tech's AI walk, escalated; an engineer claims it, comments, closes it, reopens it, closes it again."""
    await seed_tickets(db, desk.tech.account_id, [(ticket_id, "Laptop will not charge", "Al")])
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id=ticket_id, category="hardware", problem_text="Laptop will not charge"
    )
    await put_path(db, walk, [CHARGER_STEP])
    await walk_steps.update_notes(db, actor=desk.tech, session_id=walk.id, notes=["User on site until 4"])
    await walk_endings.escalate(
        db, actor=desk.tech, session_id=walk.id, reason="Battery looks swollen", reason_category="hardware"
    )
    await esc.claim(db, actor=desk.engineer, session_id=walk.id)
    await esc.add_comment(db, actor=desk.engineer, session_id=walk.id, body=INJECTION)
    await esc.close(db, actor=desk.engineer, session_id=walk.id, outcome="workaround", notes="Loaner laptop issued")
    await esc.reopen(db, actor=desk.engineer, session_id=walk.id)
    await esc.close(db, actor=desk.engineer, session_id=walk.id, outcome="fixed", notes="Battery replaced")
    return walk


async def test_my_walks_opens_an_escalation_with_its_fate_and_x_exports_it_beside_an_existing_file(
    store, db, desk, data_home
):
    walk = await escalated_and_worked(db, desk, "T-960")
    data_home.mkdir(parents=True)
    existing = data_home / f"T-960-walk-{walk.id}.md"
    existing.write_text("another desk's walk 1 on T-960", encoding="utf-8")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_my_walks(pilot, app, rows=1)
        await open_highlighted(pilot, app)
        steps = shown(app, "steps")
        assert "Does the spare charger light up?" in steps and "No light at all" in steps
        assert "tried the spare from the cupboard" in steps
        assert "User on site until 4" in shown(app, "notes")
        assert "Battery looks swollen" in shown(app, "outcome") and "Hardware fault" in shown(app, "outcome")
        fate = shown(app, "fate")
        assert "Closed · Fixed · by eng@contoso.test" in fate and "Battery replaced" in fate
        assert "claimed it" in fate and "closed it (Workaround in place)" in fate and "reopened it" in fate
        assert "[@click=app.quit]q[/]" in shown(app, "comments")  # shown as typed, never run as markup
        assert app.is_running

        await pilot.press("x")
        await wait_for(pilot, lambda: any("Transcript saved" in n.message for n in app._notifications))
        assert existing.read_text(encoding="utf-8") == "another desk's walk 1 on T-960"
        exported = (data_home / f"T-960-walk-{walk.id}-2.md").read_text(encoding="utf-8")
        assert exported == app.clipboard
        for fact in ("No light at all", "tried the spare from the cupboard", "User on site until 4"):
            assert fact in exported
        assert "### What the engineers did" in exported and "Battery replaced" in exported
        assert "reopened it" in exported and "(Workaround in place)" in exported
        assert "\\[@click=app.quit\\]q\\[/\\]" in exported  # the comment, escaped for Markdown

        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MyWalksScreen")


async def test_the_engineers_export_carries_the_same_comments_and_fate(store, db, desk, data_home):
    walk = await escalated_and_worked(db, desk, "T-961")
    app = make_app(store, desk.engineer)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "EscalationsScreen")
        await wait_for(pilot, lambda: app.screen.query_one("#escalation-list").row_count == 1)
        await pilot.press("x")
        await wait_for(pilot, lambda: any("Transcript saved" in n.message for n in app._notifications))
        exported = (data_home / f"T-961-walk-{walk.id}.md").read_text(encoding="utf-8")
        assert "### What the engineers did" in exported and "- **What was done:** Battery replaced" in exported
        assert "### Comments" in exported and "reopened it" in exported


async def test_resolved_and_abandoned_walks_open_with_what_was_done_and_why(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-962", "Toner low", "Bo"), ("T-963", "Wrong ticket", "Cy")])
    resolved = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-962")
    await walk_endings.resolve(
        db, actor=desk.tech, session_id=resolved.id, helpful=True, resolution_notes="Replaced the toner"
    )
    abandoned = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-963")
    await walk_endings.abandon(db, actor=desk.tech, session_id=abandoned.id, reason="Duplicate of T-962")
    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_my_walks(pilot, app, rows=2)  # newest first: the abandoned walk, then the resolved one
        await open_highlighted(pilot, app)
        assert "Abandoned" in shown(app, "outcome") and "Duplicate of T-962" in shown(app, "outcome")
        assert "Not escalated" in shown(app, "fate")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "MyWalksScreen")
        await pilot.press("down")
        await open_highlighted(pilot, app)
        assert "What was done: Replaced the toner" in shown(app, "outcome")


async def test_an_escalation_without_a_walk_is_labelled_so_everywhere(store, db, desk):
    await seed_tickets(db, desk.tech.account_id, [("T-970", "Server room hot", "Di"), ("T-971", "Mouse", "Ed")])
    no_walk = await walk_endings.escalate_without_walk(
        db, actor=desk.tech, ticket_id="T-970", reason="Nothing covers it", reason_category="no_flow"
    )
    adhoc = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-971")  # a walk, no steps
    await walk_endings.escalate(db, actor=desk.tech, session_id=adhoc.id, reason="Broken", reason_category="hardware")

    markdown = transcript_markdown(await read_transcript(db, actor=desk.engineer, session_id=no_walk.id))
    assert "- **Walk:** Escalated without a walk" in markdown
    assert "Escalated without a walk" not in transcript_markdown(
        await read_transcript(db, actor=desk.engineer, session_id=adhoc.id)
    )

    app = make_app(store, desk.tech)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_my_walks(pilot, app, rows=2)
        table = app.screen.query_one("#my-walks")
        kinds = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[3]) for i in range(2)}
        assert kinds == {"T-970": "No walk", "T-971": "Ad-hoc"}
        await pilot.press("down")  # T-970, the older of the two
        await open_highlighted(pilot, app)
        assert "Escalated without a walk" in shown(app, "outcome")
        assert "Escalated without a walk: no steps" in shown(app, "steps")

    engineer_app = make_app(store, desk.engineer)
    async with engineer_app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: engineer_app.screen.__class__.__name__ == "EscalationsScreen")
        screen = engineer_app.screen
        await wait_for(pilot, lambda: screen.query_one("#escalation-list").row_count == 2)
        await pilot.press("down")
        meta = screen.query_one("#escalation-ticket #ticket-meta")
        await wait_for(pilot, lambda: f"Escalated without a walk · session {no_walk.id}" in str(meta.render()))
        assert "Escalated without a walk by Tina Tech" in str(screen.query_one("#escalation-body").render())
