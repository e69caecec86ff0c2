"""Delivering a named BPMN message to one case."""
from __future__ import annotations

from uuid import UUID

import pytest

from engine import cases, runtime
from engine.db import transaction
from engine.errors import Conflict, InvalidInput, NotFound
from tests.helpers import deploy_fixture, open_tasks, start, timeline


def _deliver(session_factory, ctx, case_id, name, payload=None):
    with session_factory() as session, transaction(session):
        return cases.deliver_message(session, ctx, case_id, name, payload, actor="integration:caf")


def test_message_delivers_payload_and_moves_on(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "message.bpmn")
    case_id = start(session_factory, ctx, "message")
    assert open_tasks(session_factory, case_id) == []
    _deliver(session_factory, ctx, case_id, "droit-rsa-ouvert", {"date_ouverture": "2026-01-10"})
    [task] = open_tasks(session_factory, case_id)
    assert task.bpmn_id == "orient"
    with session_factory() as session:
        loaded = runtime.load_case(session, ctx, case_id)
        ready = loaded.workflow.get_task_from_id(UUID(task.task_uuid))
    assert ready.data["rsa"] == {"date_ouverture": "2026-01-10"}
    assert [e.kind for e in timeline(session_factory, case_id)].count("message_delivered") == 1


def test_unknown_message_or_case_not_waiting(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "message.bpmn")
    case_id = start(session_factory, ctx, "message")
    with pytest.raises(InvalidInput, match="no message named 'inconnu'"):
        _deliver(session_factory, ctx, case_id, "inconnu")
    _deliver(session_factory, ctx, case_id, "droit-rsa-ouvert")
    with pytest.raises(Conflict, match="not waiting for message 'droit-rsa-ouvert'"):
        _deliver(session_factory, ctx, case_id, "droit-rsa-ouvert")
    with pytest.raises(NotFound):
        _deliver(session_factory, ctx, 424242, "droit-rsa-ouvert")
