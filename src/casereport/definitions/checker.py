"""What the parsers of single keys (reading keys, ``checks:``, ``moved:``, ``notify:``) use of
the loader's checker (``load._Checker``): one protocol, so each parser is written apart
from the loader and they all see the same methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from casereport.definitions.models import SourceString
from casereport.definitions.yamlnodes import MapNode, Node, ScalarNode


class NodeChecker(Protocol):
    """Reports problems at a node's position, and reads mappings and strings with checks."""

    suggested: set[str]  # keys a "did you mean" of the last mapping proposed

    def at(self, node: Node, message: str, detail: str = "") -> None: ...

    def mapping(
        self, node: MapNode, allowed: Sequence[str], where: str, unique_what: str = "key"
    ) -> dict[str, tuple[ScalarNode, Node]]: ...

    def string(
        self, node: Node, what: str, *, allow_empty: bool = False
    ) -> SourceString | None: ...
