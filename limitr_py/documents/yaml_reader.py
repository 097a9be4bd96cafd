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
from limitr_py.diagnostics import Diagnostic, pointer_from
from limitr_py.documents.source import MAX_DEPTH, MAX_NODES, Loc, SourceDocument, syntax_diagnostic

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same result, faster
_INT_LOADER = _BaseLoader("")  # its integer constructor keeps no state: one loader serves every scalar
_TAG = "tag:yaml.org,2002:"
_STR, _SEQ, _MAP = _TAG + "str", _TAG + "seq", _TAG + "map"
_IMPLICIT: dict[str, Any] = yaml.SafeLoader.yaml_implicit_resolvers


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader with the core schema's tag resolution made cheap: the composer asks once per node.

    Same table, same answers: a scalar whose first character starts no implicit tag is text (most keys and
    names), the others are resolved once per distinct text; the safe schema has no path resolvers, so descending
    and ascending the document has nothing to track.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.resolved: dict[str, str] = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode:
            return _SEQ if kind is yaml.SequenceNode else _MAP
        if not implicit[0] or value[:1] not in _IMPLICIT:
            return _STR
        tag = self.resolved.get(value)
        if tag is None:
            tag = self.resolved[value] = super().resolve(kind, value, implicit)
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


class _Refused(Exception):
    def __init__(self, code: str, message: str, node: yaml.Node, pointer: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.node, self.pointer, self.hint = code, message, node, pointer, hint


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
    doc = SourceDocument(tree=None, format="yaml", file=file, text=text, indexer=_index)
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
        doc.tree = builder.value(root, 0)
    except _Refused as exc:
        m = exc.node.start_mark
        problems.append(
            syntax_diagnostic(exc.code, exc.message, file, text, m.line + 1, m.column + 1, exc.pointer, exc.hint)
        )
    return doc, problems


def _index(doc: SourceDocument) -> dict[str, Loc]:
    """Every member's position, for a diagnostic: the text is composed again (only a document with a problem
    to report pays for its index; a valid one never does)."""
    builder = _Builder(doc, [], locations={})
    try:
        root = yaml.compose(doc.text, Loader=_Loader)
        if root is not None:
            builder.value(root, 0)
    except (yaml.YAMLError, _Refused):
        pass  # what was located before the problem is kept
    return builder.locations or {}


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
    """Nodes → plain values. `path` is the keys and indexes from the root to the node being built: a pointer is
    made from it only for a problem. With `locations`, each member's position is recorded too (the index)."""

    def __init__(
        self, doc: SourceDocument, problems: list[Diagnostic], locations: dict[str, Loc] | None = None
    ) -> None:
        self.doc = doc
        self.problems = problems
        self.nodes = 0
        self.path: list[str] = []
        self.locations = locations

    def refuse(self, code: str, message: str, node: yaml.Node, hint: str | None = None) -> _Refused:
        return _Refused(code, message, node, pointer_from(self.path), hint)

    def value(self, node: yaml.Node, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(
                "L110",
                "document expands to too many values (an alias bomb?)",
                node,
                "write the data out instead of repeating it through aliases",
            )
        if depth > MAX_DEPTH:
            raise self.refuse("L110", f"document is nested deeper than {MAX_DEPTH} levels", node)
        if type(node) is yaml.MappingNode:
            return self.mapping(node, depth)
        if type(node) is yaml.SequenceNode:
            return self.sequence(node, depth)
        return self.scalar(node)

    def sequence(self, node: yaml.SequenceNode, depth: int) -> list[Any]:
        if node.tag != _SEQ:
            raise self.refuse("L109", f"tag `{node.tag}` is not plain data", node, "remove the tag")
        out = []
        path = self.path
        for i, item in enumerate(node.value):
            path.append(str(i))
            if self.locations is not None:
                line, col = item.start_mark.line + 1, item.start_mark.column + 1
                self.locations[pointer_from(path)] = Loc(line, col, line, col)
            out.append(self.value(item, depth + 1))
            path.pop()
        return out

    def mapping(self, node: yaml.MappingNode, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            raise self.refuse("L109", f"tag `{node.tag}` is not plain data", node, "remove the tag")
        out: dict[str, Any] = {}
        path = self.path
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                raise self.refuse(
                    "L109", "merge keys (`<<`) are not supported", key_node, "write the merged fields out"
                )
            key = self.scalar(key_node)
            if type(key) is not str:
                key = str(key).lower() if isinstance(key, bool) else ("null" if key is None else str(key))
            path.append(key)
            if key in out:
                m = key_node.start_mark
                self.problems.append(self.doc.duplicate_key(key, m.line + 1, m.column + 1, pointer_from(path), "YAML"))
            if self.locations is not None:
                k, v = key_node.start_mark, value_node.start_mark
                self.locations[pointer_from(path)] = Loc(k.line + 1, k.column + 1, v.line + 1, v.column + 1)
            out[key] = self.value(value_node, depth + 1)
            path.pop()
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if type(node) is not yaml.ScalarNode:
            raise self.refuse("L109", "keys must be plain text", node)
        tag, text = node.tag, node.value
        if tag == _STR or tag == _TAG + "timestamp":
            return text
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() in ("true", "yes", "on", "y")
        if tag == _TAG + "int":
            if len(text) > bounds.MAX_NUMBER_TEXT:
                raise self.refuse(
                    "L204",
                    f"a number of {len(text)} characters is out of range",
                    node,
                    "keep numbers below 10^30 with at most 30 digits after the point",
                )
            return _INT_LOADER.construct_yaml_int(node)
        if tag == _TAG + "float":
            cleaned = text.replace("_", "")
            if cleaned.lower().lstrip("+-") in (".inf", ".nan"):
                raise self.refuse("L109", f"`{text}` is not a finite number", node, "write a finite number")
            try:
                return Decimal(cleaned)
            except InvalidOperation:
                raise self.refuse("L109", f"`{text}` is not a number", node) from None
        raise self.refuse("L109", f"tag `{tag}` is not plain data", node, "remove the tag")
