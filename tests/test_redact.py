"""What a ticket carries by accident never reaches the model or a PSA note: measured on a
corpus of ticket texts, and checked on the request the real generator sends."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest
from anthropic import AsyncAnthropic

from rflow_tui.ai.anthropic import AnthropicGenerator
from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.privacy import with_privacy
from rflow_tui.ai.prompt import user_message, withheld
from rflow_tui.config import ConfigError, load_settings
from rflow_tui.domain.walk_step import read_path
from rflow_tui.redact import Privacy, Redactor, find, redact_for_psa, summary
from tests.messages_standin import system_text, user_text

DATA = Path(__file__).parent / "data"
CORPUS = json.loads((DATA / "redaction_corpus.json").read_text(encoding="utf-8"))
HOLDOUT = json.loads((DATA / "redaction_holdout.json").read_text(encoding="utf-8"))  # written after the patterns
NODE = {"id": "q-1", "type": "question", "text": "Is the account locked?", "yes_label": "Yes", "no_label": "No"}


def test_the_corpus_is_big_varied_and_has_clean_look_alikes():
    assert len(CORPUS) >= 60
    assert {case["lang"] for case in CORPUS} >= {"en", "es", "fr", "de", "it", "pt", "nl", "pl", "sv"}
    kinds = {item["kind"] for case in CORPUS for item in case["withhold"]}
    assert kinds == {"password", "code", "key", "token", "private-key", "email", "phone"}
    assert sum(not case["withhold"] for case in CORPUS) >= 15  # texts with nothing to withhold
    assert sum(len(case["keep"]) for case in CORPUS) >= 100


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_every_secret_is_withheld_and_every_look_alike_survives(case):
    out = Redactor().redact(case["text"])
    for item in case["withhold"]:
        assert item["value"] not in out, item["kind"]
    for value in case["keep"]:
        assert value in out
    assert sorted(f.kind for f in find(case["text"])) == sorted(
        item["kind"] for item in case["withhold"] for _ in re.finditer(re.escape(item["value"]), case["text"])
    )


@pytest.mark.parametrize("case", HOLDOUT, ids=[case["id"] for case in HOLDOUT])
def test_look_alikes_survive_in_texts_the_patterns_were_not_written_for(case):
    out = Redactor().redact(case["text"])
    assert all(value in out for value in case["keep"])


def walk_context(**kwargs) -> NodeContext:
    path = read_path(
        [
            {
                "node_type": "question",
                "id": "q-mail",
                "text": "Does the user see the sign-in prompt?",
                "answer": "yes",
                "answer_label": "Yes",
                "yes_label": "Yes",
                "no_label": "No",
                "l1_note": "she read me her password again: Hunter2! and her mail anna.k@contoso.com",
            },
            {
                "node_type": "instruction",
                "id": "i-code",
                "text": "Ask for the code on the phone",
                "answer": None,
                "l1_note": "verification code 482913 came to +44 20 7946 0958",
            },
        ]
    )
    return NodeContext(
        problem_text="Outlook asks for the password all day. pw: Hunter2! Reply to anna.k@contoso.com, "
        "printer 10.20.30.40 fine, error 0x80070005, KB5034441.",
        category="email",
        walked_path=path,
        **kwargs,
    )


SECRETS = ("Hunter2!", "anna.k@contoso.com", "482913", "+44 20 7946 0958", "7946 0958")


async def test_the_request_the_generator_sends_holds_no_secret_only_placeholders():
    seen: list[httpx2.Request] = []

    def respond(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        from tests.messages_standin import stream_events

        usage = {"input_tokens": 10, "output_tokens": 10}
        head, chunks, tail = stream_events(json.dumps(NODE), usage, 3, "end_turn")
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=head + b"".join(chunks) + tail
        )

    client = AsyncAnthropic(
        api_key="sk-test", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(respond))
    )
    generator = AnthropicGenerator(api_key="sk-test", client=client, max_retries=0)
    assert await generator.generate(walk_context()) == NODE
    sent = seen[0].content.decode("utf-8")
    for secret in SECRETS:
        assert secret not in sent and json.dumps(secret)[1:-1] not in sent
    prompt = user_text(json.loads(sent))
    # one value, one placeholder, wherever in the walk it stands
    assert prompt.count("[password-1]") == 2 and prompt.count("[email-1]") == 2
    assert "[code-1]" in prompt and "[phone-1]" in prompt
    assert "never ask anyone to reveal or read out what it hides" in system_text(json.loads(sent))
    for look_alike in ("10.20.30.40", "0x80070005", "KB5034441"):
        assert look_alike in prompt


def test_placeholders_keep_their_numbers_as_the_walk_grows_and_steps_are_undone():
    context = walk_context()
    steps = [
        replace(context.walked_path[0], l1_note="cc bob@contoso.com"),
        replace(context.walked_path[1], l1_note="and amy@contoso.com, she is the manager"),
    ]
    live = user_message(replace(context, walked_path=steps))
    assert "<note>cc [email-2]</note>" in live and "<note>and [email-3], she" in live  # anna is [email-1]
    stepped_back = user_message(replace(context, walked_path=[replace(steps[0], undone=True), steps[1]]))
    assert "bob@contoso.com" not in stepped_back and "[email-2]" not in stepped_back
    assert "<note>and [email-3], she" in stepped_back  # amy keeps the number the model already saw


def test_the_tech_is_told_what_was_withheld_in_kinds_and_counts_never_the_values():
    lines = withheld(walk_context())
    assert lines == ["1 password, 1 one-time code, 1 e-mail address and 1 phone number were withheld from the AI"]
    assert not any(secret in line for secret in SECRETS for line in lines)
    assert withheld(NodeContext(problem_text="Printer 10.1.4.22 shows 49.4C02", category="printing")) == []
    assert summary({"email": 2, "password": 1}) == ["2 e-mail addresses and 1 password were withheld from the AI"]
    assert summary({"password": 1}) == ["1 password was withheld from the AI"]


def test_desk_patterns_are_withheld_and_redaction_can_be_turned_off():
    desk = Privacy(extra_patterns=(r"\bEMP-\d{6}\b", r"badge (\d{5})"))
    text = "EMP-204511 lost badge 88123, pw: Hunter2!"
    context = NodeContext(problem_text=text, category="access", privacy=desk)
    prompt = user_message(context)
    assert "EMP-204511" not in prompt and "88123" not in prompt and "badge [withheld-2]" in prompt
    assert "Hunter2!" not in prompt
    assert withheld(context) == [
        "1 password and 2 items matching the desk's privacy patterns were withheld from the AI"
    ]
    off = user_message(NodeContext(problem_text=text, category="access", privacy=Privacy(enabled=False)))
    assert text in off


async def test_the_app_s_generator_carries_the_desk_s_policy_to_the_prompt():
    class Echo:
        name = "echo"

        def __init__(self) -> None:
            self.prompts: list[str] = []

        async def generate(self, context: NodeContext) -> dict:
            self.prompts.append(user_message(context))
            return NODE

    inner = Echo()
    assert with_privacy(inner, Privacy()) is inner
    wrapped = with_privacy(inner, Privacy(extra_patterns=(r"\bEMP-\d{6}\b",)))
    await wrapped.generate(NodeContext(problem_text="EMP-204511 locked out", category="access"))
    assert inner.prompts[-1].count("[withheld-1]") == 1 and "EMP-204511" not in inner.prompts[-1]


def test_privacy_config_defaults_on_and_refuses_unknown_keys_and_bad_patterns(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    assert load_settings(path).privacy.policy() == Privacy()
    path.write_text('[privacy]\nredact = false\nextra_patterns = ["EMP-\\\\d{6}"]\n', encoding="utf-8")
    assert load_settings(path).privacy.policy() == Privacy(enabled=False, extra_patterns=(r"EMP-\d{6}",))
    for body, words in (
        ("[privacy]\nredcat = true\n", "unknown key 'privacy.redcat'"),
        ('[privacy]\nextra_patterns = "EMP"\n', "'privacy.extra_patterns' must be a list of strings"),
        ('[privacy]\nextra_patterns = ["(EMP"]\n', "pattern 1 ('(EMP') is not a valid regular expression"),
        ('[privacy]\nextra_patterns = ["x*"]\n', "matches empty text"),
    ):
        path.write_text(body, encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_settings(path)


def test_a_psa_note_withholds_the_same_and_keeps_one_placeholder_per_value():
    note = "Reset done for anna.k@contoso.com, temp password is Welcome#2025; told anna.k@contoso.com by phone."
    out = redact_for_psa(note)
    assert out == "Reset done for [email-1], temp password is [password-1]; told [email-1] by phone."
    assert redact_for_psa("Anna.K@Contoso.com and anna.k@contoso.com") == "[email-1] and [email-1]"
    assert redact_for_psa(note, Privacy(enabled=False)) == note


@pytest.mark.parametrize(
    "hostile",
    ["a-" * 32768, "x@" + "a." * 32767, "ftp" + "a-" * 32767, "password for " * 5041, "code " + "1 " * 32765],
    ids=["hyphens", "dotted-address", "scheme", "password-for", "code-digits"],
)
def test_a_hostile_ticket_at_the_size_limit_cannot_stall_the_prompt(hostile):
    """Ticket text is untrusted: 64 KiB built to make a regex backtrack is scanned in well under
    a step's deadline (before a fix, 20 KiB of "a-a-a-" took 14 s)."""
    import time

    from rflow_tui.redact import _find

    _find.cache_clear()
    started = time.perf_counter()
    find(hostile)
    assert time.perf_counter() - started < 2.0
