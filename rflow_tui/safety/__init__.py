"""The safety guard: what an AI step may never tell an L1 tech.

Layer 1 (``rules``) is deterministic and always on: it models the meaning of a
step (an action on a protected target, a dangerous command, a secret asked of
the user) and the step's mood (an instruction, versus a prohibition, a check or
a question about what already happened). Layer 2 (``judge``) is an independent
model call that sees only the node. A node is shown only when both pass.
"""

from __future__ import annotations

from rflow_tui.safety.rules import Finding, RuleInfo, rule_catalogue, scan_node

__all__ = ["Finding", "RuleInfo", "rule_catalogue", "scan_node"]
