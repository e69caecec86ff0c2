"""Timers over simulated time: boundary (interrupting or not), intermediate, date, cycle, catch-up."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine import simulation
from engine.models import Case, Timer
from engine.timers import fire_due_timers
from tests.conftest import SIMULATION_START
from tests.helpers import complete, deploy_fixture, open_tasks, start, timeline


def _case(session_factory, case_id):
    with session_factory() as session:
        return session.get(Case, case_id)


def _kinds(session_factory, case_id, kind):
    return [e for e in timeline(session_factory, case_id) if e.kind == kind]


def test_non_interrupting_boundary_timer_adds_a_task_and_keeps_the_first(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    assert _case(session_factory, case_id).next_timer_at == SIMULATION_START + timedelta(days=15)

    result = simulation.advance(session_factory, ctx, "P14D")
    assert result.firings == 0 and len(open_tasks(session_factory, case_id)) == 1

    result = simulation.advance(session_factory, ctx, "P1D")
    assert result.firings == 1
    names = sorted(t.bpmn_id for t in open_tasks(session_factory, case_id))
    assert names == ["first", "remind"]
    [fired] = _kinds(session_factory, case_id, "timer_fired")
    assert fired.bpmn_id == "late"
    remind = next(t for t in open_tasks(session_factory, case_id) if t.bpmn_id == "remind")
    assert remind.created_at == SIMULATION_START + timedelta(days=15, microseconds=1)


def test_intermediate_cycle_interrupting_and_date_timers(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "timers.bpmn")
    appointment = (SIMULATION_START + timedelta(days=40)).isoformat()
    case_id = start(session_factory, ctx, "timers", {"reminders": 0, "appointment_at": appointment})
    assert open_tasks(session_factory, case_id) == []  # waiting one day

    simulation.advance(session_factory, ctx, "P1D")
    [work] = open_tasks(session_factory, case_id)
    assert work.bpmn_id == "work"
    assert work.due_at == SIMULATION_START + timedelta(days=1, microseconds=1) + timedelta(days=7)

    simulation.advance(session_factory, ctx, "P22D")  # three weekly reminders
    assert len(_kinds(session_factory, case_id, "timer_fired")) == 1 + 3
    complete(session_factory, ctx, work.id, {"note": "fait"})
    with session_factory() as session:
        waiting = session.scalars(select(Timer).where(Timer.case_id == case_id, Timer.state == "waiting")).all()
        cycle = session.scalar(select(Timer).where(Timer.case_id == case_id, Timer.bpmn_id == "weekly"))
    assert [t.bpmn_id for t in waiting] == ["appointment"]
    assert waiting[0].kind == "date" and waiting[0].due_at.isoformat() == appointment
    assert (cycle.state, cycle.fired_count) == ("cancelled", 3)

    simulation.advance(session_factory, ctx, "P20D")
    assert _case(session_factory, case_id).status == "closed"


def test_interrupting_boundary_timer_cancels_the_task(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "timers.bpmn")
    far = (SIMULATION_START + timedelta(days=400)).isoformat()
    case_id = start(session_factory, ctx, "timers", {"reminders": 0, "appointment_at": far})
    simulation.advance(session_factory, ctx, "P1D")
    [work] = open_tasks(session_factory, case_id)
    simulation.advance(session_factory, ctx, "P31D")
    assert open_tasks(session_factory, case_id) == []
    case = _case(session_factory, case_id)
    assert case.status == "closed"  # through the "Expiré" end event
    kinds = [e.kind for e in timeline(session_factory, case_id)]
    assert "task_cancelled" in kinds


def test_timers_missed_during_downtime_fire_once_on_restart(session_factory, ctx):
    """Everything down for ten days: each overdue timer fires once, cycles resume from now."""
    deploy_fixture(session_factory, ctx, "timers.bpmn")
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    far = (SIMULATION_START + timedelta(days=400)).isoformat()
    timers_case = start(session_factory, ctx, "timers", {"reminders": 0, "appointment_at": far})
    simple_case = start(session_factory, ctx, "simple")
    fire_due_timers(session_factory, ctx, SIMULATION_START + timedelta(days=1, seconds=1))
    assert len(_kinds(session_factory, timers_case, "timer_fired")) == 1

    # Nobody fires anything for ten days past the 15-day boundary and three weekly cycles.
    restart = SIMULATION_START + timedelta(days=25)
    assert fire_due_timers(session_factory, ctx, restart) == 2
    assert fire_due_timers(session_factory, ctx, restart) == 0  # nothing left to fire twice
    fired = _kinds(session_factory, timers_case, "timer_fired")
    assert [e.bpmn_id for e in fired] == ["wait", "weekly"]  # the missed weekly cycle fires once
    assert [e.bpmn_id for e in _kinds(session_factory, simple_case, "timer_fired")] == ["late"]
    with session_factory() as session:
        cycle = session.scalar(select(Timer).where(Timer.case_id == timers_case, Timer.bpmn_id == "weekly"))
    assert cycle.due_at == restart + timedelta(days=7)  # then it goes on from now
