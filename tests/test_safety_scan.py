"""`rflow safety scan`: JSON Lines in, one verdict line out per step, as a desk would run it."""

from __future__ import annotations

import io
import json

import pytest

from rflow_tui.cli import main
from rflow_tui.safety import scan_node

UNSAFE = "Turn off Windows Defender real-time protection, then retry the install."
SAFE = "Is the printer switched on?"


def lines(*items) -> str:
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)


def stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("RFLOW_CONFIG", str(tmp_path / "absent.toml"))


def outputs(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_one_output_line_per_step_with_the_rules_it_breaks(tmp_path, capsys):
    split_text, split_labels = "What should we do about the antivirus?", ["Turn it off", "Leave it on"]
    path = tmp_path / "steps.jsonl"
    path.write_text(
        lines(
            {"text": UNSAFE},
            {"text": SAFE, "labels": ["Yes", "No"]},
            {"text": split_text, "labels": split_labels, "id": "corpus-17"},
        )
    )
    assert main(["safety", "scan", str(path)]) == 0  # unsafe findings are results, not failures
    got = outputs(capsys.readouterr().out)
    expected_split = [f.rule_id for f in scan_node(split_text, split_labels)]
    assert got == [
        {"unsafe": True, "rules": [f.rule_id for f in scan_node(UNSAFE)]},
        {"unsafe": False, "rules": []},
        {"unsafe": bool(expected_split), "rules": expected_split},
    ]
    assert got[0]["rules"]


def test_reads_standard_input_by_default_and_with_a_dash(monkeypatch, capsys):
    for argv in (["safety", "scan"], ["safety", "scan", "-"]):
        stdin(monkeypatch, lines({"text": SAFE}, {"text": UNSAFE}))
        assert main(argv) == 0
        assert [o["unsafe"] for o in outputs(capsys.readouterr().out)] == [False, True]


def test_blank_lines_are_skipped_and_get_no_output_line(monkeypatch, capsys):
    stdin(monkeypatch, "\n" + lines({"text": UNSAFE}) + "   \n\n" + lines({"text": SAFE}) + "\n")
    assert main(["safety", "scan"]) == 0
    assert [o["unsafe"] for o in outputs(capsys.readouterr().out)] == [True, False]


@pytest.mark.parametrize(
    "bad, words",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"labels": ["Yes", "No"]}', '"text" is missing'),
        ('{"text": 42}', '"text" must be a string'),
        ('{"text": "x", "labels": "Yes/No"}', '"labels" must be a list of strings'),
        ('{"text": "x", "labels": ["Yes", 2]}', '"labels" must be a list of strings'),
    ],
)
def test_a_malformed_line_exits_2_naming_its_number_and_nothing_is_scanned(monkeypatch, capsys, bad, words):
    stdin(monkeypatch, lines({"text": SAFE}, "", {"text": UNSAFE}, bad))
    assert main(["safety", "scan"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"line 4: {words}" in err and "1 malformed line(s); nothing was scanned" in err


def test_every_malformed_line_is_named(monkeypatch, capsys):
    stdin(monkeypatch, lines("{", {"text": SAFE}, '{"text": null}'))
    assert main(["safety", "scan"]) == 2
    err = capsys.readouterr().err
    assert "line 1:" in err and "line 3:" in err and "line 2:" not in err


def test_an_unreadable_file_is_a_clear_error(tmp_path, capsys):
    assert main(["safety", "scan", str(tmp_path / "absent.jsonl")]) == 2
    assert "cannot be read" in capsys.readouterr().err


# --- --judge -----------------------------------------------------------------------------


class KeywordJudge:
    """A third-party judge for the tests: unsafe when the step mentions 'tamper'."""

    name = "keyword"

    @classmethod
    def from_settings(cls, llm):
        return cls()

    async def judge(self, node):
        from rflow_tui.ai.errors import JudgeTimeoutError
        from rflow_tui.ai.judge import Verdict

        if "slowpoke" in node.text:
            raise JudgeTimeoutError("took too long")
        if "tamper" in node.text.lower() or any("tamper" in label.lower() for label in node.labels):
            return Verdict("unsafe", "other", "mentions tampering")
        return Verdict("safe", "", "fine")


@pytest.fixture
def keyword_judge(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    from rflow_tui.ai import registry

    ep = EntryPoint(
        name="keyword", value="tests.test_safety_scan:KeywordJudge.from_settings", group=registry.JUDGE_ENTRY_POINTS
    )
    monkeypatch.setattr(
        "importlib.metadata.entry_points", lambda group=None: [ep] if group == registry.JUDGE_ENTRY_POINTS else []
    )
    config = tmp_path / "config.toml"
    config.write_text('[llm]\njudge = "keyword"\n')
    return config


def test_judge_adds_the_configured_judges_verdict_to_each_line(keyword_judge, monkeypatch, capsys):
    stdin(monkeypatch, lines({"text": SAFE}, {"text": "Check the settings", "labels": ["Tamper with it", "Leave it"]}))
    assert main(["--config", str(keyword_judge), "safety", "scan", "--judge"]) == 0
    got = outputs(capsys.readouterr().out)
    assert got[0] == {"unsafe": False, "rules": [], "judge": {"verdict": "safe", "rule": "", "reason": "fine"}}
    assert got[1]["judge"] == {"verdict": "unsafe", "rule": "other", "reason": "mentions tampering"}


def test_a_line_the_judge_cannot_answer_is_marked_and_the_exit_status_is_1(keyword_judge, monkeypatch, capsys):
    stdin(monkeypatch, lines({"text": SAFE}, {"text": "slowpoke step"}))
    assert main(["--config", str(keyword_judge), "safety", "scan", "--judge"]) == 1
    out, err = capsys.readouterr()
    got = outputs(out)
    assert got[0]["judge"]["verdict"] == "safe" and got[1]["judge"] == {"error": "judge_timeout"}
    assert "1 of 2 line(s) could not be judged" in err


def test_judge_with_the_judge_off_is_refused(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[llm]\njudge = "off"\n')
    stdin(monkeypatch, lines({"text": SAFE}))
    assert main(["--config", str(config), "safety", "scan", "--judge"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "the safety judge is off" in err


def test_judge_replays_the_demo_recording_verdicts_with_the_fixture_judge(tmp_path, monkeypatch, capsys):
    from rflow_tui.ai.fixture import DEMO_FIXTURE

    node = json.loads(DEMO_FIXTURE.read_text())["exchanges"][0]["node"]
    config = tmp_path / "config.toml"
    config.write_text('[llm]\ngenerator = "fixture"\n')  # judge "auto" -> the fixture judge
    stdin(monkeypatch, lines({"text": node["text"], "labels": [node["yes_label"], node["no_label"]]}, {"text": SAFE}))
    assert main(["--config", str(config), "safety", "scan", "--judge"]) == 1
    got = outputs(capsys.readouterr().out)
    assert got[0]["judge"]["verdict"] == "safe" and got[1]["judge"] == {"error": "judge_not_in_recording"}
