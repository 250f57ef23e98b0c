"""Each person's inbox of the notifications the service writes: their own and, for owners
and admins, the group's fallback ones. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import select

from rflow_tui.models import AuditLog
from rflow_tui.services import notifications as notes
from rflow_tui.services.users import update_user
from rflow_tui.services.walks import endings as walk_endings
from rflow_tui.services.walks import start as walk_start
from tests.conftest import make_desk


async def escalate(db, desk, ticket_id: str = "T-1"):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id=ticket_id)
    return await walk_endings.escalate(db, actor=desk.tech, session_id=walk.id, reason="r", reason_category="network")


async def test_every_engineer_has_the_escalation_unread_in_their_own_inbox(db, desk):
    walk = await escalate(db, desk)
    for person in (desk.owner, desk.admin, desk.engineer, desk.coverage):
        [note] = await notes.inbox(db, actor=person)
        assert note.payload["session_id"] == walk.id and note.read_at is None
        assert await notes.unread_count(db, actor=person) == 1
    assert await notes.inbox(db, actor=desk.tech) == []  # the tech who escalated is not notified
    assert await notes.mark_read(db, actor=desk.engineer) == 1
    assert await notes.unread_count(db, actor=desk.engineer) == 0
    assert await notes.unread_count(db, actor=desk.admin) == 1  # each their own
    assert await notes.mark_read(db, actor=desk.engineer) == 0  # nothing left: nothing recorded
    reads = list(await db.exec(select(AuditLog).where(AuditLog.action == "notification.read")))
    assert [r.actor_user_id for r in reads] == [desk.engineer.id]


async def test_marking_one_read_leaves_the_others_unread(db, desk):
    await escalate(db, desk, "T-1")
    await escalate(db, desk, "T-2")
    newest, oldest = await notes.inbox(db, actor=desk.engineer)
    assert newest.payload["ticket_id"] == "T-2"
    assert await notes.mark_read(db, actor=desk.engineer, notification_ids=[oldest.id]) == 1
    assert [n.read_at is None for n in await notes.inbox(db, actor=desk.engineer)] == [True, False]
    assert await notes.mark_read(db, actor=desk.admin, notification_ids=[newest.id]) == 0  # not the admin's


async def test_the_fallback_goes_to_whoever_holds_owner_or_admin_and_is_read_once_for_the_group(db, desk):
    for user in (desk.owner, desk.admin, desk.engineer, desk.coverage):
        user.is_active = False
        db.add(user)
    await db.commit()
    walk = await escalate(db, desk)
    for user in (desk.owner, desk.admin, desk.engineer):
        user.is_active = True
        db.add(user)
    await db.commit()
    [group] = await notes.inbox(db, actor=desk.owner)
    assert group.recipient_user_id is None and group.payload["session_id"] == walk.id
    assert await notes.unread_count(db, actor=desk.admin) == 1
    assert await notes.inbox(db, actor=desk.engineer) == []  # the group is owners and admins
    await update_user(db, actor=desk.owner, email=desk.admin.email, role="engineer")
    assert await notes.unread_count(db, actor=desk.admin) == 0  # no longer an admin: no longer the group's
    assert await notes.mark_read(db, actor=desk.owner) == 1
    assert (await notes.inbox(db, actor=desk.owner))[0].read_at is not None


async def test_an_inbox_never_shows_another_desks_notifications(db, desk):
    other = await make_desk(db, name="Fabrikam", domain="fabrikam.test")
    await escalate(db, desk)
    assert await notes.inbox(db, actor=other.owner) == []
    assert await notes.unread_count(db, actor=other.owner) == 0
    [note] = await notes.inbox(db, actor=desk.owner)
    assert await notes.mark_read(db, actor=other.owner, notification_ids=[note.id]) == 0
    assert await notes.unread_count(db, actor=desk.owner) == 1
