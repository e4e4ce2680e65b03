"""Reading a config file's YAML safely: ``yaml.safe_load`` that refuses a key given twice.

Every failure (no such file, a folder, not UTF-8, unreadable, not YAML, a duplicate key) becomes
a :class:`~genre_daemon.errors.ConfigError` naming the file and, where YAML knows it, the line
and column. No Python object tags: only what ``SafeLoader`` builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from genre_daemon.errors import ConfigError


def read_yaml(file: Path, label: str) -> object:
    """The file's YAML document; every failure becomes a ConfigError naming the file."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{label}: no such config file (start from config.example.yaml, "
            f"or pass the path of an existing one)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a folder, not a config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        return _load_unique(text)
    except _DuplicateKeys as dup:
        raise ConfigError("\n".join(f"{label}: {line}" for line in dup.lines)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" (from line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        what = "; ".join(part for part in (context, exc.problem or "") if part)
        raise ConfigError(f"{label}: {where}not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML: {exc}") from None


class _DuplicateKeys(Exception):
    """Keys given twice in one mapping; ``lines`` completes ``<file>: <line>``, one per key."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the
    last one silently, so a forgotten second ``inbox:`` would win unseen). Everything else is
    plain ``safe_load``: same tags, same constructors, merge keys (``<<``) allowed."""

    def construct_document(self, node: yaml.Node) -> Any:
        problems = self._duplicates(node)
        if problems:
            raise _DuplicateKeys(problems)
        return super().construct_document(node)

    def _duplicates(self, root: yaml.Node) -> list[str]:
        """One message per repeated key in any mapping of the document, dotted path first."""
        out: list[str] = []
        seen_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, str]] = [(root, "")]
        while stack:
            node, path = stack.pop()
            if id(node) in seen_nodes:  # an alias of a node already checked (or a cycle)
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node.value))))
                continue
            if not isinstance(node, yaml.MappingNode):
                continue
            first: dict[object, yaml.Node] = {}
            children: list[tuple[yaml.Node, str]] = []
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    children.append((value_node, path))
                    continue
                key = self._key(key_node)
                name = f"{path}.{key}" if path else str(key)
                if key is not None:
                    if key in first:
                        a, b = _where(first[key]), _where(key_node)
                        if a == b:  # one line ({a: 1, a: 2}): the columns tell them apart
                            a, b = _where(first[key], True), _where(key_node, True)
                        out.append(f"{name}: given twice, at {a} and at {b} (YAML would silently "
                                   f"keep only the second); remove one")
                    else:
                        first[key] = key_node
                children.append((value_node, name))
            stack.extend(reversed(children))
        return out

    def _key(self, node: yaml.Node) -> object:
        """A scalar key as ``safe_load`` would construct it (``yes`` and ``true`` are one key);
        None for a key that is not a hashable scalar (left to the normal checks)."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            value = self.construct_object(node)
            hash(value)
        except (yaml.YAMLError, TypeError):
            return None
        return value  # 1 and true are one key to safe_load's dict too


def _where(node: yaml.Node, column: bool = False) -> str:
    """``line N`` (and ``, column M``) of a node, counted from 1."""
    mark = node.start_mark
    return f"line {mark.line + 1}" + (f", column {mark.column + 1}" if column else "")


def _load_unique(text: str) -> object:
    """``yaml.safe_load(text)`` with duplicate keys refused: the same steps, with
    :class:`_UniqueKeyLoader` (a ``SafeLoader``) in place of ``SafeLoader``."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
