"""The carnet of a case: person, groupe de suivi with dates, tasks, diagnostic, offers proposed and prescriptions,
pathway diagram, history."""
from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from itertools import combinations
from uuid import UUID

from flask import Blueprint, Response, render_template
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from api.extensions import db
from api.presenters import case_out
from engine import access, projection, runtime
from engine.db import transaction
from engine.directory import Commune, Structure, User
from engine.errors import NotFound
from engine.models import Case, HumanTask, PathwayVersion
from engine.offers import BARRIERS
from engine.people import Person
from web import catalogue, forms, labels, queries
from web.common import current_user, engine_context, log_access, login_required, now
from web.tasks import ID

bp = Blueprint("cases", __name__, url_prefix="/dossiers")

DIAGNOSTIC_FORM = "diagnostic-socio-professionnel"
SYSTEM_ACTORS = {"system", "engine", "timer", "scheduler", "worker"}


@bp.get(f"/<{ID}:case_id>")
@login_required
def show(case_id: int):
    user = current_user()
    case = visible_case(user, case_id, "case.read")
    with transaction(db.session):
        log_access(user, case_id, "case.read")
    current = now()
    person = db.session.get(Person, case.person_id) if case.person_id else None  # held: case_out reads it too
    out = case_out(db.session, engine_context().specs, case, current)
    with runtime.reading(db.session, engine_context(), case_id) as loaded:
        found = diagnostic(user, loaded, case)
        markers = diagram_markers(loaded, case)
    name, key = db.session.execute(select(PathwayVersion.name, PathwayVersion.key)
                                   .where(PathwayVersion.id == case.pathway_version_id)).one()
    commune = db.session.get(Commune, case.commune_insee) if case.commune_insee else None
    return render_template(
        "dossier.html", case=out, pathway_name=name or key, person=person, commune=commune,
        age=labels.age(person.birth_date if person else None, current), now=current,
        team=care_team(out["care_team"], case, current), open_tasks=open_tasks(user, out["open_tasks"]),
        timeline=timeline(out["timeline"]), diagnostic=found, offers=offers_section(case, found),
        markers=markers,
    )


@bp.get(f"/<{ID}:case_id>/diagramme.bpmn")
@login_required
def diagram(case_id: int):
    """The BPMN of the case's pathway version, for the bpmn-js viewer (only to those who may see the case)."""
    user = current_user()
    case = visible_case(user, case_id, "case.diagram")
    with transaction(db.session):
        log_access(user, case_id, "case.diagram")
    xml = db.session.scalar(select(PathwayVersion.bpmn_xml).where(PathwayVersion.id == case.pathway_version_id))
    return Response(xml, mimetype="application/xml", headers={"Content-Disposition": "inline"})


def visible_case(user: User, case_id: int, action: str) -> Case:
    """The case, or 404 (logged as denied) when it does not exist or the user may not see it."""
    try:
        return access.case_for(db.session, user, case_id)
    except NotFound:
        with transaction(db.session):
            log_access(user, case_id, action, outcome="denied")
        raise


def care_team(members: list[dict], case: Case, current: datetime) -> dict:
    """Members with bars on a common time scale, and the periods two structures overlapped (hand-offs)."""
    start = case.created_at
    end = max([current, case.ended_at or current] + [m["ended_at"] for m in members if m["ended_at"]])
    span = max((end - start).total_seconds(), 1.0)
    rows = []
    for member in members:
        until = member["ended_at"] or end
        left = min(99.0, max(0.0, (member["started_at"] - start).total_seconds() / span * 100))
        width = max(1.0, min((until - member["started_at"]).total_seconds() / span * 100, 100 - left))
        rows.append({**member, "left": round(left, 2), "width": round(width, 2),
                     "end_reason_text": labels.exit_reason(member["end_reason"])})
    overlaps = []
    for a, b in combinations(members, 2):
        if a["structure"]["id"] == b["structure"]["id"]:
            continue
        since = max(a["started_at"], b["started_at"])
        until_a, until_b = a["ended_at"], b["ended_at"]
        until = min(d for d in (until_a, until_b) if d) if (until_a or until_b) else None
        if until is not None and until < since:
            continue
        overlaps.append({"a": a, "b": b, "since": since, "until": until,
                         "days": labels.days_between(since, until or current)})
    return {"rows": rows, "overlaps": overlaps, "start": start, "end": end}


def open_tasks(user: User, tasks: list[dict]) -> list[dict]:
    assignees = {t["assignee"] for t in tasks if t["assignee"]}
    names = dict(db.session.execute(select(User.email, User.name).where(User.email.in_(assignees))).tuples().all())
    rows = []
    for task in tasks:
        row = db.session.get(HumanTask, task["id"])
        rows.append({**task, "workable": access.may_work_task(user, row) or row.assignee == user.email,
                     "due_text": labels.due_text(task["due_at"], now()), "assignee_name": names.get(task["assignee"])})
    return rows


def timeline(events: list[dict]) -> list[dict]:
    """Events, most recent first, with who did them and what in French."""
    emails = {e["actor"] for e in events} | {e["summary"].get("user") for e in events if e["summary"].get("user")}
    emails |= {e["summary"].get("assignee") for e in events if e["summary"].get("assignee")}
    users = {u.email: u for u in db.session.scalars(select(User).where(User.email.in_({e for e in emails if e})))}
    structure_ids = {e["summary"].get("structure_id") for e in events} - {None}
    structures = {s.id: s for s in db.session.scalars(select(Structure).where(Structure.id.in_(structure_ids)))}

    def person(email: str | None) -> str:
        if not email:
            return ""
        if email.split(":", 1)[0] in SYSTEM_ACTORS or "@" not in email:
            return "Moteur de parcours"
        user = users.get(email)
        return f"{user.name} ({user.structure.name})" if user and user.structure else (user.name if user else email)

    out = []
    for event in reversed(events):
        summary = event["summary"] or {}
        details = []
        if summary.get("name"):
            details.append(f"« {summary['name']} »")
        if event["kind"] in ("referent_joined", "referent_left") and summary.get("user"):
            details.append(person(summary["user"]))
        elif summary.get("structure_id") in structures:
            details.append(structures[summary["structure_id"]].name)
        if summary.get("assignee") and event["kind"] == "task_assigned":
            details.append(f"à {person(summary['assignee'])}")
        if summary.get("reason") and event["kind"] == "referent_left":
            details.append(f"motif : {labels.exit_reason(summary['reason'])}")
        if summary.get("exit_reason"):
            details.append(f"motif : {labels.exit_reason(summary['exit_reason'])}")
        if summary.get("orientation"):
            details.append(f"orientation {labels.ORIENTATIONS.get(summary['orientation'], summary['orientation'])}"
                           f" vers {labels.structure_type(summary.get('target_structure_type'))}")
        if summary.get("date") and event["kind"].startswith("joint_meeting"):
            details.append(f"le {labels.date_fr(summary['date'])}")
        if event["kind"] == "message_delivered" and summary.get("message"):
            details.append(summary["message"])
        if event["kind"].startswith("prescription_") and summary.get("offer"):
            details.insert(0, f"« {summary['offer']} »")
        if summary.get("reason_label"):
            details.append(f"motif : {summary['reason_label']}")
        out.append({"at": event["at"], "label": labels.EVENTS.get(event["kind"], event["kind"]),
                    "kind": event["kind"], "actor": person(event["actor"]), "details": " — ".join(details)})
    return out


def diagnostic(user: User, loaded, case: Case) -> dict | None:
    """The latest diagnostic socio-professionnel, as its form's labels say it (or why it is not shown)."""
    row = db.session.scalar(select(HumanTask).where(
        HumanTask.case_id == case.id, HumanTask.form_key == DIAGNOSTIC_FORM, HumanTask.state == "completed")
        .order_by(HumanTask.ended_at.desc(), HumanTask.id.desc()).limit(1))
    if row is None:
        return None
    schema = queries.form_schema(db.session, engine_context().specs, case.pathway_version_id, DIAGNOSTIC_FORM) or {}
    data = _diagnostic_data(loaded, row, schema)
    if not data:
        return None
    author = db.session.scalar(select(User).where(User.email == row.completed_by)) if row.completed_by else None
    shared = data.get("consentement_partage") is not False
    visible = shared or (author is not None and author.structure_id == user.structure_id)
    freins = data.get("freins") if visible and isinstance(data.get("freins"), dict) else {}
    return {"at": row.ended_at, "author": author.name if author else row.completed_by,
            "structure": author.structure.name if author and author.structure else None,
            "shared": shared, "visible": visible, "items": forms.describe(schema, data) if visible else [],
            "barriers": [code for code in BARRIERS if (freins.get(code) or {}).get("valeur") == "OUI"]}


def offers_section(case: Case, found: dict | None) -> dict:
    """« Offres proposées »: offers lifting the diagnostic's barriers in the person's commune; the prescriptions."""
    barriers = found["barriers"] if found else []
    sent = catalogue.case_prescriptions(db.session, case.id)
    proposed = catalogue.proposals(db.session, barriers, case.commune_insee) if case.status == "active" else []
    return {"barriers": [BARRIERS[code] for code in barriers], "proposed": catalogue.offer_rows(db.session, proposed),
            "pending": catalogue.awaiting_answer(sent), "prescriptions": catalogue.prescription_rows(db.session, sent),
            "may_prescribe": case.status == "active"}


def _diagnostic_data(loaded, row: HumanTask, schema: dict) -> dict:
    fields = (schema.get("properties") or {}).keys()
    task = loaded.workflow.get_task_from_id(UUID(row.task_uuid))
    candidates = [task] if task is not None and "date_diagnostic" in task.data else []
    if not candidates:  # history compacted: the latest task that carries the diagnostic's data
        candidates = sorted((t for t in projection.all_tasks(loaded.workflow) if "date_diagnostic" in t.data),
                            key=lambda t: t.last_state_change, reverse=True)[:1]
    if not candidates:
        return {}
    # A copy: the workflow goes back to the cache of live workflows as it was read.
    return deepcopy({k: candidates[0].data[k] for k in fields if k in candidates[0].data})


def diagram_markers(loaded, case: Case) -> dict:
    """For each current and completed activity, its BPMN id then those of the activities that contain it.

    The viewer marks the first of each chain that the diagram has: a task of a called pathway
    (a hand-off, say) shows on the call activity that runs it.
    """
    workflow = loaded.workflow

    def chain(task) -> list[str]:
        ids = []
        while task is not None:
            ids.append(task.task_spec.bpmn_id)
            parent = task.workflow.parent_task_id
            task = workflow.get_task_from_id(parent) if parent else None
        return [i for i in ids if i]

    def chain_of(row: HumanTask) -> list[str]:
        task = workflow.get_task_from_id(UUID(row.task_uuid))
        return chain(task) if task is not None else [row.bpmn_id]

    rows = list(db.session.scalars(select(HumanTask).where(HumanTask.case_id == case.id)))
    current = [chain_of(r) for r in rows if r.state in ("open", "claimed")]
    completed = [chain_of(r) for r in rows if r.state == "completed"]
    completed += [chain(t) for t in workflow.tasks.values()
                  if isinstance(t.task_spec, SubWorkflowTask) and t.has_state(TaskState.COMPLETED)]
    return {"current": current, "completed": completed}
