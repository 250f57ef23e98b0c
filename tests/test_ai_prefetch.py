"""Speculative prefetch at the service and ai layers: what it writes for, when it fits,
and that the store takes only checked nodes."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.generate import CheckedNode, checked_node
from rflow_tui.ai.prefetch import Prefetcher
from rflow_tui.ai.prompt import user_message
from rflow_tui.services.errors import InvalidState
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import start as walk_start
from tests.fakes import ScriptedGenerator, ScriptedJudge
from tests.tui_support import ACCOUNT_Q, FIXED, SAFE_MODE
from tests.walk_paths import path_of, put_path


class Held:
    """A generator that answers only when told, counting requests in flight."""

    name = "held"

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.in_flight = 0
        self.most = 0
        self.contexts: list[NodeContext] = []

    async def generate(self, context):
        self.contexts.append(context)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.go.wait()
        finally:
            self.in_flight -= 1
        return SAFE_MODE if "Microsoft account" in user_message(context) else FIXED


async def served_question(db, desk):
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text="Outlook"
    )
    node = await ai_steps.advance_ai_build(
        db, actor=desk.tech, session_id=walk.id, generator=ScriptedGenerator(ACCOUNT_Q), judge=None
    )
    return walk, node


async def test_prefetch_contexts_are_the_answers_contexts_and_fit_the_real_answer(db, desk):
    walk, node = await served_question(db, desk)
    contexts = await ai_steps.ai_prefetch_contexts(db, actor=desk.tech, session_id=walk.id, token=node["token"])
    assert set(contexts) == {"yes", "no"}
    assert contexts["yes"].walked_path[-1].answer_label == "Microsoft account"
    assert contexts["no"].walked_path[-1].answer_label == "Local account"
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert (await path_of(db, stored)) == [] and stored.pending_node["token"] == node["token"]  # nothing was written
    step = await ai_steps.answer_ai_node(
        db, actor=desk.tech, session_id=walk.id, node_id="q1", token=node["token"], answer="no"
    )
    assert user_message(step.context) == user_message(contexts["no"])
    assert user_message(step.context) != user_message(contexts["yes"])


async def test_a_stale_token_or_an_end_gets_no_prefetch(db, desk):
    walk, node = await served_question(db, desk)
    assert await ai_steps.ai_prefetch_contexts(db, actor=desk.tech, session_id=walk.id, token="not-it") == {}
    end = await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=ScriptedGenerator(FIXED),
        judge=None,
        node_id="q1",
        token=node["token"],
        answer="no",
    )
    assert await ai_steps.ai_prefetch_contexts(db, actor=desk.tech, session_id=walk.id, token=end["token"]) == {}


async def test_a_ready_prefetch_is_stored_with_its_answer_in_one_step_and_only_if_it_fits(db, desk):
    walk, node = await served_question(db, desk)
    contexts = await ai_steps.ai_prefetch_contexts(db, actor=desk.tech, session_id=walk.id, token=node["token"])
    judge = ScriptedJudge()
    for_yes = await checked_node(ScriptedGenerator(SAFE_MODE), contexts["yes"], judge)
    other_judge = await checked_node(ScriptedGenerator(SAFE_MODE), contexts["yes"], ScriptedJudge())
    token = node["token"]
    answered = dict(actor=desk.tech, session_id=walk.id, node_id="q1", token=token, answer="yes", judge=judge)
    for misfit in (for_yes, other_judge):
        note = "remote user" if misfit is for_yes else None  # a note changes the prompt; another judge never fits
        step = await ai_steps.answer_ai_node(db, **answered, note=note, prefetched=misfit)
        assert step.served is None and step.walk.pending_node is None
        await db.rollback()
        walk_now = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
        await put_path(db, walk_now, [], commit=False)  # put the question back for the next try
        walk_now.pending_node = node
        db.add(walk_now)
        await db.commit()
    step = await ai_steps.answer_ai_node(db, **answered, prefetched=for_yes)
    assert step.served["id"] == "i1" and step.served["token"] != token
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert stored.pending_node == step.served and [s["id"] for s in (await path_of(db, stored))] == ["q1"]


async def test_the_store_serves_only_a_node_checked_by_this_desks_judge(db, desk):
    walk, node = await served_question(db, desk)
    judge = ScriptedJudge()
    step = await ai_steps.answer_ai_node(
        db, actor=desk.tech, session_id=walk.id, node_id="q1", token=node["token"], answer="yes"
    )
    with pytest.raises(TypeError):
        CheckedNode(SAFE_MODE, judge, user_message(step.context), object())  # cannot be forged outside ai.generate
    unjudged = await checked_node(ScriptedGenerator(SAFE_MODE), step.context, None)
    with pytest.raises(InvalidState, match="safety judge"):
        await ai_steps.serve_ai_node(db, actor=desk.tech, session_id=walk.id, step=step, checked=unjudged, judge=judge)
    judged = await checked_node(ScriptedGenerator(SAFE_MODE), step.context, judge)
    served = await ai_steps.serve_ai_node(
        db, actor=desk.tech, session_id=walk.id, step=step, checked=judged, judge=judge
    )
    assert served["id"] == "i1" and served["token"]


async def test_two_prefetches_at_most_and_claiming_one_throws_the_other_away(db, desk):
    walk, node = await served_question(db, desk)
    contexts = await ai_steps.ai_prefetch_contexts(db, actor=desk.tech, session_id=walk.id, token=node["token"])
    generator = Held()
    prefetcher = Prefetcher(generator, None, deadline=5.0)
    prefetcher.start({**contexts, "third": contexts["yes"]})
    await asyncio.sleep(0.05)
    assert generator.in_flight == 2 and prefetcher.in_flight == 2
    step = await ai_steps.answer_ai_node(
        db, actor=desk.tech, session_id=walk.id, node_id="q1", token=node["token"], answer="yes"
    )
    chosen = prefetcher.claim("yes", step.context)
    await asyncio.sleep(0.05)
    assert chosen is not None and generator.in_flight == 1 and prefetcher.in_flight == 0
    generator.go.set()
    assert (await chosen.result()).node["id"] == "i1"
    assert generator.most == 2


async def test_a_prefetch_made_before_a_note_or_a_step_back_does_not_fit(db, desk):
    walk, node = await served_question(db, desk)
    contexts = await ai_steps.ai_prefetch_contexts(db, actor=desk.tech, session_id=walk.id, token=node["token"])
    generator = Held()
    generator.go.set()
    prefetcher = Prefetcher(generator, None, deadline=5.0)

    prefetcher.start(contexts)
    step = await ai_steps.answer_ai_node(
        db, actor=desk.tech, session_id=walk.id, node_id="q1", token=node["token"], answer="yes", note="user is remote"
    )
    assert prefetcher.claim("yes", step.context) is None  # the note is in the prompt now
    assert prefetcher.prefetches == {}

    prefetcher.start(contexts)
    answered = contexts["yes"].walked_path[-1]
    stepped_back = replace(contexts["yes"], walked_path=[answered.undo(answered_at())])
    assert prefetcher.claim("yes", stepped_back) is None


def answered_at():
    from datetime import UTC, datetime

    return datetime(2026, 11, 25, tzinfo=UTC)
