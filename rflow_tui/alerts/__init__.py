"""Escalation alerts outside rflow: the message an escalation becomes (``message``) and
sending it to one apprise URL (``send``). No store here: ``services/alert_outbox.py`` decides
what is owed and records what happened."""
