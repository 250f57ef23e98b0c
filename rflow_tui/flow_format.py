"""The flow document format, and ``normalize_walked_path`` that turns a walk into one.

A flow is JSON: ``{"format", "title", "category", "match_keywords", "version",
"start", "nodes": [...]}``. Each node has an ``id``, a ``type`` and ``text``:

- ``question``: ``yes_label`` / ``no_label`` (the button texts) and ``yes`` / ``no``
  (the id of the node each answer leads to);
- ``choice`` (authored flows only; AI nodes stay two-way): ``options``, 2 to 6
  ``{"label", "next"}``, answered with the option's number;
- ``instruction``: ``next``;
- ``resolution`` / ``escalate``: terminal, nothing more.

Any node may carry ``origin: "ai"`` (it was written by the AI: captured walks and the
flows approved from them keep the mark) and, if it is not AI-written,
``safety_waivers``: the author's reviewed exceptions to named safety rules, each
``{"rule": id, "reason": why}``. A safety-rule hit is an error unless its rule is
waived on that node; a node produced by AI can never be waived.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rflow_tui.domain.enums import ASKING_NODE_TYPES, TERMINAL_NODE_TYPES, Answer, NodeType
from rflow_tui.domain.walk_step import StepSource, WalkStep, live_steps
from rflow_tui.text import CONTROL_CHARACTERS, clean, has_nul, looks_blank, same_label

FORMAT = "rflow.flow/1"
UNCHARTED_ID = "uncharted"
RESOLVED_ID = "resolved"
AI_ORIGIN = "ai"
SYNTHESIZED_IDS = (UNCHARTED_ID, RESOLVED_ID)  # written by rflow itself when a walk is captured


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base or "step", 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def normalize_walked_path(steps: list[WalkStep], end: dict[str, Any] | None = None) -> dict[str, Any]:
    """A walked path as a flow tree: the chosen branches in order, ending in a resolution.

    Each question keeps its labels; the branch the tech took leads on, the other one
    leads to a shared escalate node, because the walk says nothing about it. Nodes
    from AI-built steps carry ``origin: "ai"``: no author may ever waive a rule on them.
    ``end`` is the resolution node the walk reached (the fix that worked, AI-written),
    kept as the tree's last node; without one the tree ends in rflow's generic "Resolved".
    """
    steps = live_steps(steps)
    # An AI end never takes the id of rflow's own closing nodes (those stay waivable).
    taken: set[str] = {UNCHARTED_ID, RESOLVED_ID} if end else {UNCHARTED_ID}
    resolved_id = _unique(str(end["id"]) if end else RESOLVED_ID, taken)
    ids = [_unique(step.node_id or f"step-{i + 1}", taken) for i, step in enumerate(steps)]
    resolved_text = (end or {}).get("text") or "Resolved: confirm with the user and close."
    nodes: list[dict[str, Any]] = []
    needs_uncharted = False
    node: dict[str, Any]
    for i, step in enumerate(steps):
        following = ids[i + 1] if i + 1 < len(steps) else resolved_id
        if step.is_choice:
            needs_uncharted = True
            chosen = int(step.answer or 0)
            options = [
                {"label": label, "next": following if n == chosen else UNCHARTED_ID}
                for n, label in enumerate(step.options, start=1)
            ]
            node = {"id": ids[i], "type": NodeType.CHOICE.value, "text": step.text, "options": options}
        elif step.is_question:
            needs_uncharted = True
            chose_yes = step.answer == Answer.YES
            node = {
                "id": ids[i],
                "type": NodeType.QUESTION.value,
                "text": step.text,
                "yes_label": step.yes_label,
                "no_label": step.no_label,
                "yes": following if chose_yes else UNCHARTED_ID,
                "no": UNCHARTED_ID if chose_yes else following,
            }
        else:
            node = {"id": ids[i], "type": NodeType.INSTRUCTION.value, "text": step.text, "next": following}
        if step.source == StepSource.AI:
            node["origin"] = AI_ORIGIN
        nodes.append(node)
    closing: dict[str, Any] = {"id": resolved_id, "type": NodeType.RESOLUTION.value, "text": resolved_text}
    if end:
        closing["origin"] = AI_ORIGIN
    nodes.append(closing)
    if needs_uncharted:
        nodes.append(
            {
                "id": UNCHARTED_ID,
                "type": NodeType.ESCALATE.value,
                "text": "This branch was not walked when the flow was captured: escalate.",
            }
        )
    return {"format": FORMAT, "start": ids[0] if ids else resolved_id, "nodes": nodes}


def mark_ai_origin(doc: dict[str, Any]) -> dict[str, Any]:
    """The tree of an AI-built proposal with every node it got from the walk marked AI-written
    (trees captured before the mark existed included); rflow's own closing nodes stay unmarked."""
    nodes = [
        node if not isinstance(node, dict) or node.get("id") in SYNTHESIZED_IDS else {**node, "origin": AI_ORIGIN}
        for node in doc.get("nodes") or []
    ]
    return {**doc, "nodes": nodes}


# --- reading a flow ------------------------------------------------------------

NODE_TYPES = tuple(NodeType)
ANSWERS = tuple(Answer)
SCHEMA_PATH = Path(__file__).parent / "data" / "flow.schema.json"


@functools.cache
def flow_schema() -> dict[str, Any]:
    """The JSON Schema that ships with rflow: the one declaration of the format and its limits."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@dataclass(frozen=True)
class FlowLimits:
    """The flow format's lengths and counts, as the schema declares them (read, never restated)."""

    id: int
    label: int
    text: int
    help: int
    title: int
    slug: int
    category: int
    keyword: int
    description: int
    nodes: int
    waiver_reason: int
    options: tuple[int, int]  # how many a choice offers, at least and at most

    @classmethod
    def from_schema(cls, schema: dict[str, Any]) -> FlowLimits:
        top, defs = schema["properties"], schema["$defs"]
        waiver = defs["safety_waivers"]["items"]["properties"]
        return cls(
            id=defs["id"]["maxLength"],
            label=defs["label"]["maxLength"],
            text=defs["text"]["maxLength"],
            help=defs["help"]["maxLength"],
            title=top["title"]["maxLength"],
            slug=top["slug"]["maxLength"],
            category=top["category"]["maxLength"],
            keyword=defs["keyword"]["maxLength"],
            description=top["description"]["maxLength"],
            nodes=top["nodes"]["maxItems"],
            waiver_reason=waiver["reason"]["maxLength"],
            options=(defs["options"]["minItems"], defs["options"]["maxItems"]),
        )


LIMITS = FlowLimits.from_schema(flow_schema())
TOP_KEYS = {"format", "title", "slug", "category", "match_keywords", "version", "description", "start", "nodes"}
COMMON_KEYS = {"id", "type", "text", "help", "origin", "safety_waivers"}
NODE_KEYS = {
    NodeType.QUESTION: {"yes_label", "no_label", "yes", "no", *COMMON_KEYS},
    NodeType.CHOICE: {"options", *COMMON_KEYS},
    NodeType.INSTRUCTION: {"next", *COMMON_KEYS},
    NodeType.RESOLUTION: COMMON_KEYS,
    NodeType.ESCALATE: COMMON_KEYS,
}


def node_by_id(doc: Any, node_id: Any) -> dict[str, Any] | None:
    """The node with this id, or None (also for a malformed document)."""
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, list):
        return None
    for node in nodes:
        if isinstance(node, dict) and node.get("id") == node_id:
            return node
    return None


def labels(node: dict[str, Any]) -> tuple[str, str]:
    """A question's button texts; missing labels default to Yes / No (as for AI nodes)."""
    return node.get("yes_label") or "Yes", node.get("no_label") or "No"


def exits(node: dict[str, Any]) -> list[tuple[str | None, str | None, Any]]:
    """Each way out of a node as (answer, button label, target): ``yes``/``no`` for a
    question, ``"1"`` to ``"6"`` for a choice, one (None, None, next) for an instruction,
    none for an end. Targets are as written (the checker says whether they exist)."""
    kind = node.get("type")
    if kind == NodeType.QUESTION:
        yes_label, no_label = labels(node)
        return [(Answer.YES.value, yes_label, node.get("yes")), (Answer.NO.value, no_label, node.get("no"))]
    if kind == NodeType.CHOICE:
        options = node.get("options")
        return [
            (str(n), str(option.get("label")), option.get("next"))
            for n, option in enumerate(options if isinstance(options, list) else [], start=1)
            if isinstance(option, dict)
        ]
    if kind == NodeType.INSTRUCTION:
        return [(None, None, node.get("next"))]
    return []


def answer_labels(node: dict[str, Any]) -> list[str]:
    """The buttons a tech picks from: a question's two labels, a choice's options; [] otherwise."""
    return [label for answer, label, _ in exits(node) if answer is not None and label is not None]


def next_node_id(node: dict[str, Any], answer: str | None) -> str | None:
    """Where an answer leads: ``yes``/``no`` for a question, an option's number for a
    choice, None to acknowledge an instruction. Terminal nodes lead nowhere (None). An
    answer the node does not offer is a caller error (ValueError)."""
    ways = exits(node)
    if node.get("type") == NodeType.INSTRUCTION:
        return node.get("next")
    for offered, _label, target in ways:
        if answer == offered:
            return target if isinstance(target, str) else None
    if ways:
        raise ValueError(f"answer with one of {', '.join(str(a) for a, _, _ in ways)}, not {answer!r}")
    return None


def position(doc: Any, steps: list[WalkStep]) -> dict[str, Any] | None:
    """The node a walk of ``doc`` is on after its live ``steps``: the start when there are
    none, else where the last one led; None when the flow has no such node."""
    if not steps:
        return node_by_id(doc, doc.get("start") if isinstance(doc, dict) else None)
    last = node_by_id(doc, steps[-1].node_id)
    try:
        return None if last is None else node_by_id(doc, next_node_id(last, steps[-1].answer))
    except ValueError:
        return None


# --- checking a flow -------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow document, located by a JSONPath-like ``path`` and, inside
    a node, the node's id (an author finds a node by its id, not by its position)."""

    path: str
    message: str
    node_id: str | None = None

    @property
    def where(self) -> str:
        """``$.nodes[25].no (node "26")``: the path, and the node it is in."""
        if self.node_id is None:
            return self.path
        return f'{self.path} (node "{clean(self.node_id, single_line=True)[:60]}")'

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Waiver:
    """A safety-rule hit on an authored node that its author waived, with their reason."""

    path: str
    node_id: str
    rule_id: str
    description: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{Problem(self.path, '', self.node_id).where}: rule {self.rule_id} ({self.description}) "
            f"waived by the author: {self.reason}"
        )


@dataclass(frozen=True)
class FlowReview:
    """What ``flows check`` says about a document: its problems (errors: the flow cannot be
    imported), the waivers that applied, and warnings that do not stop an import (a question
    whose answers lead to the same node; a waiver whose rule the node no longer breaks)."""

    problems: list[Problem]
    waived: list[Waiver]
    warnings: list[Problem]


def _text_problem(value: Any, what: str, *, required: bool = True, cap: int | None = None) -> str | None:
    if value is None:
        return f"{what} is missing" if required else None
    if not isinstance(value, str):
        return f"{what} must be a string"
    if has_nul(value):
        return f"{what} contains a NUL byte"
    if required and not value.strip():
        return f"{what} is empty"
    if required and looks_blank(value):
        return f"{what} looks blank: it holds only invisible characters"
    if cap is not None and len(value) > cap:
        return f"{what} is {len(value)} characters; the limit is {cap}"
    if CONTROL_CHARACTERS.search(value):
        return f"{what} contains control or bidi characters (terminal escapes and direction overrides are not allowed)"
    return None


_MULTI_LINE_KEYS = ("text", "help", "description")


def cleaned(doc: Any) -> Any:
    """A checked document as it is stored: every string through ``text.clean``
    (``text``, ``help`` and ``description`` keep their lines; the rest are single-line fields)."""

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, str):
            return clean(value, single_line=key not in _MULTI_LINE_KEYS)
        if isinstance(value, list):
            return [walk(item, key) for item in value]
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        return value

    return walk(doc, None)


def check_flow(doc: Any, *, require_title: bool = False) -> list[Problem]:
    """Every problem in a flow document, each with its path; [] means the flow is valid.

    Never raises on arbitrary JSON. ``title``/``category``/``match_keywords``/``version``
    are optional in the format (a walk captured by ``normalize_walked_path`` has none);
    importing into the library needs a title, so ``require_title=True`` is what
    ``flows check`` and ``flows import`` use.
    """
    return review_flow(doc, require_title=require_title).problems


def review_flow(doc: Any, *, require_title: bool = False) -> FlowReview:
    """``check_flow``'s problems, with the safety waivers that applied and warnings,
    each problem inside a node named with that node's id."""
    review = _review(doc, require_title=require_title)
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, list):
        return review

    def located(problem: Problem) -> Problem:
        found = _NODE_PATH.match(problem.path)
        node = nodes[int(found.group(1))] if found and int(found.group(1)) < len(nodes) else None
        node_id = node.get("id") if isinstance(node, dict) else None
        return replace(problem, node_id=node_id) if isinstance(node_id, str) and node_id.strip() else problem

    return FlowReview([located(p) for p in review.problems], review.waived, [located(p) for p in review.warnings])


_NODE_PATH = re.compile(r"^\$\.nodes\[(\d+)\]")


def _review(doc: Any, *, require_title: bool) -> FlowReview:
    problems: list[Problem] = []
    waived: list[Waiver] = []
    notes: list[Problem] = []

    def report(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    if not isinstance(doc, dict):
        report("$", "a flow must be a JSON object")
        return FlowReview(problems, waived, notes)
    for key in doc:
        if key not in TOP_KEYS:
            report(f"$.{key}" if isinstance(key, str) else "$", f"unknown field {str(key)[:60]!r}")
    if doc.get("format") != FORMAT:
        report("$.format", f"format must be {FORMAT!r}" + ("" if "format" in doc else " (missing)"))
    msg = _text_problem(doc.get("title"), "title", required=require_title, cap=LIMITS.title)
    if msg:
        report("$.title", msg)
    for key, cap in (("category", LIMITS.category), ("slug", LIMITS.slug), ("description", LIMITS.description)):
        msg = _text_problem(doc.get(key), key, required=False, cap=cap)
        if msg:
            report(f"$.{key}", msg)
    slug = doc.get("slug")
    if isinstance(slug, str) and slug and not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug):
        report("$.slug", "slug must be lower-case letters, digits and single hyphens")
    keywords = doc.get("match_keywords")
    if keywords is not None:
        if not isinstance(keywords, list):
            report("$.match_keywords", "match_keywords must be a list of strings")
        else:
            for i, word in enumerate(keywords):
                msg = _text_problem(word, "a keyword", cap=LIMITS.keyword)
                if msg:
                    report(f"$.match_keywords[{i}]", msg)
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        report("$.version", "version must be a whole number from 1")

    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        report("$.nodes", "nodes must be a non-empty list")
        return FlowReview(problems, waived, notes)
    if len(nodes) > LIMITS.nodes:
        report("$.nodes", f"a flow has at most {LIMITS.nodes} nodes, this one has {len(nodes)}")
        return FlowReview(problems, waived, notes)

    before = len(problems)
    index: dict[str, int] = {}
    sound: list[int] = []  # nodes whose own fields are well formed
    for i, node in enumerate(nodes):
        here = f"$.nodes[{i}]"
        if not isinstance(node, dict):
            report(here, "a node must be a JSON object")
            continue
        node_id = node.get("id")
        msg = _text_problem(node_id, "id", cap=LIMITS.id)
        if msg or not isinstance(node_id, str):  # (a sound id is a string; this tells the type checker)
            report(f"{here}.id", msg or "id must be a string")
            node_id = None
        elif node_id in index:
            report(f"{here}.id", f"duplicate id {node_id!r} (also $.nodes[{index[node_id]}])")
            node_id = None
        else:
            index[node_id] = i
        kind = node.get("type")
        if kind not in NODE_TYPES:
            report(f"{here}.type", f"type must be one of {', '.join(NODE_TYPES)}")
            continue
        ok = node_id is not None
        for key in node:
            if key not in NODE_KEYS[kind]:
                report(f"{here}.{key}" if isinstance(key, str) else here, f"unknown field for a {kind} node")
                ok = False
        msg = _text_problem(node.get("text"), "text", cap=LIMITS.text)
        if msg:
            report(f"{here}.text", msg)
            ok = False
        msg = _text_problem(node.get("help"), "help", required="help" in node, cap=LIMITS.help)
        if msg:
            report(f"{here}.help", msg)
            ok = False
        if kind == NodeType.CHOICE:
            ok = _choice_problems(node, here, report) and ok
        if kind == NodeType.QUESTION:
            for key in ("yes_label", "no_label"):
                if key in node:
                    msg = _text_problem(node[key], key, cap=LIMITS.label)
                    if msg:
                        report(f"{here}.{key}", msg)
                        ok = False
            yes_label, no_label = (x if isinstance(x, str) else "" for x in labels(node))
            if ok and same_label(yes_label, no_label):
                report(f"{here}.no_label", f"both answers are labelled {yes_label!r}; labels must differ")
                ok = False
        for problem in _safety_field_problems(node, here):
            problems.append(problem)
            ok = False
        if ok:
            sound.append(i)

    # Targets: every branch must name a node that exists.
    edges: dict[str, list[str]] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or node.get("type") not in NODE_TYPES:
            continue
        node_id = node.get("id")
        outs: list[str] = []
        for where, key, target in _targets(node, f"$.nodes[{i}]"):
            if target is None:
                report(where, f"missing: a {node['type']} node needs '{key}' (the id of the next node)")
            elif not isinstance(target, str):
                report(where, "a target must be a node id (string)")
            elif target not in index:
                report(where, f"target {target[: LIMITS.id]!r} is not a node in this flow")
            elif target == node_id:
                report(where, "a node cannot lead to itself")
            else:
                outs.append(target)
        repeated = sorted({target for target in outs if outs.count(target) > 1})
        if node["type"] in ASKING_NODE_TYPES and len(outs) == len(_targets(node, "")) and repeated:
            every = len(set(outs)) == 1
            notes.append(
                Problem(
                    f"$.nodes[{i}]",
                    (
                        f"{'all' if len(outs) > 2 else 'both'} answers lead to {repeated[0][:60]!r}: "
                        "the answer changes nothing (make it an instruction, or send one answer elsewhere)"
                    )
                    if every
                    else f"more than one answer leads to {', '.join(repr(t[:60]) for t in repeated)}",
                )
            )
        if isinstance(node_id, str) and index.get(node_id) == i:
            edges[node_id] = outs
    malformed = len(problems) > before

    start = doc.get("start")
    if not isinstance(start, str) or start not in index:
        report("$.start", "start must be the id of a node in this flow")
        start = None

    if start is not None:
        reachable = _reach(start, edges)
        for node_id, i in index.items():
            if node_id not in reachable:
                report(f"$.nodes[{i}]", f"node {node_id!r} cannot be reached from the start")
    if start is not None and not malformed:
        # Only meaningful once every node is well formed and every branch points at one.
        terminals = {n for n, i in index.items() if nodes[i].get("type") in TERMINAL_NODE_TYPES}
        reverse: dict[str, list[str]] = {}
        for src, outs in edges.items():
            for dst in outs:
                reverse.setdefault(dst, []).append(src)
        can_finish = set()
        for t in terminals:
            can_finish |= _reach(t, reverse)
        for node_id in sorted(reachable - can_finish, key=index.__getitem__):
            report(
                f"$.nodes[{index[node_id]}]",
                f"node {node_id!r} is in a loop with no way out to a resolution or escalation",
            )

    for i in sound:
        _safety_review(nodes[i], f"$.nodes[{i}]", problems, waived, notes)
    return FlowReview(problems, waived, notes)


def _targets(node: dict[str, Any], here: str) -> list[tuple[str, str, Any]]:
    """(path, field, target) of each branch a node must have, as written."""
    kind = node.get("type")
    if kind == NodeType.QUESTION:
        return [(f"{here}.{key}", key, node.get(key)) for key in ANSWERS]
    if kind == NodeType.INSTRUCTION:
        return [(f"{here}.next", "next", node.get("next"))]
    if kind == NodeType.CHOICE and isinstance(node.get("options"), list):
        return [
            (f"{here}.options[{j}].next", "next", option.get("next"))
            for j, option in enumerate(node["options"])
            if isinstance(option, dict)
        ]
    return []


def _choice_problems(node: dict[str, Any], here: str, report: Any) -> bool:
    """A choice's options: 2 to 6, each exactly ``{"label", "next"}``, labels that differ."""
    options = node.get("options")
    low, high = LIMITS.options
    if not isinstance(options, list) or not low <= len(options) <= high:
        report(f"{here}.options", f'a choice has {low} to {high} options, each {{"label", "next"}}')
        return False
    ok, seen = True, list[str]()
    for j, option in enumerate(options):
        where = f"{here}.options[{j}]"
        if not isinstance(option, dict) or set(option) != {"label", "next"}:
            report(where, 'an option is exactly {"label": "<button text>", "next": "<node id>"}')
            ok = False
            continue
        msg = _text_problem(option["label"], "label", cap=LIMITS.label)
        if msg:
            report(f"{where}.label", msg)
            ok = False
        elif any(same_label(option["label"], earlier) for earlier in seen):
            report(f"{where}.label", f"label {option['label']!r} is already an option here; labels must differ")
            ok = False
        else:
            seen.append(option["label"])
    return ok


def _reach(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _safety_field_problems(node: dict[str, Any], here: str) -> list[Problem]:
    """The shape of ``origin`` and ``safety_waivers``; an AI-written node may carry no waiver."""
    from rflow_tui.safety import rule_catalogue

    found: list[Problem] = []
    origin = node.get("origin")
    if origin is not None and origin != AI_ORIGIN:
        found.append(Problem(f"{here}.origin", f"origin may only be {AI_ORIGIN!r} (a node written by AI)"))
    if "safety_waivers" not in node:
        return found
    waivers = node["safety_waivers"]
    if origin == AI_ORIGIN:
        found.append(
            Problem(
                f"{here}.safety_waivers",
                "this node was produced by AI, and a node produced by AI can never be waived: rewrite it as your own "
                "step (a new node without origin) or remove it",
            )
        )
        return found
    if not isinstance(waivers, list) or not waivers:
        return [
            *found,
            Problem(f"{here}.safety_waivers", 'safety_waivers must be a non-empty list of {"rule", "reason"}'),
        ]
    known = [rule.id for rule in rule_catalogue()]
    seen: set[str] = set()
    for j, waiver in enumerate(waivers):
        where = f"{here}.safety_waivers[{j}]"
        if not isinstance(waiver, dict) or set(waiver) != {"rule", "reason"}:
            found.append(Problem(where, 'a waiver is exactly {"rule": "<rule id>", "reason": "<why it is safe here>"}'))
            continue
        rule = waiver["rule"]
        if rule not in known:
            found.append(
                Problem(f"{where}.rule", f"unknown safety rule {str(rule)[:60]!r} (known: {', '.join(known)})")
            )
        elif rule in seen:
            found.append(Problem(f"{where}.rule", f"rule {rule} is waived twice on this node"))
        else:
            seen.add(rule)
        msg = _text_problem(waiver["reason"], "the waiver's reason", cap=LIMITS.waiver_reason)
        if msg:
            found.append(Problem(f"{where}.reason", msg))
    return found


def _safety_review(
    node: dict[str, Any], here: str, problems: list[Problem], waived: list[Waiver], notes: list[Problem]
) -> None:
    """The safety rules over one well-formed node: each hit is a problem unless its rule is waived.

    The messages name the rule, never the text that broke it.
    """
    from rflow_tui.safety import scan_node

    findings = scan_node(node["text"], answer_labels(node))
    reasons = {w["rule"]: w["reason"] for w in node.get("safety_waivers") or []}
    ai_written = node.get("origin") == AI_ORIGIN
    for finding in findings:
        if finding.rule_id in reasons:
            waived.append(Waiver(here, node["id"], finding.rule_id, finding.description, reasons[finding.rule_id]))
        elif ai_written:
            problems.append(
                Problem(
                    here,
                    (
                        f"breaks safety rule {finding.rule_id} ({finding.description}); "
                        "this node was produced by AI and can never be waived: rewrite or remove it"
                    ),
                )
            )
        else:
            problems.append(
                Problem(
                    here,
                    (
                        f"breaks safety rule {finding.rule_id} ({finding.description}); "
                        "if you have reviewed this step and it is safe here, waive it on this node: "
                        f'"safety_waivers": [{{"rule": "{finding.rule_id}", '
                        '"reason": "..."}]'
                    ),
                )
            )
    hit = {finding.rule_id for finding in findings}
    for j, rule_id in enumerate(reasons):
        if rule_id not in hit:
            notes.append(
                Problem(f"{here}.safety_waivers[{j}]", f"rule {rule_id} is waived but this node does not break it")
            )
