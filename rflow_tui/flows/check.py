"""The flow checker: every problem in a flow document, with its path, the safety waivers that
applied and the warnings that do not stop an import. Never raises on arbitrary JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from rflow_tui.domain.enums import ASKING_NODE_TYPES, TERMINAL_NODE_TYPES, NodeType
from rflow_tui.flows.format import (
    AI_ORIGIN,
    ANSWERS,
    FORMAT,
    LIMITS,
    NODE_KEYS,
    NODE_TYPES,
    TOP_KEYS,
    answer_labels,
    labels,
)
from rflow_tui.text import CONTROL_CHARACTERS, clean, has_nul, looks_blank, same_label


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


@dataclass
class _Findings:
    """What a review collects: errors, the waivers that applied, and warnings."""

    problems: list[Problem] = field(default_factory=list)
    waived: list[Waiver] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    def report(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def review(self) -> FlowReview:
        return FlowReview(self.problems, self.waived, self.notes)


def _review(doc: Any, *, require_title: bool) -> FlowReview:
    found = _Findings()
    if not isinstance(doc, dict):
        found.report("$", "a flow must be a JSON object")
        return found.review()
    _check_top_fields(doc, require_title, found)
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        found.report("$.nodes", "nodes must be a non-empty list")
        return found.review()
    if len(nodes) > LIMITS.nodes:
        found.report("$.nodes", f"a flow has at most {LIMITS.nodes} nodes, this one has {len(nodes)}")
        return found.review()
    before = len(found.problems)
    index, sound = _check_nodes(nodes, found)
    edges = _check_targets(nodes, index, found)
    malformed = len(found.problems) > before
    _check_paths(doc.get("start"), nodes, index, edges, found, well_formed=not malformed)
    for i in sound:
        _safety_review(nodes[i], f"$.nodes[{i}]", found.problems, found.waived, found.notes)
    return found.review()


def _check_top_fields(doc: dict[str, Any], require_title: bool, found: _Findings) -> None:
    """The document's own fields: known keys, format, title, slug, keywords, version."""
    report = found.report
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


def _check_nodes(nodes: list[Any], found: _Findings) -> tuple[dict[str, int], list[int]]:
    """Each node's own fields. Returns the index of unique ids and the nodes that are sound."""
    index: dict[str, int] = {}
    sound: list[int] = []  # nodes whose own fields are well formed
    for i, node in enumerate(nodes):
        here = f"$.nodes[{i}]"
        if not isinstance(node, dict):
            found.report(here, "a node must be a JSON object")
            continue
        node_id = _check_node_id(node, i, index, found)
        if node.get("type") not in NODE_TYPES:
            found.report(f"{here}.type", f"type must be one of {', '.join(NODE_TYPES)}")
            continue
        if _check_node_fields(node, here, found) and node_id is not None:
            sound.append(i)
    return index, sound


def _check_node_id(node: dict[str, Any], i: int, index: dict[str, int], found: _Findings) -> str | None:
    """The node's id when it is sound and unique (recorded in ``index``), else None."""
    here = f"$.nodes[{i}]"
    node_id = node.get("id")
    msg = _text_problem(node_id, "id", cap=LIMITS.id)
    if msg or not isinstance(node_id, str):  # (a sound id is a string; this tells the type checker)
        found.report(f"{here}.id", msg or "id must be a string")
        return None
    if node_id in index:
        found.report(f"{here}.id", f"duplicate id {node_id!r} (also $.nodes[{index[node_id]}])")
        return None
    index[node_id] = i
    return node_id


def _check_node_fields(node: dict[str, Any], here: str, found: _Findings) -> bool:
    """A typed node's fields: known keys, text, help, labels or options, safety fields."""
    kind = node["type"]
    ok = True
    for key in node:
        if key not in NODE_KEYS[kind]:
            found.report(f"{here}.{key}" if isinstance(key, str) else here, f"unknown field for a {kind} node")
            ok = False
    for key, cap, required in (("text", LIMITS.text, True), ("help", LIMITS.help, "help" in node)):
        msg = _text_problem(node.get(key), key, required=required, cap=cap)
        if msg:
            found.report(f"{here}.{key}", msg)
            ok = False
    if kind == NodeType.CHOICE:
        ok = _choice_problems(node, here, found.report) and ok
    if kind == NodeType.QUESTION:
        ok = _label_problems(node, here, found, ok) and ok
    for problem in _safety_field_problems(node, here):
        found.problems.append(problem)
        ok = False
    return ok


def _label_problems(node: dict[str, Any], here: str, found: _Findings, ok: bool) -> bool:
    """A question's two labels: each a sound text, and not the same answer twice."""
    for key in ("yes_label", "no_label"):
        if key in node:
            msg = _text_problem(node[key], key, cap=LIMITS.label)
            if msg:
                found.report(f"{here}.{key}", msg)
                ok = False
    yes_label, no_label = (x if isinstance(x, str) else "" for x in labels(node))
    if ok and same_label(yes_label, no_label):
        found.report(f"{here}.no_label", f"both answers are labelled {yes_label!r}; labels must differ")
        return False
    return ok


def _check_targets(nodes: list[Any], index: dict[str, int], found: _Findings) -> dict[str, list[str]]:
    """Every branch must name a node that exists. Returns each node's outgoing edges."""
    edges: dict[str, list[str]] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or node.get("type") not in NODE_TYPES:
            continue
        node_id = node.get("id")
        outs: list[str] = []
        for where, key, target in _targets(node, f"$.nodes[{i}]"):
            if target is None:
                found.report(where, f"missing: a {node['type']} node needs '{key}' (the id of the next node)")
            elif not isinstance(target, str):
                found.report(where, "a target must be a node id (string)")
            elif target not in index:
                found.report(where, f"target {target[: LIMITS.id]!r} is not a node in this flow")
            elif target == node_id:
                found.report(where, "a node cannot lead to itself")
            else:
                outs.append(target)
        _warn_same_answers(node, i, outs, found)
        if isinstance(node_id, str) and index.get(node_id) == i:
            edges[node_id] = outs
    return edges


def _warn_same_answers(node: dict[str, Any], i: int, outs: list[str], found: _Findings) -> None:
    """A warning when answers of one question or choice lead to the same node."""
    repeated = sorted({target for target in outs if outs.count(target) > 1})
    if node["type"] not in ASKING_NODE_TYPES or len(outs) != len(_targets(node, "")) or not repeated:
        return
    every = len(set(outs)) == 1
    found.notes.append(
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


def _check_paths(
    start: Any,
    nodes: list[Any],
    index: dict[str, int],
    edges: dict[str, list[str]],
    found: _Findings,
    *,
    well_formed: bool,
) -> None:
    """The start exists, every node is reachable from it, and none is in a loop with no way out."""
    if not isinstance(start, str) or start not in index:
        found.report("$.start", "start must be the id of a node in this flow")
        return
    reachable = _reach(start, edges)
    for node_id, i in index.items():
        if node_id not in reachable:
            found.report(f"$.nodes[{i}]", f"node {node_id!r} cannot be reached from the start")
    if not well_formed:  # only meaningful once every node is well formed and every branch points at one
        return
    terminals = {n for n, i in index.items() if nodes[i].get("type") in TERMINAL_NODE_TYPES}
    reverse: dict[str, list[str]] = {}
    for src, outs in edges.items():
        for dst in outs:
            reverse.setdefault(dst, []).append(src)
    can_finish: set[str] = set()
    for terminal in terminals:
        can_finish |= _reach(terminal, reverse)
    for node_id in sorted(reachable - can_finish, key=index.__getitem__):
        found.report(
            f"$.nodes[{index[node_id]}]",
            f"node {node_id!r} is in a loop with no way out to a resolution or escalation",
        )


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


def unwaived_findings(node: dict[str, Any]) -> list[Any]:
    """The safety rules a node breaks that its author has not waived (an AI-written node can
    waive none), read when the node is walked: a flow changed in the database after its
    import is checked again before a tech is shown it."""
    from rflow_tui.safety import scan_node

    if not isinstance(node.get("text"), str):
        return []
    waived = set() if node.get("origin") == AI_ORIGIN else {w.get("rule") for w in node.get("safety_waivers") or []}
    return [finding for finding in scan_node(node["text"], answer_labels(node)) if finding.rule_id not in waived]
