"""YAML with positions: plain Python data plus the line/column of every node.

PyYAML's ``safe_load`` throws positions away, and every spec error must name
the line and column it comes from, so documents are composed into nodes and
walked here. Paths are tuples of mapping keys and list indexes, the same shape
jsonschema reports as ``error.absolute_path``.

This is tokenslo's one YAML reader for every input file (SLOs, OpenSLO, lab config, game
days, experiments, credentials, targets): ``read_document(path)`` for a file,
``parse_document(text, file)`` for text, ``load_documents(text, file)`` for multi-document
streams. It refuses anchors and aliases, tags outside the YAML core schema and nesting deeper
than ``MAX_DEPTH``, on the event stream before any node is built, so hostile files cost
nothing; each refusal is a one-line ``InputError`` (exit 2) at file:line:column.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from tokenslo.errors import InputError

Path = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document: its data and 1-based positions of values and keys by path."""

    file: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """Position of ``path``'s value (or its key); falls back to the nearest ancestor."""
        path = tuple(path)
        while True:
            if key and path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def error(self, message: str, path: Sequence[str | int], *, key: bool = False) -> InputError:
        line, column = self.where(path, key=key)
        return InputError(message, file=self.file, line=line, column=column, field=field_path(path))


def field_path(path: Sequence[str | int]) -> str | None:
    """``('slos', 2, 'sli', 'events')`` → ``slos[2].sli.events``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences accepted; real tokenslo files stay below 10."""

_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
"""Explicit tags a file may carry: the YAML core schema's. Everything else (``!!python/…``,
``!!binary``, ``!!set``, local ``!tags``) is refused: nothing would construct it, and a tag that
is silently ignored hides what the author meant."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses aliases, anchors, non-core tags and deep nesting.

    The checks run on the event stream while nodes are composed, before anything is
    constructed or copied, so a billion-laughs file or a 5,000-deep one costs one pass over
    its events, and the composer's recursion never gets near Python's limit.
    """

    def __init__(self, stream: str, file: str):
        super().__init__(stream)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise self._refuse(f"alias *{event.anchor} is not allowed (repeat the value)", event)
        if event.anchor is not None:
            raise self._refuse(f"anchor &{event.anchor} is not allowed", event)
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in ALLOWED_TAGS:
            raise self._refuse(f"tag {tag.replace(_CORE, '!!')} is not allowed", event)
        nests = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
        if nests:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self._refuse(f"nested deeper than {MAX_DEPTH} levels", event)
        try:
            return super().compose_node(parent, index)
        finally:
            if nests:
                self.depth -= 1

    def fetch_flow_collection_start(self, token_class: type) -> None:
        """Flow nesting (``[[[[…``) is refused by the scanner already: it keeps one possible
        simple key per flow level and rescans them all for every token, so thousands of
        levels would cost quadratic time before the composer saw the first node."""
        mark = self.get_mark()
        super().fetch_flow_collection_start(token_class)
        if self.flow_level > MAX_DEPTH:
            raise self._refuse_at(f"nested deeper than {MAX_DEPTH} levels", mark)

    def _refuse(self, message: str, event: yaml.Event) -> InputError:
        mark = event.start_mark
        if not isinstance(mark, yaml.Mark):  # the pure-Python parser marks every event
            return InputError(message, file=self.file)
        return self._refuse_at(message, mark)

    def _refuse_at(self, message: str, mark: yaml.Mark) -> InputError:
        line, column = _pos(mark)
        return InputError(message, file=self.file, line=line, column=column)


def load_documents(text: str, file: str) -> list[Document]:
    """Every document of ``text``, refusing anchors/aliases, non-core tags and nesting deeper
    than ``MAX_DEPTH``; every problem is an ``InputError`` at its file:line:column."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text, file)
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            doc = Document(file=file, data=None)
            doc.data = _walk(loader, node, (), doc)
            docs.append(doc)
        return docs
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _pos(mark) if mark else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            f"invalid YAML: {_one_line(problem)}", file=file, line=line, column=column
        ) from None
    except yaml.reader.ReaderError as exc:
        line, column = _offset_position(text, exc.position)
        code = exc.character
        shown = f"#x{code:04x}" if isinstance(code, int) else repr(code)
        raise InputError(
            f"invalid YAML: character {shown} is not allowed",
            file=file,
            line=line,
            column=column,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {_one_line(str(exc))}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_document(text: str, file: str) -> Document:
    """Exactly one document of ``text`` (an empty text gives ``data=None``)."""
    docs = load_documents(text, file)
    if len(docs) > 1:
        raise InputError(
            "expected one YAML document, found several (remove the --- separators)",
            file=file,
            line=docs[1].where(())[0],
        )
    return docs[0] if docs else Document(file=file, data=None)


def read_document(path: str | os.PathLike[str]) -> Document:
    """The one YAML document in the file at ``path``: the entry point for every YAML input.

    Unreadable or non-UTF-8 files, syntax errors, anchors/aliases, non-core tags, too deep
    nesting and several documents are each an ``InputError`` (exit 2) naming the file and line.
    """
    return parse_document(read_text(path), str(path))


def read_text(path: str | os.PathLike[str]) -> str:
    """A file's UTF-8 text; I/O and decoding problems are an ``InputError`` naming the file."""
    try:
        return FilePath(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: Path, doc: Document) -> Any:
    """A scalar's value; a core tag that does not fit its text (``!!int x``, a 13th month)
    is bad input at the scalar, not a traceback."""
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, TypeError, IndexError, KeyError, yaml.YAMLError) as exc:
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise _error_at(
            doc,
            node,
            path,
            f"invalid value {node.value!r} for {node.tag.replace(_CORE, '!!')}: "
            f"{_one_line(str(problem))}",
        ) from None


def _error_at(doc: Document, node: yaml.Node, path: Path, message: str) -> InputError:
    """Bad input at ``node`` itself: while walking, positions are known from the node before
    ``Document.error`` could find them by path."""
    line, column = _pos(node.start_mark)
    return InputError(message, file=doc.file, line=line, column=column, field=field_path(path))


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path, doc: Document) -> Any:
    doc.values[path] = _pos(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<` merge keys as safe_load would
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _error_at(
                    doc,
                    key_node,
                    path,
                    "mapping keys must be strings, got a "
                    + ("mapping" if isinstance(key_node, yaml.MappingNode) else "list"),
                )
            key = _construct(loader, key_node, path, doc)
            if not isinstance(key, str):
                raise _error_at(
                    doc,
                    key_node,
                    path,
                    f"mapping keys must be strings, got {type(key).__name__} {key!r} (quote it)",
                )
            child = (*path, key)
            if key in result:
                first = doc.keys[child][0]
                raise _error_at(
                    doc, key_node, child, f"duplicate key {key!r} (first at line {first})"
                )
            doc.keys[child] = _pos(key_node.start_mark)
            result[key] = _walk(loader, value_node, child, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    return _construct(loader, node, path, doc)


def iter_paths(data: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) pair below ``data``, depth first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_paths(value, (*path, index))
