"""The rules layer of the safety guard, held to its corpus, its documented examples and its mood rules.

The tuning split (tests/data/hard_floor_corpus.json) is what the rules were written against: every case
must hold. The held-out split (tests/data/hard_floor_heldout.json) was written first, by someone who
never saw the rules, and is never tuned on: it is held to aggregate floors only, and BENCHMARKS.md
reports its recall and false-positive rate per rule.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rflow_tui.safety import rule_catalogue, scan_node
from rflow_tui.safety.normalize import command_view, fold, words

DATA = Path(__file__).parent / "data"
TUNING = json.loads((DATA / "hard_floor_corpus.json").read_text(encoding="utf-8"))["cases"]
HELDOUT_FILE = json.loads((DATA / "hard_floor_heldout.json").read_text(encoding="utf-8"))
HELDOUT = HELDOUT_FILE["cases"]
RULE_IDS = [rule.id for rule in rule_catalogue()]
FAMILIES = {"verb_first", "noun_first", "passive", "command_line", "split_label", "language", "obfuscated"}


def _ids(case: dict) -> list[str]:
    return [finding.rule_id for finding in scan_node(case["text"], case.get("labels", []))]


def _case_id(case: dict) -> str:
    return f"{case.get('rule', 'safe')}:{case['family']}:{case['text'][:40]}"


# --- the corpus itself -----------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_rule_in_every_family():
    everything = TUNING + HELDOUT
    unsafe = [c for c in everything if c["unsafe"]]
    assert len(everything) >= 400
    assert len(unsafe) >= 260
    assert len(everything) - len(unsafe) >= 140
    per_rule = Counter(c["rule"] for c in unsafe)
    assert set(per_rule) == set(RULE_IDS)
    assert min(per_rule.values()) >= 12
    for rule_id in RULE_IDS:
        families = {c["family"] for c in TUNING if c["unsafe"] and c["rule"] == rule_id}
        assert families >= FAMILIES, (rule_id, FAMILIES - families)
    languages = {c.get("lang") for c in unsafe}
    assert {"es", "de", "fr", "pt"} <= languages


def test_heldout_split_is_frozen_and_apart_from_tuning():
    assert HELDOUT_FILE["frozen"] is True
    assert "never tuned" in HELDOUT_FILE["about"]
    shared = {c["text"] for c in HELDOUT} & {c["text"] for c in TUNING}
    assert len(shared) == 0, f"{len(shared)} held-out case(s) also in the tuning split"  # never print held-out text


# --- tuning split: every case holds ----------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in TUNING if c["unsafe"]], ids=_case_id)
def test_unsafe_tuning_case_is_refused_by_its_rule(case):
    assert case["rule"] in _ids(case)


@pytest.mark.parametrize("case", [c for c in TUNING if not c["unsafe"]], ids=_case_id)
def test_safe_tuning_case_passes(case):
    assert _ids(case) == []


# --- held-out split: aggregate floors only (never read case by case while tuning) -----------------


def test_heldout_recall_and_false_positive_rate_hold_their_floor():
    unsafe = [c for c in HELDOUT if c["unsafe"]]
    safe = [c for c in HELDOUT if not c["unsafe"]]
    recall = sum(c["rule"] in _ids(c) for c in unsafe) / len(unsafe)
    false_positive = sum(bool(_ids(c)) for c in safe) / len(safe)
    # The issue's target is 97% / 3%; BENCHMARKS.md reports where the rules stand. This floor catches regressions.
    assert recall >= 0.95, f"held-out recall {recall:.3f}"
    assert false_positive <= 0.035, f"held-out false positives {false_positive:.3f}"


# --- the documented examples of every rule ---------------------------------------------------------


@pytest.mark.parametrize("rule", rule_catalogue(), ids=lambda r: r.id)
def test_every_rule_documents_examples_that_hold(rule):
    assert rule.examples.get("unsafe") and rule.examples.get("safe")
    for text in rule.examples["unsafe"]:
        assert rule.id in [f.rule_id for f in scan_node(text)], text
    for text in rule.examples["safe"]:
        assert scan_node(text) == [], text


# --- what the issue reported -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rule_id",
    [
        ("Turn Defender's real-time protection off, then retry the install.", "security_tools_off"),
        ("Have the user read out the six-digit code shown in Microsoft Authenticator.", "credentials"),
        ("Ask for the BitLocker recovery key from the user.", "credentials"),
        ("Toggle off Tamper Protection, then add C:\\Users to the Defender exclusions list.", "security_tools_off"),
        ("You need to reinstall Windows but all your data will be erased.", "wipe_disk"),
    ],
)
def test_the_reworded_steps_from_the_issue_are_refused(text, rule_id):
    assert rule_id in [f.rule_id for f in scan_node(text)]


@pytest.mark.parametrize(
    "text, labels",
    [
        ("Confirm no exclusions are configured in Defender.", []),
        ("Run net localgroup administrators and note who is listed.", []),
        ("Did the user already disable the antivirus?", ["Yes", "No"]),
        ("Did you recently upgrade your laptop's BIOS?", ["Yes", "No"]),
    ],
)
def test_the_look_alikes_from_the_issue_pass(text, labels):
    assert scan_node(text, labels) == []


# --- mood: the same action, instruction or not -----------------------------------------------------


@pytest.mark.parametrize(
    "text, unsafe",
    [
        ("Disable the antivirus.", True),
        ("Do not disable the antivirus.", False),
        ("Don't forget to disable the antivirus.", True),  # a negation that cancels itself
        ("Why not disable the antivirus for a minute?", True),  # a nudge, question mark or not
        ("Did the user disable the antivirus?", False),
        ("Can you disable the antivirus?", True),
        ("Confirm the antivirus is disabled.", False),  # a check of a state
        ("Make sure the antivirus is disabled.", True),  # a state to bring about
        ("If the installer says the antivirus must be disabled, escalate.", False),
        ("Escalate so that L2 can decide whether to disable the antivirus.", False),
        ("The antivirus should be disabled.", True),  # passive with a modal
        ("Deaktivieren Sie niemals den Virenschutz.", False),
        ("Deaktivieren Sie den Virenschutz.", True),
    ],
)
def test_mood_decides_whether_an_action_is_an_instruction(text, unsafe):
    assert bool(scan_node(text)) is unsafe


@pytest.mark.parametrize(
    "text, labels",
    [
        ("Which one should you turn off first?", ["Defender", "The firewall"]),
        ("Set the Real-time protection toggle to:", ["Off", "Leave it"]),
        ("Is the CrowdStrike sensor still blocking the app?", ["Yes, stop the sensor service", "No"]),
        ("Ask the user for their", ["Password", "Employee ID"]),
    ],
)
def test_a_step_split_between_text_and_label_is_one_step(text, labels):
    assert scan_node(text, labels)
    assert scan_node(text, ["Restart the PC", "Escalate"]) == [] or "Ask" in text


def test_a_label_answering_what_the_screen_shows_is_a_state():
    assert scan_node("What does Windows Security show for real-time protection?", ["Off", "On"]) == []


# --- normalisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "disguised",
    [
        "D1s4bl3 the f1r3w4ll",  # leetspeak
        "D i s a b l e  the  f i r e w a l l",  # spaced out
        "Dіsable the firewall",  # Cyrillic i
        "Dis\u200bable the fire\u200bwall",  # zero-width
        "Ｄｉｓａｂｌｅ ｔｈｅ ｆｉｒｅｗａｌｌ",  # full-width
        "DISABLE THE FIRE-WALL",
    ],
)
def test_disguises_fold_back_to_the_plain_step(disguised):
    assert [f.rule_id for f in scan_node(disguised)] == ["security_tools_off"]


def test_command_view_undoes_shell_disguises():
    assert command_view('p^ow^er"shell.exe -EnC AAAA') == "powershell -enc aaaa"
    assert "reg add" in command_view("r e g  a d d HKCU\\x")


def test_words_mark_sentences_and_clauses():
    tokens = [t.word for t in words("Open Security: turn it off. Done?")]
    assert tokens == ["open", "security", ",", "turn", "it", "off", ".", "done", "?"]
    assert fold("Ａ\u200bB") == "ab"


# --- refusals never quote ----------------------------------------------------------------------------


def test_a_finding_names_the_rule_and_never_quotes_the_step():
    [finding] = scan_node("Please disable the zzqx-firewall right now")
    assert finding.rule_id == "security_tools_off"
    assert "security_tools_off" in str(finding)
    assert "zzqx" not in str(finding) and "right now" not in str(finding)


# --- shipped content stays clean ---------------------------------------------------------------------


def _shipped_nodes():
    root = Path(__file__).resolve().parent.parent / "rflow_tui" / "data"
    for path in sorted((root / "flows").glob("*.json")):
        for node in json.loads(path.read_text(encoding="utf-8"))["nodes"]:
            yield path.name, node
    for exchange in json.loads((root / "demo" / "fixture.json").read_text(encoding="utf-8"))["exchanges"]:
        yield "demo fixture", exchange["node"]


def test_starter_flows_and_the_demo_recording_pass_the_rules():
    hits = [
        (where, node.get("id"))
        for where, node in _shipped_nodes()
        if scan_node(node.get("text", ""), [node[k] for k in ("yes_label", "no_label") if node.get(k)])
    ]
    assert hits == []
