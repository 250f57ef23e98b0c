"""The OpenAI-compatible generator and judge (private models) through the real ``openai`` SDK,
against the loopback stand-in (tests/openai_standin.py): the request, the stream, every
failure in its own words, the step's deadline, the walk service, and the config."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx2
import pytest

from rflow_tui.ai.base import NodeContext
from rflow_tui.ai.errors import (
    AuthRefusedError,
    ContentFilteredError,
    GenerationError,
    GenerationTimeoutError,
    JudgeDeclinedError,
    JudgeError,
    JudgeRateLimitedError,
    JudgeTimeoutError,
    JudgeUnknownModelError,
    MalformedNodeError,
    MalformedVerdictError,
    MissingKeyError,
    NetworkError,
    NoGeneratorError,
    NoJudgeError,
    OverloadedError,
    RateLimitedError,
    RefusalError,
    ServerError,
    TruncatedError,
    UnknownModelError,
    UnsafeNodeError,
)
from rflow_tui.ai.generate import next_valid_node
from rflow_tui.ai.judge import CandidateNode, Verdict
from rflow_tui.ai.openai import DEFAULT_MODEL, OpenAIGenerator
from rflow_tui.ai.openai_judge import OpenAIJudge
from rflow_tui.ai.prefetch import Prefetcher
from rflow_tui.ai.registry import make_generator, make_judge
from rflow_tui.config import ConfigError, LLMSettings, load_settings
from rflow_tui.safety import rule_catalogue, scan_node
from rflow_tui.services.walks import ai_steps
from rflow_tui.services.walks import core as walk_core
from rflow_tui.services.walks import start as walk_start
from tests.openai_standin import Finish, Refuse, Stall, StandIn, Status
from tests.walk_paths import path_of

NODE = {
    "id": "q-account",
    "type": "question",
    "text": "Is it a Microsoft account? Check the sign-in screen. Then answer below.",
    "yes_label": "Microsoft account",
    "no_label": "Local account",
}
RESTART = {"id": "i-restart", "type": "instruction", "text": "Restart Outlook and wait for it to sync.",
           "yes_label": "", "no_label": ""}  # fmt: skip
SAFE = {"verdict": "safe", "rule": "", "reason": "A routine step."}
CONTEXT = NodeContext(problem_text="Outlook keeps asking for my password", category="email")
RULE = rule_catalogue()[0]
DEADLINE = 1.0
GUARD = 15.0  # far above the deadline, far below any wait the deadline must cut short


def generator(standin: StandIn, **kwargs) -> OpenAIGenerator:
    kwargs.setdefault("max_retries", 0)
    return OpenAIGenerator(api_key="sk-test", model="llama3.1:8b", client=standin.client("sk-test"), **kwargs)


def judge(standin: StandIn, **kwargs) -> OpenAIJudge:
    kwargs.setdefault("max_retries", 0)
    return OpenAIJudge(api_key="sk-test", model="llama3.1:8b", client=standin.client("sk-test"), **kwargs)


async def step(gen, judge=None, deadline: float = DEADLINE):
    return await asyncio.wait_for(next_valid_node(gen, CONTEXT, judge, deadline_seconds=deadline), GUARD)


# --- the request and the stream -----------------------------------------------------------


async def test_the_request_asks_for_the_node_schema_strictly_and_streams_with_usage():
    standin = StandIn(NODE)
    gen = generator(standin)
    assert await gen.generate(CONTEXT) == NODE
    [body] = standin.requests
    assert body["model"] == "llama3.1:8b" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    form = body["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
    assert form["json_schema"]["schema"]["required"] == ["id", "type", "text", "yes_label", "no_label"]
    system, user = body["messages"]
    assert system["role"] == "system" and all(rule.description in system["content"] for rule in rule_catalogue())
    assert user["content"].startswith('<ticket category="email">')
    assert not {"temperature", "top_p", "max_tokens"} & set(body)  # reasoning models refuse them
    assert standin.headers[0]["authorization"] == "Bearer sk-test"
    assert gen.last_usage and gen.last_usage["input_tokens"] > 0 and gen.last_usage["output_tokens"] > 0


async def test_the_node_streams_to_on_partial_as_it_is_written():
    standin = StandIn(NODE, chunks=8)
    partials: list[dict] = []
    node = await generator(standin).stream(CONTEXT, partials.append)
    assert node == NODE
    texts = [p.get("text", "") for p in partials if p]
    assert len(texts) >= 4 and texts == sorted(texts, key=len)  # it grows, never shrinks
    assert any(0 < len(text) < len(NODE["text"]) for text in texts)  # seen before it was whole
    assert partials[0] == {}  # a try starts by clearing


async def test_the_preview_shows_whole_sentences_while_the_step_streams():
    shown: list[str] = []
    node = await next_valid_node(
        generator(StandIn(NODE, chunks=12)), CONTEXT, None, on_preview=lambda kind, text: shown.append(text)
    )
    assert node["id"] == "q-account"
    assert "Is it a Microsoft account?" in shown and shown[-1] == NODE["text"]


async def test_a_local_server_without_a_key_needs_none(monkeypatch):
    monkeypatch.delenv("RFLOW_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    gen = OpenAIGenerator.from_settings(LLMSettings(generator="openai", base_url="http://127.0.0.1:11434/v1"))
    client = gen.client()
    assert str(client.base_url).startswith("http://127.0.0.1:11434/v1") and client.max_retries == 0
    assert client.api_key != "sk-must-not-leak"  # the SDK's own environment variable is never read


# --- each failure in its own words ----------------------------------------------------------


@pytest.mark.parametrize(
    "reply, exc, words",
    [
        (Status(401), AuthRefusedError, "refused our API key"),
        (Status(403), AuthRefusedError, "refused our API key"),
        (Status(404), UnknownModelError, "no model named 'llama3.1:8b'"),
        (Status(429), RateLimitedError, "rate limit"),
        (Status(503), OverloadedError, "overloaded"),
        (Status(500), ServerError, "internal error"),
        (Status(409), GenerationError, "HTTP 409"),
        (Finish('{"id": "q-acc', "length"), TruncatedError, "cut off"),
        (Finish("", "content_filter"), ContentFilteredError, "content filter"),
        (Refuse(), RefusalError, "t asks it again"),
        ("", MalformedNodeError, "empty"),
        ("Sure! Here is the next step: restart it.", MalformedNodeError, "malformed JSON"),
        ('["not", "a", "node"]', MalformedNodeError, "not a JSON object"),
    ],
)
async def test_each_failure_is_its_own_error_with_a_plain_message(reply, exc, words):
    with pytest.raises(exc, match=words) as raised:
        await generator(StandIn(reply)).generate(CONTEXT)
    assert type(raised.value) is exc
    assert "Traceback" not in str(raised.value) and "stand-in says no" not in str(raised.value)


async def test_network_down_is_a_network_error_and_a_timeout_a_timeout():
    def down(request):
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(NetworkError, match="Cannot reach the AI service"):
        await generator(StandIn(down)).generate(CONTEXT)

    def slow(request):
        raise httpx2.ReadTimeout("timed out", request=request)

    with pytest.raises(GenerationTimeoutError, match="took too long"):
        await generator(StandIn(slow)).generate(CONTEXT)


async def test_malformed_json_is_refused_and_retried_once_with_the_reason():
    standin = StandIn("{not json", NODE)
    node = await next_valid_node(generator(standin), CONTEXT, judge=None)
    assert node["id"] == "q-account" and len(standin.requests) == 2
    assert "malformed JSON" in standin.requests[1]["messages"][1]["content"]


async def test_an_unsafe_node_is_retried_with_the_rule_then_refused_never_quoting_it():
    unsafe = {**RESTART, "text": "Turn off Windows Defender real-time protection, pelican."}
    standin = StandIn(unsafe)
    with pytest.raises(UnsafeNodeError) as raised:
        await next_valid_node(generator(standin), CONTEXT, judge=None)
    retry = standin.requests[1]["messages"][1]["content"]
    assert f"rule {scan_node(unsafe['text'])[0].rule_id}" in retry
    assert "pelican" not in retry and "pelican" not in str(raised.value)


async def test_a_server_that_refuses_json_schema_is_asked_with_the_schema_in_the_prompt_from_then_on():
    fenced = "<think>the user wants a node</think>\n```json\n" + json.dumps(NODE) + "\n```"
    standin = StandIn(Status(400), fenced)
    gen = generator(standin)
    assert await gen.generate(CONTEXT) == NODE
    first, second = standin.requests
    assert "response_format" in first
    assert "response_format" not in second and "stream_options" not in second
    assert '"required": ["id", "type", "text", "yes_label", "no_label"]' in second["messages"][0]["content"]
    await gen.generate(CONTEXT)
    assert len(standin.requests) == 3 and "response_format" not in standin.requests[2]  # no second 400


async def test_a_400_in_the_prompt_form_too_is_the_request_rejected():
    standin = StandIn(Status(400))
    with pytest.raises(GenerationError, match="HTTP 400"):
        await generator(standin).generate(CONTEXT)
    assert len(standin.requests) == 2


# --- the step's deadline --------------------------------------------------------------------


async def test_a_stall_ends_at_the_step_deadline_with_the_timeout_message():
    standin = StandIn(Stall())
    with pytest.raises(GenerationTimeoutError, match="The AI took too long"):
        await step(generator(standin, timeout=20.0, max_retries=5))
    assert len(standin.requests) == 1


async def test_a_stall_mid_stream_ends_at_the_deadline_too():
    standin = StandIn(NODE, chunks=6, chunk_delay=3600.0)
    with pytest.raises(GenerationTimeoutError):
        await step(generator(standin))


async def test_a_429_longer_than_what_is_left_says_rate_limited_and_for_how_long():
    standin = StandIn(Status(429, {"retry-after": "90"}), NODE)
    with pytest.raises(RateLimitedError, match="rate-limiting this desk and asks us to wait 90 s") as raised:
        await step(generator(standin, max_retries=1))
    assert raised.value.retry_after == pytest.approx(90, abs=1)
    assert len(standin.requests) == 1  # never slept 90 s for a second try


async def test_a_short_retry_after_is_honoured_and_the_retry_serves_the_node():
    standin = StandIn(Status(429, {"retry-after": "0.1"}), NODE)
    node = await step(generator(standin, max_retries=1), deadline=5.0)
    assert node["id"] == "q-account" and len(standin.requests) == 2


async def test_a_500_is_retried_once_within_the_deadline():
    standin = StandIn(Status(500), NODE)
    node = await step(generator(standin, max_retries=1), deadline=5.0)
    assert node["id"] == "q-account" and len(standin.requests) == 2


async def test_the_judge_shares_the_step_deadline():
    judge_standin = StandIn(Stall())
    with pytest.raises(GenerationTimeoutError, match="The AI took too long"):
        await step(generator(StandIn(NODE)), judge=judge(judge_standin, timeout=10.0, max_retries=1))
    assert len(judge_standin.requests) == 1


# --- the judge --------------------------------------------------------------------------------


async def test_the_judge_asks_for_the_verdict_schema_with_only_the_node():
    standin = StandIn(SAFE)
    verdict = await judge(standin).judge(CandidateNode.of(NODE))
    assert verdict == Verdict("safe", "", "A routine step.", "llama3.1:8b")
    [body] = standin.requests
    form = body["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["schema"]["required"] == ["verdict", "rule", "reason"]
    assert {rule.id for rule in rule_catalogue()} <= set(form["json_schema"]["schema"]["properties"]["rule"]["enum"])
    system, user = body["messages"]
    assert all(f"{rule.id}: {rule.description}" in system["content"] for rule in rule_catalogue())
    assert user["content"].startswith("<node>\n<text>Is it a Microsoft account?")
    assert "Outlook keeps asking" not in json.dumps(body)


@pytest.mark.parametrize(
    "reply, exc, words",
    [
        (Status(429, {"retry-after": "90"}), JudgeRateLimitedError, "asks us to wait 90 s"),
        (Status(404), JudgeUnknownModelError, "no model named 'llama3.1:8b'"),
        ("safe, probably", MalformedVerdictError, "not valid JSON"),
        ({"verdict": "unsafe", "rule": "made-up", "reason": "x"}, MalformedVerdictError, "known rule"),
        (Refuse(), JudgeDeclinedError, "gave no verdict"),
        (Finish('{"verdict": "sa', "length"), JudgeDeclinedError, "gave no verdict"),
    ],
)
async def test_each_judge_failure_is_its_own_type_and_says_the_step_is_not_shown(reply, exc, words):
    with pytest.raises(JudgeError, match=words) as raised:
        await judge(StandIn(reply)).judge(CandidateNode.of(NODE))
    assert type(raised.value) is exc and "not shown" in str(raised.value)


async def test_a_judge_server_that_refuses_json_schema_is_asked_with_the_schema_in_the_prompt():
    standin = StandIn(Status(422), "```json\n" + json.dumps(SAFE) + "\n```")
    verdict = await judge(standin).judge(CandidateNode.of(NODE))
    assert verdict.safe and len(standin.requests) == 2
    assert "response_format" not in standin.requests[1]
    assert '"required": ["verdict", "rule", "reason"]' in standin.requests[1]["messages"][0]["content"]


async def test_a_judge_timeout_is_its_own_error():
    def slow(request):
        raise httpx2.ReadTimeout("timed out", request=request)

    with pytest.raises(JudgeTimeoutError, match="safety judge took too long"):
        await judge(StandIn(slow)).judge(CandidateNode.of(NODE))


async def test_an_unsafe_verdict_refuses_the_node_and_the_retry_is_told_the_rule():
    sly = {**RESTART, "id": "i-sly", "text": "Let the ocelot helper tool tidy the machine's protection settings."}
    gen_standin = StandIn(sly, RESTART)
    judge_standin = StandIn({"verdict": "unsafe", "rule": RULE.id, "reason": "It disables protection."}, SAFE)
    node = await next_valid_node(generator(gen_standin), CONTEXT, judge(judge_standin))
    assert node["id"] == "i-restart" and len(judge_standin.requests) == 2
    retry = gen_standin.requests[1]["messages"][1]["content"]
    assert "the safety judge refused it" in retry and f"rule {RULE.id}" in retry and "ocelot" not in retry


# --- through the walk service, and prefetched -------------------------------------------------


async def test_a_walk_through_the_service_with_the_openai_generator_and_judge(db, desk):
    gen_standin, judge_standin = StandIn(NODE, RESTART), StandIn(SAFE)
    gen, jud = generator(gen_standin), judge(judge_standin)
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text="Outlook keeps asking for my password"
    )
    first = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=jud)
    assert first["id"] == "q-account" and first["yes_label"] == "Microsoft account"
    second = await ai_steps.advance_ai_build(
        db,
        actor=desk.tech,
        session_id=walk.id,
        generator=gen,
        judge=jud,
        node_id="q-account",
        token=first["token"],
        answer="no",
        note="work laptop",
    )
    assert second["id"] == "i-restart"
    stored = await walk_core.get_session(db, actor=desk.tech, session_id=walk.id)
    assert [s["id"] for s in await path_of(db, stored)] == ["q-account"] and stored.pending_node["id"] == "i-restart"
    prompt = gen_standin.requests[1]["messages"][1]["content"]
    assert 'answer chosen: "Local account"' in prompt and "<note>work laptop</note>" in prompt
    assert len(judge_standin.requests) == 2
    assert all("work laptop" not in json.dumps(body) for body in judge_standin.requests)


async def test_a_failed_step_keeps_the_answer_and_retrying_serves_the_node(db, desk):
    gen_standin = StandIn(NODE, Status(500), RESTART)
    gen = generator(gen_standin)
    walk = await walk_start.start_ai_build_session(
        db, actor=desk.tech, ticket_id="T-1", category="email", problem_text="Outlook"
    )
    first = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    with pytest.raises(ServerError):
        await ai_steps.advance_ai_build(
            db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None,
            node_id="q-account", token=first["token"], answer="yes",
        )  # fmt: skip
    again = await ai_steps.advance_ai_build(db, actor=desk.tech, session_id=walk.id, generator=gen, judge=None)
    assert again["id"] == "i-restart"


async def test_prefetch_writes_both_answers_at_once_through_the_openai_generator():
    standin = StandIn(lambda body: RESTART, first_chunk_delay=0.3)
    prefetcher = Prefetcher(generator(standin), judge(StandIn(SAFE)), deadline=5.0)
    yes = NodeContext(problem_text="Outlook", category="email")
    no = NodeContext(problem_text="Outlook keeps asking", category="email")
    prefetcher.start({"yes": yes, "no": no})

    async def both_streaming() -> None:
        while standin.in_flight < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(both_streaming(), GUARD)
    other = prefetcher.prefetches["yes"]
    claimed = prefetcher.claim("no", no)
    assert claimed is not None
    checked = await asyncio.wait_for(claimed.result(), GUARD)
    assert checked.node["id"] == "i-restart" and checked.fits(no, prefetcher.judge)
    assert other.task.cancelled() and len(standin.requests) == 2


# --- config and registry ----------------------------------------------------------------------


def test_config_selects_the_openai_generator_and_judge_for_a_private_server(tmp_path, monkeypatch):
    monkeypatch.delenv("RFLOW_OPENAI_API_KEY", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        '[llm]\ngenerator = "openai"\nmodel = "qwen3:8b"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        "judge_timeout_seconds = 4.0\n"
    )
    llm = load_settings(path, environ={}).llm
    gen = make_generator(llm.generator, llm)
    jud = make_judge(llm)  # judge = "auto": the judge stays on the private server
    assert isinstance(gen, OpenAIGenerator) and isinstance(jud, OpenAIJudge)
    assert (gen.model, gen.base_url, gen.api_key) == ("qwen3:8b", "http://127.0.0.1:11434/v1", "")
    assert (jud.model, jud.base_url, jud.timeout) == ("qwen3:8b", "http://127.0.0.1:11434/v1", 4.0)


def test_the_key_comes_from_rflow_openai_api_key_or_the_config(monkeypatch):
    monkeypatch.setenv("RFLOW_OPENAI_API_KEY", "sk-env")
    assert OpenAIGenerator.from_settings(LLMSettings(generator="openai")).api_key == "sk-env"
    from_config = OpenAIJudge.from_settings(LLMSettings(generator="openai", api_key="sk-cfg", judge_model="gpt-x"))
    assert (from_config.api_key, from_config.model) == ("sk-cfg", "gpt-x")


def test_a_judge_on_another_service_is_never_sent_the_generators_key_or_server(monkeypatch):
    """A private generator with Anthropic's judge (it sees only the step), and the reverse."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("RFLOW_OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.delenv("RFLOW_OPENAI_API_KEY", raising=False)
    local = LLMSettings(generator="openai", base_url="http://127.0.0.1:11434/v1", api_key="sk-local", judge="anthropic")
    anthropic_judge = make_judge(local)
    assert (anthropic_judge.api_key, anthropic_judge.base_url) == ("sk-ant-env", None)
    hosted = LLMSettings(generator="anthropic", api_key="sk-ant-cfg", model="claude-opus-5-5", judge="openai")
    openai_judge = make_judge(hosted)
    assert (openai_judge.api_key, openai_judge.base_url) == ("", "http://127.0.0.1:8000/v1")
    assert openai_judge.model == DEFAULT_MODEL  # not the Anthropic model's name


def test_no_key_and_no_base_url_is_refused_naming_both(monkeypatch):
    monkeypatch.delenv("RFLOW_OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match=r"RFLOW_OPENAI_API_KEY.*base_url"):
        make_generator("openai", LLMSettings(generator="openai"))
    with pytest.raises(NoJudgeError, match="RFLOW_OPENAI_API_KEY"):
        make_judge(LLMSettings(generator="openai", judge="openai"))


def test_a_base_url_that_is_not_http_is_refused(monkeypatch):
    with pytest.raises(NoGeneratorError, match="http"):
        make_generator("openai", LLMSettings(generator="openai", base_url="localhost:11434"))
    with pytest.raises(NoJudgeError, match="http"):
        make_judge(LLMSettings(generator="openai", base_url="localhost:11434"))


def test_an_unknown_llm_key_is_still_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[llm]\ngenerator = "openai"\nopenai_api_key = "sk-x"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'llm\.openai_api_key'"):
        load_settings(path, environ={})


def test_the_sdk_is_not_imported_at_app_start_nor_when_the_generator_is_built():
    code = (
        "import sys\n"
        "import rflow_tui.tui.app\n"
        "from rflow_tui.ai.registry import make_generator, make_judge\n"
        "from rflow_tui.config import LLMSettings\n"
        "llm = LLMSettings(generator='openai', base_url='http://127.0.0.1:11434/v1')\n"
        "make_generator('openai', llm); make_judge(llm)\n"
        "print(','.join(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert " openai" not in out.stderr  # -X importtime lists every module imported
