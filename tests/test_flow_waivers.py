"""Authored flows are reviewed text: a safety-rule hit is an error the author may waive per
node, with a reason; a node produced by AI can never be waived."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from sqlmodel import select

from rflow_tui.cli import main
from rflow_tui.domain.walk_step import read_path
from rflow_tui.flows.check import Waiver, check_flow, review_flow
from rflow_tui.flows.format import FORMAT
from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.models import AuditLog
from rflow_tui.safety import scan_node
from rflow_tui.services import library, proposals
from rflow_tui.services.library import STARTER_DIR, FlowProblems
from tests.test_proposals import captured_proposal

SCHEMA = json.loads((Path(STARTER_DIR).parent / "flow.schema.json").read_text(encoding="utf-8"))
# A step a security team might really hand L1 during a scripted rollout, hitting one rule.
RISKY = "Turn off Windows Defender real-time protection while the vendor installer runs, then turn it back on."
RISKY_AND_SECRET = "Turn off Windows Defender real-time protection, then ask the user to read you their password."


def rule_of(text: str) -> str:
    return scan_node(text)[0].rule_id


def flow(text: str = "Switch it on.", **extra) -> dict:
    return {
        "format": FORMAT,
        "title": "Vendor agent install",
        "start": "power",
        "nodes": [
            {"id": "power", "type": "question", "text": "Is the laptop on mains power?", "yes": "step", "no": "esc"},
            {"id": "step", "type": "instruction", "text": text, "next": "done", **extra},
            {"id": "done", "type": "resolution", "text": "Resolved."},
            {"id": "esc", "type": "escalate", "text": "Escalate."},
        ],
    }


def waived(text: str, *rules: str, reason: str = "Approved by security for the vendor rollout (CHG-1182).") -> dict:
    return flow(text, safety_waivers=[{"rule": rule, "reason": reason} for rule in rules])


def test_an_unwaived_hit_is_an_error_naming_the_rule_and_how_to_waive_it_never_quoting_the_step():
    rule = rule_of(RISKY)
    [problem] = check_flow(flow(RISKY))
    assert problem.path == "$.nodes[1]"
    assert f"rule {rule}" in problem.message and '"safety_waivers"' in problem.message
    assert "vendor installer" not in problem.message and "Defender" not in problem.message


def test_a_waived_hit_passes_and_shows_as_waived_with_its_reason():
    rule = rule_of(RISKY)
    review = review_flow(waived(RISKY, rule), require_title=True)
    assert review.problems == [] and review.warnings == []
    [waiver] = review.waived
    assert waiver == Waiver(
        "$.nodes[1]",
        "step",
        rule,
        scan_node(RISKY)[0].description,
        "Approved by security for the vendor rollout (CHG-1182).",
    )
    assert f"rule {rule}" in str(waiver) and "CHG-1182" in str(waiver)


def test_a_waiver_covers_only_the_rule_it_names():
    first, second = [f.rule_id for f in scan_node(RISKY_AND_SECRET)]
    review = review_flow(waived(RISKY_AND_SECRET, first))
    assert [w.rule_id for w in review.waived] == [first]
    assert [p.path for p in review.problems] == ["$.nodes[1]"] and f"rule {second}" in review.problems[0].message


def test_a_waiver_for_a_rule_the_node_does_not_break_is_a_note_not_a_cover():
    other = rule_of("Ask the user to read you their password.")
    review = review_flow(waived(RISKY, other))
    assert [p.path for p in review.problems] == ["$.nodes[1]"]  # the real hit stays an error
    assert [n.path for n in review.warnings] == ["$.nodes[1].safety_waivers[0]"] and other in review.warnings[0].message


@pytest.mark.parametrize(
    "waivers, where, words",
    [
        ([{"rule": "no-such-rule", "reason": "x"}], ".safety_waivers[0].rule", "unknown safety rule"),
        ([{"rule": "RULE", "reason": "  "}], ".safety_waivers[0].reason", "reason is empty"),
        ([{"rule": "RULE"}], ".safety_waivers[0]", "exactly"),
        ([{"rule": "RULE", "reason": "a"}, {"rule": "RULE", "reason": "b"}], ".safety_waivers[1].rule", "twice"),
        ([], ".safety_waivers", "non-empty list"),
        ("RULE", ".safety_waivers", "non-empty list"),
    ],
)
def test_malformed_waivers_are_reported_at_their_path(waivers, where, words):
    rule = rule_of(RISKY)
    waivers = json.loads(json.dumps(waivers).replace("RULE", rule))
    problems = check_flow(flow(RISKY, safety_waivers=waivers))
    assert any(p.path == f"$.nodes[1]{where}" and words in p.message for p in problems), problems


def test_a_waiver_on_a_node_produced_by_ai_is_refused():
    rule = rule_of(RISKY)
    doc = waived(RISKY, rule)
    doc["nodes"][1]["origin"] = "ai"
    problems = check_flow(doc)
    assert [p.path for p in problems] == ["$.nodes[1].safety_waivers"]
    assert "produced by AI" in problems[0].message and "never be waived" in problems[0].message
    assert review_flow(doc).waived == []


def test_a_hit_on_an_ai_node_says_it_can_never_be_waived():
    doc = flow(RISKY, origin="ai")
    [problem] = check_flow(doc)
    assert "produced by AI and can never be waived" in problem.message and '"safety_waivers"' not in problem.message


def test_origin_may_only_mark_ai():
    assert [p.path for p in check_flow(flow(origin="human"))] == ["$.nodes[1].origin"]


def test_a_captured_ai_walk_marks_its_nodes_as_ai_and_a_flow_walk_does_not():
    path = read_path(
        [
            {
                "node_type": "question",
                "id": "acct",
                "text": "Microsoft account or local account?",
                "answer": "no",
                "answer_label": "Local account",
                "yes_label": "Microsoft account",
                "no_label": "Local account",
            },
            {"node_id": "again", "question": "Can the user sign in now?", "answer": "yes"},
        ]
    )
    tree = normalize_walked_path(path)
    origins = {node["id"]: node.get("origin") for node in tree["nodes"]}
    assert origins == {"acct": "ai", "again": None, "resolved": None, "uncharted": None}
    assert check_flow(tree) == []
    jsonschema.validate(tree, SCHEMA)


async def test_a_flow_approved_from_a_proposal_keeps_its_ai_marks_and_refuses_waivers_forever(db, desk):
    proposal = await captured_proposal(db, desk)
    flow_row = await proposals.approve(db, actor=desk.engineer, proposal_id=proposal.id, title="Local account sign-in")
    doc = library.flow_document(flow_row)
    walked = [n for n in doc["nodes"] if n["id"] not in ("resolved", "uncharted")]
    assert walked and all(n.get("origin") == "ai" for n in walked)
    # An author exports it, edits an AI node into something risky and tries to waive it: refused.
    edited = copy.deepcopy(doc)
    node = next(n for n in edited["nodes"] if n["type"] == "instruction")
    node.update(text=RISKY, safety_waivers=[{"rule": rule_of(RISKY), "reason": "we reviewed it"}])
    with pytest.raises(FlowProblems, match="produced by AI"):
        await library.import_flow_doc(db, actor=desk.engineer, doc=edited, source="edited.json")


async def test_a_proposal_tree_without_marks_is_still_treated_as_ai_on_approval(db, desk):
    proposal = await captured_proposal(db, desk)
    tree = proposals.proposal_tree(proposal)
    for node in tree["nodes"]:
        node.pop("origin", None)  # as captured before the mark existed
    proposal.proposed_flow_data = {**proposal.proposed_flow_data, "tree_structure": tree}
    db.add(proposal)
    await db.commit()
    flow_row = await proposals.approve(db, actor=desk.engineer, proposal_id=proposal.id, title="Legacy")
    assert all(
        n.get("origin") == "ai"
        for n in library.flow_document(flow_row)["nodes"]
        if n["id"] not in ("resolved", "uncharted")
    )


async def test_import_audits_each_waiver_with_its_rule_node_and_reason(db, desk):
    rule = rule_of(RISKY)
    stored = await library.import_flow_doc(db, actor=desk.engineer, doc=waived(RISKY, rule), source="vendor.json")
    entries = list(await db.exec(select(AuditLog).where(AuditLog.action == "flow.safety_waiver")))
    [entry] = entries
    assert entry.target_id == str(stored.id) and entry.actor_user_id == desk.engineer.id
    assert entry.details["node_id"] == "step" and entry.details["rule"] == rule
    assert entry.details["reason"] == "Approved by security for the vendor rollout (CHG-1182)."
    assert "vendor installer" not in json.dumps(entry.details)


async def test_an_unwaived_hit_is_not_imported(db, desk):
    with pytest.raises(FlowProblems, match=f"rule {rule_of(RISKY)}"):
        await library.import_flow_doc(db, actor=desk.engineer, doc=flow(RISKY), source="vendor.json")


def test_flows_check_shows_the_waiver_and_passes_and_fails_an_unwaived_hit(tmp_path, capsys):
    rule = rule_of(RISKY)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(waived(RISKY, rule)))
    bad.write_text(json.dumps(flow(RISKY)))
    assert main(["flows", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert (
        f'{good}: $.nodes[1] (node "step"): rule {rule}' in out and "waived by the author" in out and "CHG-1182" in out
    )
    assert f"{good}: ok" in out
    assert main(["flows", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f'{bad}: $.nodes[1] (node "step"): breaks safety rule {rule}' in err


def test_the_schema_accepts_waivers_and_ai_marks_and_refuses_other_origins():
    rule = rule_of(RISKY)
    jsonschema.validate(waived(RISKY, rule), SCHEMA)
    jsonschema.validate(flow(origin="ai"), SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(flow(origin="human"), SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(flow(safety_waivers=[{"rule": rule}]), SCHEMA)
