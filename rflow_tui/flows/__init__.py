"""Flows as documents: the format, the checker, a walk turned into a flow, diagrams and
ticket matching. Pure: no store, no model client, no Textual."""
