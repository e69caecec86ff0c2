"""Listeners to the rows a command writes, for modules that follow the engine's cases.

The engine writes a command's new ``human_task`` and ``case_event`` rows with
Core statements (:mod:`engine.case_writes`), so they never pass through the
session's ``before_flush``.  A module that reacts to them (engine.prescriptions
follows its lifecycle cases) registers here.  A listener runs in the command's
transaction just before the rows are written, gets their values as dicts (the
columns of each table), may change them, may add rows of its own to the
session and may refuse the command by raising.

This module imports nothing of the engine, so a module imported by
``engine.models`` can register at import time.
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

RowsListener = Callable[[Session, list[dict], list[dict]], None]

_listeners: list[RowsListener] = []


def before_rows_written(listener: RowsListener) -> RowsListener:
    """Register ``listener(session, tasks, events)``; usable as a decorator."""
    _listeners.append(listener)
    return listener


def notify(session: Session, tasks: list[dict], events: list[dict]) -> None:
    for listener in _listeners:
        listener(session, tasks, events)
