"""A checked flow document as a diagram: Mermaid (renders in Markdown viewers) or Graphviz DOT.

Node and label text is the author's, so it is cleaned and escaped for each syntax: a label can
never close its quotes, open markup, or carry a terminal escape into the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rflow_tui.domain.enums import NodeType
from rflow_tui.flows.format import exits
from rflow_tui.text import clean

LABEL_CHARS = 80  # a diagram box shows the start of a step; the whole text is in the JSON

# Mermaid shapes: a question is a rhombus, an instruction a box, the ends rounded.
_MERMAID_SHAPES = {
    NodeType.QUESTION: ("{", "}"),
    NodeType.CHOICE: ("{", "}"),
    NodeType.INSTRUCTION: ("[", "]"),
    NodeType.RESOLUTION: ("([", "])"),
    NodeType.ESCALATE: ("[[", "]]"),
}
_DOT_SHAPES = {
    NodeType.QUESTION: "diamond",
    NodeType.CHOICE: "diamond",
    NodeType.INSTRUCTION: "box",
    NodeType.RESOLUTION: "oval",
    NodeType.ESCALATE: "doubleoctagon",
}


def _short(text: Any) -> str:
    one_line = " ".join(clean(text, single_line=True).split())
    return one_line if len(one_line) <= LABEL_CHARS else one_line[: LABEL_CHARS - 1] + "…"


def _edges(node: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(target id, label) for each way out of a node."""
    for _answer, label, target in exits(node):
        yield str(target), label


Arrow = Callable[[str, str, str | None], str]  # (from, to, label) -> a line


def _graph(doc: dict[str, Any], box: Callable[[str, dict[str, Any], str], str], arrow: Arrow) -> list[str]:
    """One line per node, then one per branch, with plain identifiers (ids may hold
    characters neither syntax allows); ``box`` and ``arrow`` write them in one syntax."""
    names = {node["id"]: f"n{i}" for i, node in enumerate(doc["nodes"])}
    lines = [arrow("start", names[doc["start"]], None)]
    for node in doc["nodes"]:
        lines.append(box(names[node["id"]], node, f"{_short(node['id'])}: {_short(node['text'])}"))
    for node in doc["nodes"]:
        lines += [arrow(names[node["id"]], names[target], label) for target, label in _edges(node)]
    return lines


def _mermaid_text(text: str) -> str:
    # Mermaid reads #code; entities inside quoted labels: these four can never act as syntax.
    return "".join({'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;"}.get(ch, ch) for ch in text)


def to_mermaid(doc: dict[str, Any]) -> str:
    def box(name: str, node: dict[str, Any], text: str) -> str:
        opening, closing = _MERMAID_SHAPES[node["type"]]
        return f'    {name}{opening}"{_mermaid_text(text)}"{closing}'

    def arrow(source: str, target: str, label: str | None) -> str:
        via = f'-->|"{_mermaid_text(_short(label))}"|' if label is not None else "-->"
        return f"    {source} {via} {target}"

    lines = _graph(doc, box, arrow)
    lines[0] = lines[0].replace("start ", "start((Start)) ", 1)
    return "\n".join(["flowchart TD", *lines]) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(doc: dict[str, Any]) -> str:
    def box(name: str, node: dict[str, Any], text: str) -> str:
        return f'    {name} [label="{_dot_text(text)}", shape={_DOT_SHAPES[node["type"]]}];'

    def arrow(source: str, target: str, label: str | None) -> str:
        attrs = f' [label="{_dot_text(_short(label))}"]' if label is not None else ""
        return f"    {source} -> {target}{attrs};"

    title = _dot_text(_short(doc.get("title") or doc.get("slug") or "flow"))
    head = ["digraph flow {", f'    label="{title}";', "    rankdir=TB;", '    node [fontname="Helvetica"];']
    start = '    start [label="Start", shape=circle];'
    return "\n".join([*head, start, *_graph(doc, box, arrow), "}"]) + "\n"


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {"mermaid": to_mermaid, "dot": to_dot}
