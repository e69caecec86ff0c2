"""Real case states for the bulk loaders: walk the pathways with the engine and snapshot every step.

A *template* is one case as the engine left it after a command: its saved
state, its ``human_task``, ``timer``, ``case_event`` and ``care_team_member``
rows. The generator (bench/generate.py) and the timer storm copy templates to
millions of cases with COPY, remapping ids, structures, people and times, so
each generated case is what the engine itself would have written (and
``engine.consistency.check_database`` agrees with it).

Walks run on simulated time (``DatabaseClock``) in Évry-Courcouronnes (91228),
with the demo accounts of the seeded Essonne directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bench.scale_common import copy_escape, to_epoch_us  # noqa: F401 - sets sys.path first

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from engine import cases, runtime, simulation  # noqa: E402
from engine.context import EngineContext  # noqa: E402
from engine.db import transaction  # noqa: E402
from engine.directory import Structure, User  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from engine.models import Case, CaseEvent, HumanTask, PathwayVersion, Timer  # noqa: E402
from engine.people import CareTeamMember, Person  # noqa: E402
from engine.projection import all_tasks  # noqa: E402

EVRY = "91228"
TEMPLATE_ACTOR = "bench-template"
# Template people: names and birth dates that occur nowhere else in a state, so they can be substituted.
FIRST_TOKEN, LAST_TOKEN = "Qzfirstname", "Qzlastname"


def _answers(situation: str, barriers: set[str]) -> dict:
    freins = {key: {"valeur": "OUI" if key in barriers else "NON"}
              for key in ("mobilite", "contraintes_familiales", "sante", "maitrise_langue", "logement",
                          "difficulte_financiere", "difficulte_administrative")}
    return {"situation_professionnelle": situation, "niveau_formation": "NV4", "rqth": False, "freins": freins,
            "besoins": ["trouver_un_emploi"], "synthese": "Diagnostic d'entrée.", "consentement_partage": True}


def form_data(form_key: str | None, today: str, task_data: dict, actor_email: str, variant: dict) -> dict:
    """Valid answers for each form of the pathways (the scenario tests' answers)."""
    if form_key == "entretien":
        return {"date_entretien": today, "modalite": "presentiel", "notes": "Point d'étape, freins repérés."}
    if form_key == "contrat-engagement":
        return {"type_contrat": "CER", "date_signature": today, "heures_activite_hebdomadaires": 15,
                "objectifs": [{"libelle": "Trouver un mode de garde", "theme": "contraintes_familiales"}]}
    if form_key == "escalade":
        return {"action": "relance-effectuee", "date_action": today, "commentaire": "Référent relancé."}
    if form_key == "revue-parcours":
        return {"date_revue": today, "diagnostic_conjoint": True, "decision": variant.get("review", "poursuivre"),
                "motif": "Accompagnement à poursuivre."}
    if form_key == "arbitrage-parcours":
        return {"date_arbitrage": today, "decision": "nouveau-cycle", "motif": "Nouveau cycle social."}
    if form_key == "preparation-sortie":
        return {"date_sortie_prevue": today, "situation_sortie": "sans-solution", "synthese": "RSA à ouvrir.",
                "droits_a_ouvrir": ["rsa"]}
    if form_key == "designation-referent":
        return {"referent_email": actor_email, "date_designation": today}
    if form_key == "rendez-vous-tripartite":
        return {"date_rendez_vous": today, "presence_personne": True, "presence_referent_origine": True,
                "presence_referent_accueil": True, "compte_rendu": "Relais présenté à la personne."}
    if form_key == "sortie":
        return {"exit_reason": variant.get("exit", "relais-autre-structure"), "exit_date": today}
    if form_key == "diagnostic-socio-professionnel":
        profile = variant.get("profile", "social")
        answers = (_answers("au_foyer", {"contraintes_familiales", "logement", "difficulte_financiere"})
                   if profile == "social" else _answers("recherche_emploi", {"contraintes_familiales"}))
        return {**answers, "date_diagnostic": today}
    if form_key == "decision-orientation":
        return {"orientation": task_data.get("orientation", "social"),
                "target_structure_type": task_data.get("target_structure_type", "departement"),
                "date_decision": today, "motif": "Proposition confirmée."}
    if form_key == "prescription":
        return {"offer_id": "demo--garde-enfants-essonne", "frein": "contraintes_familiales",
                "message": "Deux enfants, reprise d'emploi visée."}
    if form_key == "bilan-prescription":
        return {"date_bilan": today, "personne_entree_dans_l_offre": True,
                "suite": variant.get("bilan", "fin-prescriptions")}
    if form_key == "relance-prestataire":
        return {"date_relance": today, "moyen": "telephone", "commentaire": "Prestataire relancé."}
    return {}


@dataclass(frozen=True)
class Walk:
    """One way through a pathway: who starts it, the person's age, and what happens between commands."""

    name: str
    pathway: str
    starter_type: str
    birth_date: str
    # Before each command: a duration to advance the simulated clock (timers fire), or "" for none.
    gaps: tuple[str, ...] = ()
    variant: dict = field(default_factory=dict)
    max_steps: int = 12
    weight: float = 1.0  # share of the generated cases


# Simulated start: 2026-01-05. Ages: 25 for the Mission Locale exit, 16 for ASE (interview at 17), adults otherwise.
WALKS = (
    Walk("ml-prompt", "jeune-sortant-mission-locale", "mission-locale", "2001-01-22",
         gaps=("P3D", "P5D", "P4D", "P6D", "P8D", "P5D", "P9D", "P6M"), weight=0.7),
    Walk("ml-late", "jeune-sortant-mission-locale", "mission-locale", "2000-12-12",
         gaps=("P6D", "P31D", "P2D", "P3D", "P5D", "P4D", "P12D", "P6D"), weight=0.5),
    Walk("entry-social", "entree-diagnostic", "france-travail", "1986-09-14",
         gaps=("P8D", "P5D", "P10D", "P20D", "P6M", "P10D", "P6M"), variant={"profile": "social"}, weight=1.6),
    Walk("entry-sociopro", "entree-diagnostic", "mission-locale", "1994-05-03",
         gaps=("P31D", "P1D", "P4D", "P2D", "P6D", "P11D", "P9D", "P31D"), variant={"profile": "sociopro"},
         weight=1.4),
    Walk("brsa-review", "brsa-oriente-social", "departement", "1979-10-03",
         gaps=("P12D", "P33D", "P2D", "P6M", "P10D", "P6M", "P7D"), weight=1.6),
    Walk("brsa-exit", "brsa-oriente-social", "departement", "1984-06-11",
         gaps=("P4D", "P9D", "P6M", "P5D"), variant={"review": "sortie", "exit": "emploi-durable"}, weight=0.6),
    Walk("job-seeker", "demandeur-emploi-freins", "france-travail", "1990-04-18",
         gaps=("P2D", "P3D", "P5D", "P11D", "P4D", "P31D", "P3D"), variant={"bilan": "nouvelle-prescription"},
         weight=1.3),
    Walk("ase", "jeune-sortant-ase", "ase", "2009-03-10",
         gaps=("P20D", "P3M", "P15D", "P16D", "P5D", "P3D", "P6M", "P5D"), weight=0.5),
)


@dataclass
class Template:
    """One snapshot, as offsets from its moment (microseconds) and template ids to remap."""

    name: str
    walk: str
    pathway_key: str
    pathway_version_id: int
    weight: float
    snapshot_us: int
    status: str
    exit_reason: str | None
    serializer_version: str
    created_by: str
    version: int
    created_off: int
    updated_off: int
    ended_off: int | None
    next_timer_off: int | None
    state: str
    due_strings: list[str]  # timer due times as written in the state (ISO), to shift per case
    person: tuple[str, str, str]  # first, last, birth date as in the template
    tasks: list[dict]
    timers: list[dict]
    events: list[dict]
    members: list[dict]
    structures: dict[int, tuple[str, bool]]  # template structure id -> (type, is pilot)
    users: dict[str, tuple[int, str]]  # template user email -> (structure id, role)
    user_ids: dict[int, str]  # template user id -> email

    @property
    def task_rows(self) -> int:
        return len(self.tasks)

    @property
    def open_tasks(self) -> int:
        return sum(1 for t in self.tasks if t["state"] in ("open", "claimed"))


def _staff(session: Session, structure_id: int, audience: str) -> User:
    role = "referent" if audience == "referent" else "supervisor"
    user = session.scalar(select(User).where(User.structure_id == structure_id, User.role == role,
                                             User.active.is_(True)).order_by(User.id).limit(1))
    if user is None:
        raise RuntimeError(f"no {role} in structure {structure_id}")
    return user


def _open_rows(session: Session, case_id: int) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(
        HumanTask.case_id == case_id, HumanTask.state.in_(("open", "claimed"))).order_by(HumanTask.id)))


def run_walk(session_factory: sessionmaker, ctx: EngineContext, walk: Walk, index: int, log=print) -> list[Template]:
    """Start a case and drive it step by step; a template after every command that changed it."""
    templates: list[Template] = []
    with session_factory() as session, transaction(session):
        starter = session.scalar(select(User).join(Structure, Structure.id == User.structure_id).where(
            Structure.type == walk.starter_type, User.role == "referent", Structure.demo.is_(True),
            Structure.id.in_(_covering_ids(session, walk.starter_type, EVRY))).order_by(User.id).limit(1))
        person = cases.find_or_create_person(session, ctx, {
            "first_name": f"{FIRST_TOKEN}{index}", "last_name": f"{LAST_TOKEN}{index}",
            "birth_date": walk.birth_date, "commune_insee": EVRY})
        case = cases.start_case(session, ctx, walk.pathway, actor=starter.email, person=person, referent=starter)
        case_id = case.id
    templates.append(snapshot(session_factory, ctx, case_id, walk, 0))
    for step in range(1, walk.max_steps + 1):
        gap = walk.gaps[step - 1] if step - 1 < len(walk.gaps) else ""
        if gap:
            simulation.advance(session_factory, ctx, gap)
            templates.append(snapshot(session_factory, ctx, case_id, walk, len(templates)))
        with session_factory() as session:
            status = session.get(Case, case_id).status
            rows = _open_rows(session, case_id)
        if status != "active" or not rows:
            break
        # Escalations first (a supervisor answers the reminder), then the oldest référent task.
        row = sorted(rows, key=lambda r: (r.audience == "referent", r.id))[0]
        try:
            with session_factory() as session, transaction(session):
                row = session.get(HumanTask, row.id)
                actor = session.scalar(select(User).where(User.email == row.assignee)) if row.assignee else None
                if actor is None:
                    structure_id = row.structure_id
                    actor = _staff(session, structure_id, row.audience)
                today = ctx.clock.now(session).date().isoformat()
                loaded = runtime.load_case(session, ctx, case_id)
                task_data = dict(runtime.find_task(loaded, row.task_uuid).data)
                session.expunge_all()
                row = session.get(HumanTask, row.id)
                data = form_data(row.form_key, today, task_data, actor.email, walk.variant)
                cases.complete_task(session, ctx, row.id, data, user=actor.email)
        except EngineError as exc:
            log(f"  walk {walk.name}: step {step} ({row.bpmn_id}) refused: {exc}; walk ends here")
            break
        templates.append(snapshot(session_factory, ctx, case_id, walk, len(templates)))
    return [t for t in templates if t is not None]


def _covering_ids(session: Session, structure_type: str, commune: str):
    from engine.directory import StructureCoverage
    return select(StructureCoverage.structure_id).join(Structure, Structure.id == StructureCoverage.structure_id) \
        .where(Structure.type == structure_type, StructureCoverage.commune_insee == commune)


def _due_strings(ctx: EngineContext, session: Session, case: Case) -> list[str]:
    """The due times of the WAITING timer events, exactly as the saved state writes them."""
    pathway = ctx.specs.get(session, case.pathway_version_id)
    workflow = ctx.serializer.load(case.state, pathway.spec, pathway.subprocess_specs)
    dues = []
    for task in all_tasks(workflow):
        if task.state != TaskState.WAITING:
            continue
        value = task.internal_data.get("event_value")
        if isinstance(value, dict):
            value = value.get("next")
        if isinstance(value, str):
            dues.append(value)
    return sorted(set(dues))


def snapshot(session_factory: sessionmaker, ctx: EngineContext, case_id: int, walk: Walk, number: int):
    with session_factory() as session:
        now = ctx.clock.now(session)
        now_us = to_epoch_us(now)
        case = session.get(Case, case_id)
        if case.status not in ("active", "closed"):
            return None
        person = session.get(Person, case.person_id)

        def off(value: datetime | None) -> int | None:
            return None if value is None else to_epoch_us(value) - now_us

        tasks = [dict(task_uuid=t.task_uuid, bpmn_id=t.bpmn_id, name=t.name, lane=t.lane, form_key=t.form_key,
                      state=t.state, assignee=t.assignee, created_off=off(t.created_at), due_off=off(t.due_at),
                      ended_off=off(t.ended_at), completed_by=t.completed_by, escalation_level=t.escalation_level,
                      structure_id=t.structure_id, audience=t.audience, unassigned=t.unassigned, version=t.version)
                 for t in session.scalars(select(HumanTask).where(HumanTask.case_id == case_id).order_by(HumanTask.id))]
        timer_rows = list(session.scalars(select(Timer).where(Timer.case_id == case_id).order_by(Timer.id)))
        timer_index = {t.id: i for i, t in enumerate(timer_rows)}
        timers = [dict(task_uuid=t.task_uuid, bpmn_id=t.bpmn_id, kind=t.kind, due_off=off(t.due_at), state=t.state,
                       fired_count=t.fired_count, last_fired_off=off(t.last_fired_at)) for t in timer_rows]
        events = []
        for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)):
            summary = dict(e.summary or {})
            if "timer_id" in summary:
                summary["timer_id"] = ("timer", timer_index[summary["timer_id"]])
            events.append(dict(at_off=off(e.at), actor=e.actor, kind=e.kind, bpmn_id=e.bpmn_id,
                               task_uuid=e.task_uuid, summary=summary))
        members = [dict(structure_id=m.structure_id, user_id=m.user_id, role=m.role, started_off=off(m.started_at),
                        ended_off=off(m.ended_at), end_reason=m.end_reason)
                   for m in session.scalars(select(CareTeamMember).where(CareTeamMember.case_id == case_id)
                                            .order_by(CareTeamMember.id))]
        structure_ids = {t["structure_id"] for t in tasks} | {m["structure_id"] for m in members}
        for e in events:
            if isinstance(e["summary"].get("structure_id"), int):
                structure_ids.add(e["summary"]["structure_id"])
        structure_ids.discard(None)
        structures = {s.id: (s.type, bool(s.is_pilot))
                      for s in session.scalars(select(Structure).where(Structure.id.in_(structure_ids)))}
        emails = ({t["assignee"] for t in tasks} | {t["completed_by"] for t in tasks} | {e["actor"] for e in events}
                  | {case.created_by} | {e["summary"].get("user") for e in events}
                  | {e["summary"].get("assignee") for e in events})
        member_users = {m["user_id"] for m in members if m["user_id"]}
        user_rows = list(session.scalars(select(User).where(
            (User.email.in_([e for e in emails if isinstance(e, str)])) | User.id.in_(member_users))))
        users = {u.email: (u.structure_id, u.role) for u in user_rows}
        for u in user_rows:
            structures.setdefault(u.structure_id, (u.structure.type, bool(u.structure.is_pilot)))
        key = session.scalar(select(PathwayVersion.key).where(PathwayVersion.id == case.pathway_version_id))
        return Template(
            name=f"{walk.name}#{number}", walk=walk.name, pathway_key=key, pathway_version_id=case.pathway_version_id,
            weight=walk.weight, snapshot_us=now_us, status=case.status, exit_reason=case.exit_reason,
            serializer_version=case.serializer_version, created_by=case.created_by, version=case.version,
            created_off=off(case.created_at), updated_off=off(case.updated_at), ended_off=off(case.ended_at),
            next_timer_off=off(case.next_timer_at), state=case.state, due_strings=_due_strings(ctx, session, case),
            person=(person.first_name, person.last_name, person.birth_date.isoformat()),
            tasks=tasks, timers=timers, events=events, members=members, structures=structures, users=users,
            user_ids={u.id: u.email for u in user_rows})


def build_templates(session_factory: sessionmaker, ctx: EngineContext, log=print) -> list[Template]:
    templates: list[Template] = []
    for index, walk in enumerate(WALKS):
        found = run_walk(session_factory, ctx, walk, index, log=log)
        templates.extend(found)
    # Identical consecutive snapshots (an advance that fired nothing) would only be duplicates.
    unique, seen = [], set()
    for t in templates:
        fingerprint = (t.walk, t.state, len(t.tasks), len(t.events))
        if fingerprint not in seen:
            seen.add(fingerprint)
            unique.append(t)
    return unique


def describe(templates: list[Template]) -> list[str]:
    lines = []
    for t in templates:
        open_names = ",".join(x["bpmn_id"] for x in t.tasks if x["state"] in ("open", "claimed"))
        next_timer = "-" if t.next_timer_off is None else f"{t.next_timer_off / 86400e6:.0f}d"
        lines.append(f"  {t.name:<20} {t.status:<7} tasks {len(t.tasks):>2} (open {t.open_tasks}) "
                     f"timers {len(t.timers)} events {len(t.events):>2} members {len(t.members)} "
                     f"state {len(t.state) / 1024:5.1f} kB next timer {next_timer:>5} open: {open_names}")
    return lines


def is_substitutable(t: Template) -> bool:
    """The template person's names occur in the state only as the person (so they can be replaced)."""
    return FIRST_TOKEN in t.person[0] and LAST_TOKEN in t.person[1]
