"""YAML with positions: plain Python data plus the line/column of every node.

PyYAML's ``safe_load`` throws positions away, and every spec error must name
the line and column it comes from, so documents are composed into nodes and
walked here. Paths are tuples of mapping keys and list indexes, the same shape
jsonschema reports as ``error.absolute_path``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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


def load_documents(text: str, file: str) -> list[Document]:
    """Every document of ``text``; YAML syntax errors become an InputError at their mark."""
    loader = yaml.SafeLoader(text)
    try:
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
            f"YAML syntax error: {problem}", file=file, line=line, column=column
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file) from None
    finally:
        loader.dispose()


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path, doc: Document) -> Any:
    doc.values[path] = _pos(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<` merge keys as safe_load would
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line, column = _pos(key_node.start_mark)
            if not isinstance(key, str):
                raise InputError(
                    f"mapping keys must be strings, got {type(key).__name__} {key!r} (quote it)",
                    file=doc.file,
                    line=line,
                    column=column,
                    field=field_path(path),
                )
            child = (*path, key)
            if key in result:
                raise InputError(
                    f"duplicate key {key!r} (first at line {doc.keys[child][0]})",
                    file=doc.file,
                    line=line,
                    column=column,
                    field=field_path(child),
                )
            doc.keys[child] = _pos(key_node.start_mark)
            result[key] = _walk(loader, value_node, child, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def iter_paths(data: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) pair below ``data``, depth first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_paths(value, (*path, index))
