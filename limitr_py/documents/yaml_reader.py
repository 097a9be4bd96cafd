"""YAML reader on PyYAML's safe composer: plain data only, every node located.

Only the core schema's data tags are accepted (map, seq, str, int, float, bool, null; timestamps stay text).
Anchors and aliases are expanded with a budget, so an alias bomb is refused instead of eating memory.
Floats are read from their source text into Decimal, never through binary floating point.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from limitr_py import bounds
from limitr_py.diagnostics import Diagnostic, pointer_join
from limitr_py.documents.source import MAX_DEPTH, MAX_NODES, Loc, SourceDocument, syntax_diagnostic

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same result, faster
_INT_LOADER = _Loader("")  # its integer constructor keeps no state: one loader serves every scalar
_TAG = "tag:yaml.org,2002:"


class _Refused(Exception):
    def __init__(self, code: str, message: str, node: yaml.Node, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.node, self.hint = code, message, node, hint
        self.pointer: str | None = None


# libyaml's composer recurses on the C stack and crashes the process somewhere past 10,000 levels. Flow nesting
# is at most the number of `[`/`{`, block nesting at most the longest line, so a document under this bound is
# composed directly; one over it first has its depth measured on the parser's event stream (flat, linear).
_COMPOSE_SAFELY = 2_000
_LONG_LINE = re.compile(f"^[^\n]{{{_COMPOSE_SAFELY // 2}}}", re.MULTILINE)  # tried at line starts only: linear


def _too_deep(text: str) -> Any:
    """The mark (libyaml's or PyYAML's) where nesting first passes MAX_DEPTH, or None; cheap unless the
    document could nest that deep at all."""
    if text.count("[") + text.count("{") < _COMPOSE_SAFELY // 2 and not _LONG_LINE.search(text):
        return None
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def read_yaml(text: str, file: str) -> tuple[SourceDocument, list[Diagnostic]]:
    doc = SourceDocument(tree=None, format="yaml", file=file, text=text)
    try:
        deep = _too_deep(text)
        if deep is not None:
            return doc, [
                syntax_diagnostic(
                    "L110",
                    f"document is nested deeper than {MAX_DEPTH} levels",
                    file,
                    text,
                    deep.line + 1,
                    deep.column + 1,
                )
            ]
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        return doc, [syntax_diagnostic("L101", f"invalid YAML: {problem}", file, text, line, col)]
    except yaml.YAMLError as exc:
        return doc, [syntax_diagnostic("L101", f"invalid YAML: {str(exc).splitlines()[0]}", file, text, 1, 1)]
    except RecursionError:
        return doc, [syntax_diagnostic("L110", "document is nested too deeply", file, text, 1, 1)]
    problems: list[Diagnostic] = []
    if root is None:
        doc.tree = {}
        return doc, problems
    expanded = _expanded_size(root) if "*" in text else None  # without an alias nothing can expand
    if expanded is not None:
        m = expanded.start_mark
        return doc, [
            syntax_diagnostic(
                "L110",
                "document expands to too many values (an alias bomb?)",
                file,
                text,
                m.line + 1,
                m.column + 1,
                "",
                "write the data out instead of repeating it through aliases",
            )
        ]
    builder = _Builder(doc, problems)
    try:
        doc.tree = builder.value(root, "", 0)
    except _Refused as exc:
        m = exc.node.start_mark
        problems.append(
            syntax_diagnostic(exc.code, exc.message, file, text, m.line + 1, m.column + 1, exc.pointer or "", exc.hint)
        )
    return doc, problems


def _expanded_size(root: yaml.Node) -> yaml.Node | None:
    """The node whose expansion takes the document past MAX_NODES values (or that contains itself), else None.

    An alias is the same node object as its anchor, so sizes are memoized per node: the check costs the number
    of distinct nodes (what was parsed), not the number of expanded ones (which an alias bomb makes exponential).
    Iterative post-order, so no input can make it recurse.
    """
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        if children_done:
            open_nodes.discard(id(node))
            total = 1 + sum(size[id(c)] for c in children)
            if total > MAX_NODES:
                return node
            size[id(node)] = total
            continue
        if id(node) in open_nodes:
            return node  # a recursive alias: the node contains itself
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return None


class _Builder:
    def __init__(self, doc: SourceDocument, problems: list[Diagnostic]) -> None:
        self.doc = doc
        self.problems = problems
        self.nodes = 0

    def value(self, node: yaml.Node, pointer: str, depth: int) -> Any:
        try:
            return self._value(node, pointer, depth)
        except _Refused as exc:
            if exc.pointer is None:
                exc.pointer = pointer
            raise

    def _value(self, node: yaml.Node, pointer: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(
                "L110",
                "document expands to too many values (an alias bomb?)",
                node,
                "write the data out instead of repeating it through aliases",
            )
        if depth > MAX_DEPTH:
            raise _Refused("L110", f"document is nested deeper than {MAX_DEPTH} levels", node)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, pointer, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                raise _Refused("L109", f"tag `{node.tag}` is not plain data", node, "remove the tag")
            out = []
            for i, item in enumerate(node.value):
                p = pointer_join(pointer, i)
                line, col = item.start_mark.line + 1, item.start_mark.column + 1
                self.doc.locations[p] = Loc(line, col, line, col)
                out.append(self.value(item, p, depth + 1))
            return out
        return self.scalar(node)

    def mapping(self, node: yaml.MappingNode, pointer: str, depth: int) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            raise _Refused("L109", f"tag `{node.tag}` is not plain data", node, "remove the tag")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                raise _Refused("L109", "merge keys (`<<`) are not supported", key_node, "write the merged fields out")
            key = self.scalar(key_node)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else ("null" if key is None else str(key))
            p = pointer_join(pointer, key)
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key in out:
                self.problems.append(self.doc.duplicate_key(key, line, col, p, "YAML"))
            self.doc.locations[p] = Loc(line, col, value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            out[key] = self.value(value_node, p, depth + 1)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise _Refused("L109", "keys must be plain text", node)
        tag, text = node.tag, node.value
        if tag == _TAG + "str" or tag == _TAG + "timestamp":
            return text
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() in ("true", "yes", "on", "y")
        if tag == _TAG + "int":
            if len(text) > bounds.MAX_NUMBER_TEXT:
                raise _Refused(
                    "L204",
                    f"a number of {len(text)} characters is out of range",
                    node,
                    "keep numbers below 10^30 with at most 30 digits after the point",
                )
            return _INT_LOADER.construct_yaml_int(node)
        if tag == _TAG + "float":
            cleaned = text.replace("_", "")
            if cleaned.lower().lstrip("+-") in (".inf", ".nan"):
                raise _Refused("L109", f"`{text}` is not a finite number", node, "write a finite number")
            try:
                return Decimal(cleaned)
            except InvalidOperation:
                raise _Refused("L109", f"`{text}` is not a number", node) from None
        raise _Refused("L109", f"tag `{tag}` is not plain data", node, "remove the tag")
