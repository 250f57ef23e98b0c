"""Recording a walk's steps and notes, and walking an authored flow or a proposal by its
labelled answers (stepping back marks a step undone; history is never rewritten)."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.db import write_transaction
from rflow_tui.domain.enums import (
    WALKS_A_TREE,
    Answer,
)
from rflow_tui.domain.walk_step import StepSource, WalkStep
from rflow_tui.models import L1WalkSession, User, utcnow
from rflow_tui.services.errors import (
    PayloadTooLarge,
    ValidationFailed,
)
from rflow_tui.services.fields import accepted
from rflow_tui.services.walks.core import (
    NOTES_CAP_BYTES,
    STEP_NOTE_CAP,
    active_walk,
    append_step,
    audit_walk,
    check_len,
)


async def record_step(
    db: AsyncSession,
    *,
    actor: User,
    session_id: int,
    node_id: str,
    question: str,
    answer: str | None,
    note: str | None = None,
    yes_label: str | None = None,
    no_label: str | None = None,
    options: list[str] | None = None,
    version: int | None = None,
) -> L1WalkSession:
    """Append the step ``{node_id, question, answer, l1_note}`` (an answer of None
    acknowledges an instruction; a question also records its labels, Yes/No by default;
    a choice, its ``options`` and the chosen one's number as the answer).

    ``version``: the walk's version the caller decided on; if another window has
    stepped or stepped back since, the step is refused under the lock (StaleWalk).
    """
    note = check_len(note, STEP_NOTE_CAP, "the step note")
    if answer is None:
        step = WalkStep.instruction(StepSource.FLOW, node_id, question, note=note)
    elif options is not None:
        try:
            step = WalkStep.choice(StepSource.FLOW, node_id, question, options, answer, note=note)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
    elif answer in tuple(Answer):
        step = WalkStep.question(
            StepSource.FLOW, node_id, question, answer, yes_label=yes_label, no_label=no_label, note=note
        )
    else:
        raise ValidationFailed("answer a question with 'yes' or 'no'")
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id, WALKS_A_TREE, version)
        seq = append_step(db, walk, step)
        db.add(walk)
        await audit_walk(db, actor, walk, "l1.session.step", node_id=node_id, answer=answer, step=seq)
    return walk


async def update_notes(db: AsyncSession, *, actor: User, session_id: int, notes: list[Any]) -> L1WalkSession:
    """Replace the session notes. Over 256 KiB encoded is refused; the stored notes stay."""
    if not isinstance(notes, list):
        raise ValidationFailed("notes must be a list")
    notes = [accepted(n, "the session notes") if isinstance(n, str) else n for n in notes]
    size = len(json.dumps(notes, ensure_ascii=False).encode("utf-8"))
    if size > NOTES_CAP_BYTES:
        raise PayloadTooLarge(
            f"notes are {size / 1024:,.0f} KiB; the limit is {NOTES_CAP_BYTES // 1024} KiB. "
            "Nothing was saved: shorten them and try again"
        )
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id)
        changed = list(notes) != list(walk.walk_notes or [])
        walk.walk_notes = list(notes)
        walk.last_step_at = utcnow()
        db.add(walk)
        if changed:  # the autosave also runs when nothing changed; that is no event
            await audit_walk(db, actor, walk, "l1.session.notes", size_bytes=size)
    return walk


async def save_step_note_draft(db: AsyncSession, *, actor: User, session_id: int, draft: str) -> L1WalkSession:
    """Keep the step note being typed ("" clears it): saved as it is typed, restored on resume.

    Not audited: it is words in progress; the note itself is audited with the answer.
    """
    draft = check_len(accepted(draft, "the step note"), STEP_NOTE_CAP, "the step note")
    async with write_transaction(db):
        walk = await active_walk(db, actor, session_id)
        walk.step_note_draft = draft or None
        db.add(walk)
    return walk
