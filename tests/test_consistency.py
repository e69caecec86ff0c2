"""`check_database` and `spie check`: a clean database passes, each kind of corruption is found (both databases)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.cli import main
from engine import cases, consistency, pathways, simulation
from engine.consistency import RULES, check_database
from engine.db import transaction
from engine.directory import User
from engine.models import Case, CaseEvent, HumanTask, Timer
from engine.people import CareTeamMember
from tests.conftest import FIXTURES, SIMULATION_START, fixture_bytes
from tests.spie_support import (
    EVRY,
    complete,
    open_rows,
    seed_and_deploy,
    spie_context,
    staff,
    start_for,
    structure,
)

INES = {"first_name": "Inès", "last_name": "Martin", "birth_date": "2001-01-02", "commune_insee": EVRY}
KEVIN = {"first_name": "Kévin", "last_name": "Lambert", "birth_date": "1987-12-01", "commune_insee": EVRY}
NOTE_FORM = json.loads((FIXTURES / "forms" / "note.json").read_text(encoding="utf-8"))


@pytest.fixture
def ctx():
    return spie_context()


@dataclass
class World:
    mission_locale: int  # active, a designation escalated to the supervisor, then done: timers fired and waiting
    job_seeker: int  # active, one designation completed
    loop: int  # closed after two weekly passes, with a person whose care team was ended at the close
    timers: int  # active, no person: a cycle timer fired twice, an interrupting deadline waiting


def build_world(session_factory, ctx) -> World:
    """A few real steps on the real pathways, plus two test pathways for a closed case and a cycle timer."""
    seed_and_deploy(session_factory, ctx)
    with session_factory() as session, transaction(session):
        pathways.deploy(session, ctx, fixture_bytes("engine/loop.bpmn"), deployed_by="designer")
        pathways.deploy(session, ctx, fixture_bytes("engine/timers.bpmn"), forms={"note": NOTE_FORM},
                        deployed_by="designer")
    ml, cd, ft = (structure(session_factory, kind, EVRY) for kind in ("mission-locale", "departement",
                                                                      "france-travail"))
    ml_referent, cd_referent, counsellor = (staff(session_factory, s.id) for s in (ml, cd, ft))

    mission_locale = start_for(session_factory, ctx, "jeune-sortant-mission-locale", INES, ml_referent)
    complete(session_factory, ctx, open_rows(session_factory, mission_locale)["preparer-sortie"], ml_referent,
             {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution", "synthese": "RSA à ouvrir"})
    job_seeker = start_for(session_factory, ctx, "demandeur-emploi-freins", KEVIN, counsellor)
    complete(session_factory, ctx, open_rows(session_factory, job_seeker)["designer-conseiller"], counsellor,
             {"referent_email": counsellor.email, "date_designation": "2026-01-05"})
    with session_factory() as session, transaction(session):
        person = cases.find_or_create_person(session, ctx, {**KEVIN, "first_name": "Kevin-Loop"})
        loop = cases.start_case(session, ctx, "weekly_loop", actor=ml_referent.email, data={"target": 2},
                                person=person, referent=session.get(User, ml_referent.id)).id
        timers = cases.start_case(session, ctx, "timers", actor="designer", data={
            "reminders": 0, "appointment_at": (SIMULATION_START + timedelta(days=90)).isoformat()}).id

    simulation.advance(session_factory, ctx, "P16D")
    complete(session_factory, ctx, open_rows(session_factory, mission_locale)["designer-referent"], cd_referent,
             {"referent_email": cd_referent.email, "date_designation": "2026-01-21"})
    world = World(mission_locale, job_seeker, loop, timers)
    with session_factory() as session:
        statuses = {c.id: c.status for c in session.scalars(select(Case))}
        fired = {t.bpmn_id: t.fired_count for t in session.scalars(select(Timer).where(Timer.case_id == timers))}
    assert statuses == {mission_locale: "active", job_seeker: "active", loop: "closed", timers: "active"}
    assert fired["weekly"] == 2  # a cycle timer: one row, two firings
    return world


def check(session_factory, ctx, **kwargs):
    with session_factory() as session:
        return check_database(session, ctx, **kwargs)


def test_a_clean_database_passes_in_any_batch_size(session_factory, ctx):
    world = build_world(session_factory, ctx)
    for batch in (500, 3, 1):
        report = check(session_factory, ctx, batch=batch)
        assert report.ok, report.lines()
        assert report.cases_checked == 4 and report.problems == []
        assert report.lines() == ["4 case(s) checked: consistent"]
    # Inside the caller's own transaction too (nothing is rolled back under it).
    with session_factory() as session, transaction(session):
        session.get(Case, world.loop)
        assert check_database(session, ctx, batch=2).ok
        assert session.in_transaction()


def test_an_empty_database_passes(session_factory, ctx):
    report = check(session_factory, ctx)
    assert report.ok and report.cases_checked == 0


def _one(session, model, *where):
    return session.scalars(select(model).where(*where).order_by(model.id)).first()


def delete_open_task(session, world):
    session.delete(_one(session, HumanTask, HumanTask.case_id == world.mission_locale,
                        HumanTask.state.in_(("open", "claimed"))))
    return world.mission_locale, {"task-missing", "task-created"}  # and its task_created event names no row


def delete_completed_task(session, world):
    session.delete(_one(session, HumanTask, HumanTask.case_id == world.job_seeker, HumanTask.state == "completed"))
    return world.job_seeker, {"task-completed", "task-created"}


def add_orphan_task(session, world):
    session.add(HumanTask(case_id=world.job_seeker, task_uuid=str(uuid4()), bpmn_id="fantome", name="Fantôme",
                          state="open", created_at=SIMULATION_START))
    return world.job_seeker, {"task-orphan", "task-created"}  # a row nobody created


def claim_without_assignee(session, world):
    _one(session, HumanTask, HumanTask.case_id == world.job_seeker, HumanTask.state == "open").state = "claimed"
    return world.job_seeker, {"task-assignee"}


def move_timer_due(session, world):
    timer = _one(session, Timer, Timer.case_id == world.timers, Timer.state == "waiting", Timer.bpmn_id == "deadline")
    timer.due_at += timedelta(days=1)
    return world.timers, {"timer-due"}


def delete_waiting_timer(session, world):
    session.delete(_one(session, Timer, Timer.case_id == world.timers, Timer.state == "waiting",
                        Timer.bpmn_id == "deadline"))
    return world.timers, {"timer-missing"}


def add_orphan_timer(session, world):
    later = session.get(Case, world.mission_locale).next_timer_at + timedelta(days=1)
    session.add(Timer(case_id=world.mission_locale, task_uuid=str(uuid4()), bpmn_id="fantome", kind="duration",
                      due_at=later, state="waiting"))
    return world.mission_locale, {"timer-orphan"}


def wrong_next_timer(session, world):
    case = session.get(Case, world.mission_locale)
    case.next_timer_at = case.next_timer_at + timedelta(hours=1)
    return world.mission_locale, {"next-timer"}


def forget_next_timer(session, world):
    session.get(Case, world.timers).next_timer_at = None
    return world.timers, {"next-timer"}


def end_last_referent(session, world):
    [member] = session.scalars(select(CareTeamMember).where(CareTeamMember.case_id == world.job_seeker,
                                                            CareTeamMember.ended_at.is_(None))).all()
    member.ended_at, member.end_reason = SIMULATION_START + timedelta(days=16), "autre"
    return world.job_seeker, {"no-referent"}


def duplicate_task_completed(session, world):
    event = _one(session, CaseEvent, CaseEvent.case_id == world.mission_locale, CaseEvent.kind == "task_completed")
    session.add(CaseEvent(case_id=event.case_id, at=event.at, actor=event.actor, kind=event.kind,
                          bpmn_id=event.bpmn_id, task_uuid=event.task_uuid, summary=dict(event.summary)))
    return world.mission_locale, {"task-completed"}


def duplicate_case_started(session, world):
    event = _one(session, CaseEvent, CaseEvent.case_id == world.job_seeker, CaseEvent.kind == "case_started")
    session.add(CaseEvent(case_id=event.case_id, at=event.at, actor=event.actor, kind=event.kind,
                          summary=dict(event.summary)))
    return world.job_seeker, {"case-started"}


def lose_task_created(session, world):
    session.delete(_one(session, CaseEvent, CaseEvent.case_id == world.mission_locale,
                        CaseEvent.kind == "task_created"))
    return world.mission_locale, {"task-created"}


def double_task_cancelled(session, world):
    session.add(CaseEvent(case_id=world.job_seeker, at=SIMULATION_START, actor="x", kind="task_cancelled",
                          bpmn_id="designer-conseiller", summary={}))
    return world.job_seeker, {"task-cancelled"}


def lose_timer_fired(session, world):
    session.delete(_one(session, CaseEvent, CaseEvent.case_id == world.timers, CaseEvent.kind == "timer_fired"))
    return world.timers, {"timer-fired"}


def corrupt_state(session, world):
    case = session.get(Case, world.mission_locale)
    case.state = case.state[: len(case.state) // 2]
    return world.mission_locale, {"state-loads"}


def state_without_tasks(session, world):
    case = session.get(Case, world.job_seeker)
    state = json.loads(case.state)
    state["tasks"] = {}
    case.state = json.dumps(state)
    return world.job_seeker, {"state-loads"}


def detach_ready_task(session, world):
    """The READY task stays in the state but its parent no longer lists it: SpiffWorkflow never reaches it."""
    row = _one(session, HumanTask, HumanTask.case_id == world.job_seeker, HumanTask.state == "open")
    case = session.get(Case, world.job_seeker)
    state = json.loads(case.state)
    parent = state["tasks"][state["tasks"][row.task_uuid]["parent"]]
    parent["children"].remove(row.task_uuid)
    case.state = json.dumps(state)
    return world.job_seeker, {"state-reachable"}


def reopen_closed_case_member(session, world):
    member = _one(session, CareTeamMember, CareTeamMember.case_id == world.loop)
    member.ended_at = member.end_reason = None
    return world.loop, {"closed-active-member"}


def reactivate_closed_case(session, world):
    session.get(Case, world.loop).status = "active"
    return world.loop, {"status", "case-closed", "no-referent"}  # its care team ended at the close


def close_active_case(session, world):
    case = session.get(Case, world.timers)
    case.status, case.ended_at = "closed", SIMULATION_START + timedelta(days=16)
    # a closed case with a waiting timer and a workflow still running, and no case_closed event
    return world.timers, {"status", "case-closed", "closed-waiting-timer", "closed-open-task"}


CORRUPTIONS = [delete_open_task, delete_completed_task, add_orphan_task, claim_without_assignee, move_timer_due,
               delete_waiting_timer, add_orphan_timer, wrong_next_timer, forget_next_timer, end_last_referent,
               duplicate_task_completed, duplicate_case_started, lose_task_created, double_task_cancelled,
               lose_timer_fired, corrupt_state,
               state_without_tasks, detach_ready_task, reopen_closed_case_member, reactivate_closed_case,
               close_active_case]


def test_each_corruption_is_found_in_its_case_only(session_factory, ctx):
    """One world, each corruption applied and checked in a transaction that is then rolled back."""
    world = build_world(session_factory, ctx)
    seen_rules = set()
    for corrupt in CORRUPTIONS:
        with session_factory() as session:
            session.begin()
            case_id, rules = corrupt(session, world)
            session.flush()
            report = check_database(session, ctx, batch=2)  # in the corrupting transaction: it sees the change
            found = {(p.case_id, p.rule) for p in report.problems}
            assert found == {(case_id, rule) for rule in rules}, (corrupt.__name__, report.lines())
            assert not report.ok and report.problem_count == len(report.problems)
            session.rollback()
        seen_rules |= rules
        assert check(session_factory, ctx).ok, corrupt.__name__
    assert seen_rules == set(RULES)  # every rule is exercised


@pytest.mark.parametrize("corrupt", [delete_open_task, end_last_referent, duplicate_task_completed, corrupt_state,
                                     wrong_next_timer], ids=lambda f: f.__name__)
def test_committed_corruption_is_confirmed_and_reported(session_factory, ctx, corrupt):
    """Committed, and checked by the check's own transactions (found, then confirmed by a second read)."""
    world = build_world(session_factory, ctx)
    with session_factory() as session, transaction(session):
        case_id, rules = corrupt(session, world)
    report = check(session_factory, ctx, batch=3)
    assert {(p.case_id, p.rule) for p in report.problems} == {(case_id, rule) for rule in rules}
    assert report.cases_checked == 4
    [summary, *details] = report.lines()
    assert summary.startswith(f"4 case(s) checked: {len(details)} problem(s) in 1 case(s)")
    assert all(line.startswith(f"case {case_id}: [") for line in details)


def test_a_fault_gone_on_the_second_read_is_not_reported(session_factory, ctx, monkeypatch):
    """A command that commits between the check's reads (a fault seen once) is no fault; a lasting one is."""
    world = build_world(session_factory, ctx)
    with session_factory() as session, transaction(session):
        duplicate_case_started(session, world)
        end_last_referent(session, world)  # this one lasts
    confirm = consistency._confirm

    def repair_then_confirm(session, ctx, case_ids):
        assert case_ids == {world.job_seeker}
        with session_factory() as other, transaction(other):
            [_, duplicate] = other.scalars(select(CaseEvent).where(
                CaseEvent.case_id == world.job_seeker, CaseEvent.kind == "case_started").order_by(CaseEvent.id))
            other.delete(duplicate)
        return confirm(session, ctx, case_ids)

    monkeypatch.setattr(consistency, "_confirm", repair_then_confirm)
    report = check(session_factory, ctx)
    assert [(p.case_id, p.rule) for p in report.problems] == [(world.job_seeker, "no-referent")]


def test_the_report_keeps_a_bounded_number_of_problems(session_factory, ctx):
    world = build_world(session_factory, ctx)
    with session_factory() as session, transaction(session):
        event = _one(session, CaseEvent, CaseEvent.case_id == world.job_seeker, CaseEvent.kind == "case_started")
        for _ in range(5):
            session.add(CaseEvent(case_id=event.case_id, at=event.at, actor="x", kind="task_completed",
                                  task_uuid=str(uuid4()), summary={}))
    report = check(session_factory, ctx, max_problems=2)
    assert report.problem_count == 5 and len(report.problems) == 2 and not report.ok
    assert report.lines()[-1] == "... and 3 more problem(s) not listed"


# --------------------------------------------------------------------------- spie check


@pytest.fixture
def run(database_url, db_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPIE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SPIE_SIMULATION", "1")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_spie_check_on_an_empty_database(run):
    result = run("check")
    assert result.exit_code == 0, result.output
    assert "cases:\n  0 case(s) checked: consistent\n" in result.output
    assert "directory:\n  no commune in the directory" in result.output
    # The directory decides too only when asked.
    assert run("check", "--directory").exit_code == 1


def test_spie_check_reports_problems_and_exits_1(run, session_factory, ctx):
    world = build_world(session_factory, ctx)
    result = run("check", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "4 case(s) checked: consistent" in result.output
    assert "directory:\n  194 communes" in result.output
    with session_factory() as session, transaction(session):
        end_last_referent(session, world)
        duplicate_task_completed(session, world)
    result = run("check", "--batch", "2")
    assert result.exit_code == 1
    assert "4 case(s) checked: 2 problem(s) in 2 case(s) (no-referent 1, task-completed 1)" in result.output
    assert f"case {world.job_seeker}: [no-referent]" in result.output
    assert f"case {world.mission_locale}: [task-completed]" in result.output
    assert run("check", "--batch", "0").exit_code == 2  # a usage error
