"""A live AI build end to end: what the user typed into the ticket and the tech into a
step note reaches the model only as placeholders, through the real SDK, and the tech and
the PSA note are told and given the same."""

from __future__ import annotations

import json

import httpx2
from anthropic import AsyncAnthropic

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.ai.privacy import with_privacy
from rflow_tui.redact import Privacy
from rflow_tui.services.export import transcript_markdown
from rflow_tui.services.privacy import transcript_for_psa, withheld_from_ai
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import start as walk_start
from rflow_tui.services.walks.reads import read_transcript
from tests.messages_standin import stream_events, user_text

ACCOUNT_Q = {
    "id": "q-account",
    "type": "question",
    "text": "Microsoft account or local account?",
    "yes_label": "Microsoft account",
    "no_label": "Local account",
}
RESTART = {"id": "i-restart", "type": "instruction", "text": "Restart Outlook and wait for it to sync."}
PROBLEM = (
    "Outlook asks for my password all day. pw: Hunter2! My mail is anna.k@contoso.com, "
    "employee EMP-204511, call +44 20 7946 0958. Error 0x80070005 since KB5034441."
)
NOTE = "user read me the verification code 482913; anna.k@contoso.com again"
SECRETS = ("Hunter2!", "anna.k@contoso.com", "EMP-204511", "+44 20 7946 0958", "482913")
DESK = Privacy(extra_patterns=(r"\bEMP-\d{6}\b",))


def standin(*nodes: dict) -> tuple[AnthropicGenerator, list[str]]:
    """The real generator against a stand-in that answers ``nodes`` in turn and keeps each request body."""
    bodies: list[str] = []

    def respond(request: httpx2.Request) -> httpx2.Response:
        bodies.append(request.content.decode("utf-8"))
        node = nodes[min(len(bodies), len(nodes)) - 1]
        head, chunks, tail = stream_events(json.dumps(node), {"input_tokens": 50, "output_tokens": 20}, 3)
        events = head + b"".join(chunks) + tail
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=events)

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(respond))
    client = AsyncAnthropic(api_key="sk-test", max_retries=0, http_client=http)
    return AnthropicGenerator(api_key="sk-test", client=client, max_retries=0), bodies


async def test_an_ai_build_never_sends_the_ticket_s_or_the_note_s_secrets(db, desk):
    generator, bodies = standin(ACCOUNT_Q, RESTART)
    app_generator = with_privacy(generator, DESK)  # as AppContext builds it from [privacy]
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text=PROBLEM
    )
    node = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=app_generator, judge=None)
    await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=app_generator,
        judge=None,
        node_id=node["id"],
        token=node["token"],
        answer="no",
        note=NOTE,
    )
    assert len(bodies) == 2
    for body in bodies:
        for secret in SECRETS:
            assert secret not in body
    second = user_text(json.loads(bodies[1]))
    assert second.count("[email-1]") == 2  # the ticket's address and the note's: one placeholder
    assert "[withheld-1]" in second and "[password-1]" in second and "[code-1]" in second
    assert "0x80070005" in second and "KB5034441" in second

    lines = await withheld_from_ai(db, actor=desk.tech, session_id=walk.id, privacy=DESK)
    assert lines == [
        "1 password, 1 one-time code, 1 e-mail address, 1 phone number and 1 item matching the desk's "
        "privacy patterns were withheld from the AI"
    ]

    note = transcript_markdown(transcript_for_psa(await read_transcript(db, actor=desk.tech, session_id=walk.id), DESK))
    for secret in SECRETS:
        assert secret not in note
    assert "\\[email-1\\]" in note and "0x80070005" in note  # Markdown-escaped; it renders as [email-1]
    raw = transcript_markdown(await read_transcript(db, actor=desk.tech, session_id=walk.id))
    assert "Hunter2!" in raw  # the desk's own record keeps what was typed; only what leaves is redacted


async def test_a_flow_walk_sends_nothing_to_a_model_so_nothing_is_said_withheld(db, desk):
    walk = await walk_start.start_adhoc_session(db, actor=desk.tech, ticket_id="T-2")
    assert await withheld_from_ai(db, actor=desk.tech, session_id=walk.id) == []
