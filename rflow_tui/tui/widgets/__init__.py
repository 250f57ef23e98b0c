"""The walk's building blocks. Each owns its state, posts messages up and takes
actions down; screens compose them and handle their messages."""

from rflow_tui.tui.widgets.answer_bar import AnswerBar
from rflow_tui.tui.widgets.node_card import NodeCard
from rflow_tui.tui.widgets.session_notes import SessionNotes
from rflow_tui.tui.widgets.step_note import StepNote
from rflow_tui.tui.widgets.ticket_header import TicketHeader
from rflow_tui.tui.widgets.transcript import Transcript

__all__ = ["AnswerBar", "NodeCard", "SessionNotes", "StepNote", "TicketHeader", "Transcript"]
