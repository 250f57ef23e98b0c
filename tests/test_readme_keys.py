"""The README's key table says what the code binds: every key a screen binds is in
its row, and every key in a row is bound there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rflow_tui.tui.app import RflowApp
from rflow_tui.tui.screens.dialogs import ResolveDialog
from rflow_tui.tui.screens.escalations import EscalationsScreen
from rflow_tui.tui.screens.finished_walk import FinishedWalkScreen
from rflow_tui.tui.screens.flow_map import FlowMapScreen
from rflow_tui.tui.screens.inbox import InboxScreen
from rflow_tui.tui.screens.keys import KeySheet, key_label, own_bindings
from rflow_tui.tui.screens.my_walks import MyWalksScreen
from rflow_tui.tui.screens.no_knowledge import NoKnowledgeScreen
from rflow_tui.tui.screens.picker import PickerScreen
from rflow_tui.tui.screens.proposals import ProposalsScreen
from rflow_tui.tui.screens.resume import ResumeDialog
from rflow_tui.tui.screens.start import StartDialog
from rflow_tui.tui.screens.walk import WalkScreen
from rflow_tui.tui.widgets import AnswerBar

README = Path(__file__).resolve().parent.parent / "README.md"
ROWS = {
    "everywhere": RflowApp,
    "ticket picker": PickerScreen,
    "start dialog": StartDialog,
    "resume": ResumeDialog,
    "walk": (WalkScreen, AnswerBar),  # the answer keys live on the walk's AnswerBar
    "resolve, escalate, comment and close dialogs": ResolveDialog,  # one base: the same keys
    "no flow, no AI": NoKnowledgeScreen,
    "escalations": EscalationsScreen,
    "inbox": InboxScreen,
    "my walks": MyWalksScreen,
    "finished walk": FinishedWalkScreen,
    "proposals": ProposalsScreen,
    "flow map": FlowMapScreen,
    "key sheet": KeySheet,
}


def readme_key_table() -> dict[str, set[str]]:
    """``| where | keys |`` rows: each row's keys are the backticked words."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| where | keys |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        where, keys = (cell.strip() for cell in line.strip().strip("|").split("|", 1))
        rows[where] = set(re.findall(r"`([^`]+)`", keys))
    return rows


def bound_keys(classes) -> set[str]:
    keys = set()
    for binding in (b for cls in (classes if isinstance(classes, tuple) else (classes,)) for b in own_bindings(cls)):
        if binding.description:
            keys |= {key_label(key.strip()) for key in binding.key.split(",")}
    return keys


def test_every_row_of_the_readme_names_a_screen():
    assert set(readme_key_table()) == set(ROWS)


@pytest.mark.parametrize("where", list(ROWS))
def test_the_readme_row_lists_exactly_the_keys_the_screen_binds(where):
    assert readme_key_table()[where] == bound_keys(ROWS[where])
