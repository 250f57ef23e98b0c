"""What a flow author meets: one declaration of the limits, a checker that points at the node,
warnings apart from errors, many files at once, and diagrams of the stored flow."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from rflow_tui.ai import anthropic, prompt, validate
from rflow_tui.ai.errors import MalformedNodeError
from rflow_tui.cli import main
from rflow_tui.flows.check import review_flow
from rflow_tui.flows.diagram import to_dot, to_mermaid
from rflow_tui.flows.format import LIMITS, flow_schema
from tests.test_flow_cli import write
from tests.test_flow_library import DOC

DOCS = Path(__file__).resolve().parents[1] / "docs" / "flow-format.md"


def flow(**changes):
    return {**copy.deepcopy(DOC), **changes}


# --- one declaration of the format ---------------------------------------------------------


def test_the_checker_takes_its_limits_from_the_schema():
    schema = flow_schema()
    assert LIMITS.text == schema["$defs"]["text"]["maxLength"]
    assert LIMITS.id == schema["$defs"]["id"]["maxLength"] and LIMITS.label == schema["$defs"]["label"]["maxLength"]
    doc = flow()
    doc["nodes"][1]["text"] = "x" * LIMITS.text
    doc["nodes"][0]["yes_label"] = "y" * LIMITS.label
    assert review_flow(doc).problems == []  # what the schema allows, the checker allows
    doc["nodes"][1]["text"] += "x"
    (problem,) = review_flow(doc).problems
    assert problem.path == "$.nodes[1].text" and f"the limit is {LIMITS.text}" in problem.message


def test_the_documented_limits_are_the_schemas():
    text = DOCS.read_text(encoding="utf-8")
    documented = {name: int(n) for name, n in re.findall(r"<!-- limit (\w+) -->\D*?(\d+)", text)}
    assert documented == {
        "id": LIMITS.id,
        "label": LIMITS.label,
        "text": LIMITS.text,
        "help": LIMITS.help,
        "title": LIMITS.title,
        "description": LIMITS.description,
        "waiver_reason": LIMITS.waiver_reason,
        "ai_id": validate.MAX_ID,
        "ai_label": validate.MAX_LABEL,
        "ai_text": validate.MAX_TEXT,
    }


def test_the_prompt_and_the_model_output_schema_state_the_ai_limits():
    system = prompt.system_prompt()
    assert f"at most {validate.MAX_TEXT} characters" in system and f"at most {validate.MAX_LABEL}" in system
    props = anthropic.NODE_SCHEMA["properties"]
    assert f"at most {validate.MAX_ID} characters" in props["id"]["description"]
    assert f"at most {validate.MAX_TEXT} characters" in props["text"]["description"]
    assert f"at most {validate.MAX_LABEL} characters" in props["yes_label"]["description"]


def test_an_ai_node_over_its_own_limit_is_refused_as_an_ai_node():
    with pytest.raises(MalformedNodeError, match=f"an AI node may have at most {validate.MAX_TEXT}"):
        validate.validate_node({"id": "a", "type": "instruction", "text": "x" * (validate.MAX_TEXT + 1)})


# --- a checker that points at the node -----------------------------------------------------


def test_every_problem_names_its_path_and_its_node():
    doc = flow()
    doc["nodes"][2]["no"] = "nowhere"
    doc["nodes"][1]["text"] = ""
    found = {str(p) for p in review_flow(doc).problems}
    assert "$.nodes[2].no (node \"test\"): target 'nowhere' is not a node in this flow" in found
    assert '$.nodes[1].text (node "switch"): text is empty' in found


def test_a_question_whose_answers_lead_to_the_same_node_is_a_warning_not_an_error():
    doc = flow()
    doc["nodes"][0].update(yes="switch", no="switch")
    review = review_flow(doc)
    assert review.problems == []
    (warning,) = review.warnings
    assert warning.where == '$.nodes[0] (node "on")' and "both answers lead to 'switch'" in warning.message


def test_help_is_plain_text_with_the_schemas_limit():
    doc = flow()
    doc["nodes"][1]["help"] = "Hold the power button for 3 s.\nThe light turns green."
    assert review_flow(doc).problems == []
    doc["nodes"][1]["help"] = "h" * (LIMITS.help + 1)
    assert [p.path for p in review_flow(doc).problems] == ["$.nodes[1].help"]
    doc["nodes"][1]["help"] = "Paste this: \x1b]52;c;cm0gLXJmIH4=\x07"
    assert "control or bidi" in review_flow(doc).problems[0].message


def test_check_takes_directories_and_globs_and_reports_warnings_apart(tmp_path, capsys):
    lib = tmp_path / "library"
    (lib / "printing").mkdir(parents=True)
    write(lib, "a.json", flow())
    same = flow(title="Same answers")
    same["nodes"][0].update(yes="switch", no="switch")
    write(lib / "printing", "b.json", same)
    assert main(["flows", "check", str(lib)]) == 0  # a warning does not fail the check
    out, err = capsys.readouterr()
    assert f"{lib / 'a.json'}: ok" in out and f"{lib / 'printing' / 'b.json'}: ok (1 warning(s))" in out
    assert f'{lib / "printing" / "b.json"}: warning: $.nodes[0] (node "on"): both answers' in err
    assert main(["flows", "check", str(lib / "**" / "*.json")]) == 0  # a quoted glob, as on Windows
    assert capsys.readouterr().out.count(": ok") == 2
    assert main(["flows", "check", str(tmp_path / "empty*.json")]) == 2
    assert "no flow files" in capsys.readouterr().err


def test_check_json_is_one_report_for_editors_and_ci(tmp_path, capsys):
    bad = flow()
    bad["nodes"][0]["yes"] = "gone"
    paths = [write(tmp_path, "good.json", flow()), write(tmp_path, "bad.json", bad)]
    assert main(["flows", "check", "--json", *map(str, paths)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert [(r["file"], r["ok"]) for r in report] == [(str(paths[0]), True), (str(paths[1]), False)]
    (error,) = report[1]["errors"]
    assert error == {"path": "$.nodes[0].yes", "node": "on", "message": "target 'gone' is not a node in this flow"}


# --- diagrams ----------------------------------------------------------------------------


HOSTILE = '"]; evil -> x; A["\x1b]0;pwned\x07 <b>#1</b>'


def test_mermaid_and_dot_draw_every_node_and_branch_with_its_label():
    doc = flow()
    doc["nodes"][0].update(yes_label="Lights on", no_label="Dark")
    mermaid, dot = to_mermaid(doc), to_dot(doc)
    assert mermaid.startswith("flowchart TD\n") and dot.startswith("digraph flow {")
    assert '    n0{"on: Is the printer on?"}' in mermaid and '    n0 -->|"Dark"| n1' in mermaid
    assert '    n0 [label="on: Is the printer on?", shape=diamond];' in dot and 'n0 -> n1 [label="Dark"];' in dot
    assert mermaid.count("-->") == 1 + 2 + 1 + 2  # start, two questions, one instruction
    assert dot.count("->") == 1 + 2 + 1 + 2


def test_diagram_labels_cannot_break_out_of_their_quotes():
    doc = flow()
    doc["nodes"][1]["text"] = HOSTILE
    mermaid, dot = to_mermaid(doc), to_dot(doc)
    assert "\x1b" not in mermaid + dot and "\x07" not in mermaid + dot
    (box,) = [line for line in mermaid.splitlines() if line.startswith("    n1[")]
    assert box.count('"') == 2 and "<b>" not in box and "#quot;" in box
    (node,) = [line for line in dot.splitlines() if line.startswith("    n1 [")]
    assert re.fullmatch(r'    n1 \[label="(?:[^"\\]|\\.)*", shape=box\];', node)
