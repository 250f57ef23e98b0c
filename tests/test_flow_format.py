"""The flow format: what `flows check` reports (with paths), and the shipped starter library."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rflow_tui.domain.walk_step import read_path
from rflow_tui.flows.check import Problem, check_flow
from rflow_tui.flows.format import FORMAT, next_node_id, node_by_id
from rflow_tui.flows.walked_path import normalize_walked_path
from rflow_tui.services.library import STARTER_DIR, starter_documents

SCHEMA = json.loads((Path(STARTER_DIR).parent / "flow.schema.json").read_text(encoding="utf-8"))


def small_flow() -> dict:
    return {
        "format": FORMAT,
        "title": "Printer offline",
        "category": "printing",
        "match_keywords": ["printer"],
        "start": "power",
        "nodes": [
            {"id": "power", "type": "question", "text": "Is the printer on?", "yes": "cable", "no": "switch-on"},
            {"id": "switch-on", "type": "instruction", "text": "Switch it on.", "next": "cable"},
            {
                "id": "cable",
                "type": "question",
                "text": "Windows or Mac?",
                "yes_label": "Windows",
                "no_label": "Mac",
                "yes": "done",
                "no": "esc",
            },
            {"id": "done", "type": "resolution", "text": "Resolved."},
            {"id": "esc", "type": "escalate", "text": "Escalate."},
        ],
    }


def paths(problems: list[Problem]) -> list[str]:
    return [p.path for p in problems]


def test_a_sound_flow_has_no_problems():
    assert check_flow(small_flow(), require_title=True) == []


def test_a_missing_target_is_reported_at_the_branch_that_names_it():
    doc = small_flow()
    doc["nodes"][2]["no"] = "nowhere"
    problems = check_flow(doc)
    assert paths(problems)[0] == "$.nodes[2].no"
    assert "nowhere" in problems[0].message
    # The escalate node that branch used to reach is now (truly) unreachable too.
    assert paths(problems)[1:] == ["$.nodes[4]"]


def test_missing_branch_fields_are_reported_per_node():
    doc = small_flow()
    del doc["nodes"][0]["yes"]
    del doc["nodes"][1]["next"]
    assert {"$.nodes[0].yes", "$.nodes[1].next"} <= set(paths(check_flow(doc)))


def test_an_unreachable_node_is_reported():
    doc = small_flow()
    doc["nodes"].append({"id": "orphan", "type": "instruction", "text": "Nobody gets here.", "next": "done"})
    problems = check_flow(doc)
    assert paths(problems) == ["$.nodes[5]"]
    assert "cannot be reached" in problems[0].message


def test_a_loop_without_an_exit_is_reported_but_a_loop_with_one_is_fine():
    doc = small_flow()
    # switch-on -> cable -> (Windows) back to power: a loop, but Mac still leads out.
    doc["nodes"][2]["yes"] = "power"
    assert check_flow(doc) == [] or all("loop" not in p.message for p in check_flow(doc))
    # Now both ways out of the loop lead back in: nothing reaches a terminal node.
    doc["nodes"][2]["no"] = "switch-on"
    problems = [p for p in check_flow(doc) if "loop" in p.message]
    assert {p.path for p in problems} == {"$.nodes[0]", "$.nodes[1]", "$.nodes[2]"}


def test_duplicate_ids_are_reported_at_the_second_one():
    doc = small_flow()
    doc["nodes"][4]["id"] = "done"
    problems = check_flow(doc)
    assert "$.nodes[4].id" in paths(problems)
    assert "$.nodes[3]" in next(p.message for p in problems if p.path == "$.nodes[4].id")


@pytest.mark.parametrize(
    "yes_label, no_label, where", [("", "Mac", "yes_label"), ("Mac", "   ", "no_label"), ("Mac", "mac", "no_label")]
)
def test_empty_or_identical_labels_are_reported(yes_label, no_label, where):
    doc = small_flow()
    doc["nodes"][2].update(yes_label=yes_label, no_label=no_label)
    assert f"$.nodes[2].{where}" in paths(check_flow(doc))


def test_missing_labels_default_to_yes_and_no():
    doc = small_flow()
    assert "yes_label" not in doc["nodes"][0]
    assert check_flow(doc) == []


def test_terminal_escapes_in_text_are_refused():
    doc = small_flow()
    doc["nodes"][1]["text"] = "Switch it on \x1b[31mnow\x1b[0m"
    assert "$.nodes[1].text" in paths(check_flow(doc))


def test_unknown_fields_are_reported_so_typos_do_not_pass_silently():
    doc = small_flow()
    doc["nodes"][2]["yes_lable"] = "Windows"
    doc["titel"] = "x"
    assert {"$.nodes[2].yes_lable", "$.titel"} <= set(paths(check_flow(doc)))


def test_title_is_optional_in_the_format_but_required_to_import():
    doc = small_flow()
    del doc["title"]
    assert check_flow(doc) == []
    assert paths(check_flow(doc, require_title=True)) == ["$.title"]


@pytest.mark.parametrize(
    "text",
    [
        "Ask the user to read you their password so you can test it.",
        "Ask the user for the 6-digit MFA code from their authenticator app.",
        "Open regedit and delete the Outlook profile keys.",
        "Turn off the antivirus and try again.",
    ],
)
def test_hard_floor_violations_are_reported_at_the_node(text):
    doc = small_flow()
    doc["nodes"][1]["text"] = text
    problems = check_flow(doc)
    assert "$.nodes[1]" in paths(problems), problems


def test_every_problem_is_reported_at_once():
    doc = small_flow()
    doc["start"] = "missing"
    doc["nodes"][0]["no"] = "gone"
    doc["nodes"][2]["yes_label"] = ""
    doc["nodes"][3]["id"] = "cable"
    found = set(paths(check_flow(doc)))
    assert {"$.start", "$.nodes[0].no", "$.nodes[2].yes_label", "$.nodes[3].id"} <= found


def test_a_captured_walk_is_a_valid_flow_and_keeps_its_labels():
    path = [
        {
            "node_type": "question",
            "id": "acct",
            "text": "Microsoft account or local account?",
            "answer": "no",
            "answer_label": "Local account",
            "yes_label": "Microsoft account",
            "no_label": "Local account",
        },
        {"node_type": "instruction", "id": "reset", "text": "Use the sign-in options to reset it.", "answer": None},
        {"node_id": "again", "question": "Can the user sign in now?", "answer": "yes"},
    ]
    tree = normalize_walked_path(read_path(path))
    assert check_flow(tree) == []
    assert node_by_id(tree, "acct")["no_label"] == "Local account"
    assert check_flow(normalize_walked_path([])) == []


def test_next_node_id_follows_the_answer():
    doc = small_flow()
    assert next_node_id(node_by_id(doc, "power"), "no") == "switch-on"
    assert next_node_id(node_by_id(doc, "switch-on"), None) == "cable"
    assert next_node_id(node_by_id(doc, "done"), None) is None
    with pytest.raises(ValueError):
        next_node_id(node_by_id(doc, "power"), None)


# --- never crashes -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
node_keys = st.sampled_from(["id", "type", "text", "yes", "no", "next", "yes_label", "no_label", "extra"])
node_values = st.one_of(
    st.sampled_from(["question", "instruction", "resolution", "escalate", "a", "b", "c", "", "Yes"]), json_values
)
flowish = st.fixed_dictionaries(
    {},
    optional={
        "format": st.just(FORMAT) | json_values,
        "title": st.text(max_size=30) | json_values,
        "start": st.sampled_from(["a", "b", "c"]) | json_values,
        "match_keywords": json_values,
        "version": json_values,
        "nodes": st.lists(st.dictionaries(node_keys, node_values, max_size=8) | json_values, max_size=6),
    },
)


@settings(max_examples=300, deadline=None)
@given(doc=st.one_of(json_values, flowish))
def test_check_never_crashes_on_arbitrary_json(doc):
    problems = check_flow(doc, require_title=True)
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.path.startswith("$") and problem.message
    # Whatever it says, reading the document must not crash either.
    node_by_id(doc, "a")


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_breaking_one_field_of_a_valid_flow_is_always_reported(data):
    doc = copy.deepcopy(small_flow())
    i = data.draw(st.integers(0, len(doc["nodes"]) - 1))
    key = data.draw(st.sampled_from(sorted(doc["nodes"][i])))
    doc["nodes"][i][key] = data.draw(st.sampled_from([None, "", 7, [], "no-such-node"]))
    if key in ("yes_label", "no_label") and doc["nodes"][i][key] is None:
        return  # a missing label defaults to Yes / No: still valid
    if key in ("text", "yes_label", "no_label") and doc["nodes"][i][key] == "no-such-node":
        return  # any non-empty text is a valid text
    problems = check_flow(doc)
    assert problems, doc
    assert any(p.path.startswith(f"$.nodes[{i}]") or p.path == "$.start" for p in problems)


# --- the schema file and the starter library ----------------------------------------------


def test_the_schema_file_is_a_valid_schema_that_accepts_sound_flows():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(small_flow(), SCHEMA)
    jsonschema.validate(
        normalize_walked_path(read_path([{"node_id": "a", "question": "On?", "answer": "yes"}])), SCHEMA
    )


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("start"),
        lambda d: d["nodes"][0].pop("yes"),
        lambda d: d["nodes"][1].update(type="step"),
        lambda d: d["nodes"][2].update(yes_label=""),
        lambda d: d.update(format="rflow.flow/2"),
        lambda d: d["nodes"][3].update(next="esc"),
    ],
)
def test_the_schema_and_the_checker_agree_on_shape_errors(breakage):
    doc = small_flow()
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    assert check_flow(doc)


def _longest_path(doc: dict) -> int:
    """Nodes on the longest loop-free walk from the start to a terminal node."""
    best = 0

    def visit(node_id: str, seen: tuple[str, ...]) -> None:
        nonlocal best
        node = node_by_id(doc, node_id)
        seen = (*seen, node_id)
        targets = [node.get(k) for k in ("yes", "no", "next") if node.get(k)]
        if not targets:
            best = max(best, len(seen))
        for target in targets:
            if target not in seen:
                visit(target, seen)

    visit(doc["start"], ())
    return best


STARTERS = starter_documents()


def test_the_starter_library_covers_the_commonest_tickets():
    slugs = {doc["slug"] for _, doc in STARTERS}
    assert len(STARTERS) >= 12
    assert {
        "password-reset-lockout",
        "mfa-device-lost",
        "outlook-not-opening-syncing",
        "printer-offline",
        "vpn-will-not-connect",
        "wifi-drops",
        "mapped-drive-missing",
        "slow-pc",
        "teams-audio-camera",
        "onedrive-not-syncing",
        "new-starter-setup-check",
        "phishing-report",
    } <= slugs


@pytest.mark.parametrize("name, doc", STARTERS, ids=[name for name, _ in STARTERS])
def test_every_shipped_flow_passes_check_and_is_deep_enough(name, doc):
    assert check_flow(doc, require_title=True) == []
    jsonschema.validate(doc, SCHEMA)
    assert _longest_path(doc) >= 6
    assert doc["match_keywords"] and doc["category"]
    assert {n["type"] for n in doc["nodes"]} >= {"question", "instruction"}
