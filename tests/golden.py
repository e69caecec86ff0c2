"""Golden saved cases: states written by the pinned SpiffWorkflow, kept to prove they still load.

Regenerate only on purpose (a deliberate format change), never to make a failing
upgrade pass:  ``.venv/bin/python -m tests.golden``
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.bpmn_parsing import parse_pathway
from engine.clock import install_spiff_clock, workflow_time
from engine.sandbox import create_script_engine
from engine.state import StateSerializer

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "fixtures" / "golden"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)

# name -> (BPMN files, main first then called ones; start data)
CASES = {
    "simple-after-boundary-timer": (["tests/fixtures/engine/simple.bpmn"], {}),
    "timers-cycle-waiting": (
        ["tests/fixtures/engine/timers.bpmn"],
        {"reminders": 0, "appointment_at": "2026-03-01T09:00:00+00:00"},
    ),
    "message-waiting": (["tests/fixtures/engine/message.bpmn"], {}),
    "ml-exit-in-hand-off": (
        ["bpmn/jeune-sortant-mission-locale.bpmn", "bpmn/passage-de-relais.bpmn"],
        {
            "person": {"first_name": "Inès", "last_name": "Martin", "birth_date": "2001-03-14",
                       "commune_insee": "91228"},
            "receiving_structure_type": "departement",
            "sending_structure_type": "mission-locale",
        },
    ),
}


def specs_for(directory: Path):
    files = json.loads((directory / "files.json").read_text())
    main, *called = [(directory / name).read_bytes() for name in files]
    library = {}
    for raw in called:
        parsed = parse_pathway(raw, library=library, validate=False)
        library[parsed.key] = raw
    parsed = parse_pathway(main, library=library, validate=False)
    return parsed.spec, parsed.subprocess_specs


def waiting_snapshot(workflow: BpmnWorkflow) -> list[list[str]]:
    states = TaskState.READY | TaskState.WAITING
    return sorted([t.task_spec.bpmn_id or t.task_spec.name, TaskState.get_name(t.state)]
                  for t in workflow.get_tasks(state=states))


def _drive(name: str, workflow: BpmnWorkflow) -> None:
    """Move each golden case to an interesting, mid-way point."""
    def settle(at):
        with workflow_time(at):
            workflow.refresh_timers()
            workflow.do_engine_steps()

    settle(T0)
    if name == "simple-after-boundary-timer":
        settle(T0 + timedelta(days=16))
    elif name == "timers-cycle-waiting":
        settle(T0 + timedelta(days=2))
        settle(T0 + timedelta(days=9))
    elif name == "ml-exit-in-hand-off":
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        task.set_data(motif="fin d'accompagnement", date_sortie_prevue="2026-03-01")
        with workflow_time(T0 + timedelta(days=1)):
            task.run()
        settle(T0 + timedelta(days=1))


def generate() -> None:
    install_spiff_clock()
    serializer = StateSerializer()
    for name, (files, data) in CASES.items():
        directory = GOLDEN / name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for path in files:
            shutil.copy(ROOT.parent / path, directory / Path(path).name)
        (directory / "files.json").write_text(json.dumps([Path(p).name for p in files]))
        spec, subprocess_specs = specs_for(directory)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=create_script_engine())
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(data)
        _drive(name, workflow)
        (directory / "state.json").write_text(serializer.dump(workflow))
        meta = {"spiffworkflow": version("SpiffWorkflow"), "serializer": serializer.version,
                "waiting": waiting_snapshot(workflow)}
        (directory / "expected.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        print(f"{name}: {len(meta['waiting'])} waiting tasks")


if __name__ == "__main__":
    generate()
