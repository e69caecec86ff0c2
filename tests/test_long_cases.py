"""A case lives for years: loops keep working and saved state stays bounded."""
from __future__ import annotations

from engine import simulation
from engine.models import Case
from engine.runtime import load_case
from engine.state import tree_depth
from tests.helpers import deploy_fixture, start, timeline


def _state_size(session_factory, case_id) -> int:
    with session_factory() as session:
        return len(session.get(Case, case_id).state)


def test_two_year_weekly_loop_completes(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "loop.bpmn")
    case_id = start(session_factory, ctx, "weekly_loop", {"target": 104})
    simulation.advance(session_factory, ctx, "P2Y")
    with session_factory() as session:
        case = session.get(Case, case_id)
        assert case.status == "closed"
    assert [e.kind for e in timeline(session_factory, case_id)].count("timer_fired") == 104


def test_loop_past_the_spiff_depth_limit_with_bounded_state(session_factory, ctx):
    """SpiffWorkflow alone stalls after ~330 passes; compaction keeps depth and size flat."""
    deploy_fixture(session_factory, ctx, "loop.bpmn")
    case_id = start(session_factory, ctx, "weekly_loop", {"target": 500})
    sizes, weeks_done = {}, 0
    for checkpoint in (50, 200, 450):
        simulation.advance(session_factory, ctx, f"P{7 * (checkpoint - weeks_done)}D")
        weeks_done = checkpoint
        sizes[checkpoint] = _state_size(session_factory, case_id)
        with session_factory() as session:
            assert tree_depth(load_case(session, ctx, case_id).workflow) < 100
    assert sizes[450] < sizes[50] * 1.5, sizes
    simulation.advance(session_factory, ctx, f"P{7 * 60}D")
    with session_factory() as session:
        assert session.get(Case, case_id).status == "closed"
    assert [e.kind for e in timeline(session_factory, case_id)].count("timer_fired") == 500
