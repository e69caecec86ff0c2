"""Parsed specs of deployed pathway versions, kept in memory per process.

A version is immutable, so its spec is parsed once from the stored XML (a
couple of milliseconds) and then shared, read-only, by every case and thread.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.bpmn_parsing import parse_pathway
from engine.models import PathwayVersion


@dataclass(frozen=True)
class LoadedPathway:
    version_id: int
    key: str
    spec: Any
    subprocess_specs: dict
    meta: dict
    forms: dict


class SpecCache:
    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._items: OrderedDict[int, LoadedPathway] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, version_id: int) -> LoadedPathway:
        with self._lock:
            loaded = self._items.get(version_id)
            if loaded is not None:
                self._items.move_to_end(version_id)
                return loaded
        loaded = _load(session, session.get(PathwayVersion, version_id))
        with self._lock:
            self._items[version_id] = loaded
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return loaded


def library_of(session: Session, version: PathwayVersion) -> dict[str, bytes]:
    """BPMN of every pathway this version calls, transitively, as bound at deploy."""
    library: dict[str, bytes] = {}
    pending = dict(version.dependencies)
    while pending:
        key, version_id = pending.popitem()
        if key in library:
            continue
        dependency = session.get(PathwayVersion, version_id)
        library[key] = dependency.bpmn_xml.encode("utf-8")
        pending.update({k: v for k, v in dependency.dependencies.items() if k not in library})
    return library


def _load(session: Session, version: PathwayVersion) -> LoadedPathway:
    parsed = parse_pathway(
        version.bpmn_xml.encode("utf-8"),
        [dmn.encode("utf-8") for dmn in version.dmn_xml],
        library=library_of(session, version),
        validate=False,
    )
    return LoadedPathway(version.id, version.key, parsed.spec, parsed.subprocess_specs, version.meta, version.forms)
