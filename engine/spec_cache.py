"""Parsed specs of deployed pathway versions, kept in memory per process.

A version is immutable, so its spec is parsed once from the stored XML (a
couple of milliseconds) and then shared, read-only, by every case and thread.
Alongside the spec we keep each process's deploy metadata (user tasks,
lanes, hand-offs), for the version and for the pathways it calls.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity

from engine.bpmn_parsing import LibraryEntry, parse_pathway
from engine.models import PathwayVersion


@dataclass(frozen=True)
class LoadedPathway:
    version_id: int
    key: str
    version: int
    spec: Any
    subprocess_specs: dict
    meta: dict
    forms: dict
    process_meta: dict  # process or subprocess id -> the deploy metadata of the file defining it

    def meta_for(self, task) -> dict:
        """Deploy metadata of the file where ``task`` is drawn (this pathway or a called one)."""
        return self.process_meta.get(task.workflow.spec.name, self.meta)

    def task_info(self, task) -> dict:
        return self.meta_for(task).get("user_tasks", {}).get(task.task_spec.bpmn_id, {})

    def lane_info(self, task) -> dict:
        lane = task.task_spec.lane
        return self.meta_for(task).get("lanes", {}).get(lane, {}) if lane else {}


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

    def peek(self, version_id: int) -> LoadedPathway | None:
        """The version if this process has it parsed already, without parsing it (nor marking it used)."""
        with self._lock:
            return self._items.get(version_id)


def dependencies_of(session: Session, version: PathwayVersion) -> list[PathwayVersion]:
    """Every pathway version this version calls, transitively, as bound at deploy."""
    found: dict[str, PathwayVersion] = {}
    pending = dict(version.dependencies)
    while pending:
        key, version_id = pending.popitem()
        if key in found:
            continue
        dependency = session.get(PathwayVersion, version_id)
        found[key] = dependency
        pending.update({k: v for k, v in dependency.dependencies.items() if k not in found})
    return list(found.values())


def library_entry(version: PathwayVersion) -> LibraryEntry:
    """What another pathway needs to call this one: its BPMN and its decision tables."""
    return version.bpmn_xml.encode("utf-8"), [d.encode("utf-8") for d in version.dmn_xml]


def _load(session: Session, version: PathwayVersion) -> LoadedPathway:
    dependencies = dependencies_of(session, version)
    parsed = parse_pathway(
        version.bpmn_xml.encode("utf-8"),
        [dmn.encode("utf-8") for dmn in version.dmn_xml],
        library={d.key: library_entry(d) for d in dependencies},
        validate=False,
    )
    process_meta = {}
    for source in [*dependencies, version]:
        for process_id in source.meta.get("processes", [source.key]):
            process_meta[process_id] = source.meta
    forms = {}
    for source in [*dependencies, version]:  # a called pathway's tasks keep their own forms
        forms.update(source.forms)
    loaded = LoadedPathway(version.id, version.key, version.version, parsed.spec, parsed.subprocess_specs, version.meta,
                           forms, process_meta)
    _connect_hand_offs(loaded)
    return loaded


def _connect_hand_offs(loaded: LoadedPathway) -> None:
    """Give a hand-off's called process the receiving and sending structure types.

    Spiff copies the call activity's data into the called process when the
    activity is updated; this listener runs just before, on that update.
    """
    for spec in [loaded.spec, *loaded.subprocess_specs.values()]:
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, CallActivity):
                task_spec.update_event.connect(_put_hand_off_data, loaded)


def _put_hand_off_data(workflow, task, loaded: LoadedPathway) -> None:
    receiving = loaded.meta_for(task).get("hand_offs", {}).get(task.task_spec.bpmn_id)
    if not receiving:
        return
    lane = loaded.lane_info(task)
    variable = lane.get("structure_type_variable")
    sending = (task.data.get(variable) if variable else None) or "|".join(lane.get("structure_types") or [])
    task.data["receiving_structure_type"] = receiving
    task.data["sending_structure_type"] = sending or task.task_spec.lane
