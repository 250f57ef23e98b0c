"""What a walk withheld from the model, and a transcript fit for a PSA note.

The screens show ``withheld_from_ai`` beside an AI build so the tech knows the model never
saw the password the user typed; a transcript bound for a PSA goes through
``transcript_for_psa`` first (one redactor, so a value has one placeholder in the note).
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.prompt import withheld
from rflow_tui.domain.enums import WalkKind
from rflow_tui.models import User
from rflow_tui.redact import DEFAULT_PRIVACY, Privacy, Redactor
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks.path import walk_steps_of


async def withheld_from_ai(
    db: AsyncSession, *, actor: User, session_id: int, privacy: Privacy = DEFAULT_PRIVACY
) -> list[str]:
    """Lines such as "2 e-mail addresses and 1 password were withheld from the AI"; empty for
    a walk that sends nothing to a model or withheld nothing. ``privacy``: the desk's ``[privacy]``."""
    walk = await walk_core.get_session(db, actor=actor, session_id=session_id)
    if walk.session_kind != WalkKind.AI_BUILD:
        return []
    steps = await walk_steps_of(db, walk)
    context = NodeContext(problem_text=walk.problem_text or "", category=walk.category or "", walked_path=steps)
    return withheld(context, privacy)


def transcript_for_psa(transcript: dict[str, Any], privacy: Privacy = DEFAULT_PRIVACY) -> dict[str, Any]:
    """``transcript`` (``walks.reads.read_transcript``) with the secrets in its free text withheld.

    Free text is what users and techs typed or the model wrote: the problem, steps, notes,
    the resolution and the escalation reason. Names, ids and the PSA's own subject stay.
    """
    redactor = Redactor(privacy)

    def private(value: Any) -> Any:
        return redactor.redact(value) if isinstance(value, str) else value

    out = dict(transcript)
    out["problem"] = private(transcript.get("problem"))
    out["steps"] = [
        {**step, "text": private(step.get("text")), "note": private(step.get("note"))}
        for step in transcript.get("steps") or []
    ]
    if transcript.get("current_node"):
        out["current_node"] = {**transcript["current_node"], "text": private(transcript["current_node"].get("text"))}
    out["notes"] = [private(note) for note in transcript.get("notes") or []]
    if transcript.get("resolution"):
        out["resolution"] = {**transcript["resolution"], "notes": private(transcript["resolution"].get("notes"))}
    if transcript.get("escalation"):
        out["escalation"] = {**transcript["escalation"], "reason": private(transcript["escalation"].get("reason"))}
    return out
