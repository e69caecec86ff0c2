"""Who may read and work which case, over HTTP: each role × kind of case × action, against a written table.

The rules are engine/access.py's: a case is visible to the users of the
structures on its active care team, to the users of a structure holding an
open task on it (référents: référent tasks; supervisors: any), and to nobody
else; a case with a sensitive structure on its care team is visible to its
care team only. Refusals look like "not found" (404); a visible case whose
task belongs to another structure gives 403 on that task.

Roles (demo accounts): a référent and a supervisor of the Mission Locale
Centre Essonne; the designer, the administrator and the Département pilot
(a supervisor), all three in the pilot structure "Mission SPIE".

Kinds of case, built fresh for each test from the role's structure's point of view:

- ``own``: started by a référent of the role's structure (on its care team), with an open task for it;
- ``other``: another structure's case (MDS Centre), nothing for the role's structure;
- ``task_here``: another structure's case holding an open task for the role's structure
  (the ML's part of a pathway, or an escalation to the pilot);
- ``handed_off``: the role's structure is on the care team, the open tasks are other structures';
- ``sensitive``: started by a sensitive structure (addiction care) and holding an open task for the
  role's structure all the same.

Actions: ``read`` (GET /cases/{id}, and whether GET /cases lists it), ``claim`` and ``complete`` a task of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from api.app import create_app
from api.auth import now_utc
from api.extensions import db
from engine import accounts
from engine.access import AccessLog
from engine.clock import DatabaseClock
from engine.db import Base, transaction
from engine.demo import deploy_pathways
from engine.directory import Structure, StructureCoverage, user_by_email
from engine.directory_io import seed_demo
from tests.api_support import ADMIN, CD_REFERENT, DESIGNER, ML_REFERENT, ML_SUPERVISOR, PILOT
from tests.conftest import SIMULATION_START

ROLES = {"referent": ML_REFERENT, "supervisor": ML_SUPERVISOR, "designer": DESIGNER, "admin": ADMIN,
         "pilot": PILOT}
KINDS = ("own", "other", "task_here", "handed_off", "sensitive")
ACTIONS = ("read", "claim", "complete")

# The expected status of each action, by role then kind of case:
#                  own   other  task_here  handed_off  sensitive
EXPECTED = {
    "referent": {
        "read":     (200,  404,   200,       200,        404),
        "claim":    (200,  404,   200,       403,        404),
        "complete": (200,  404,   200,       403,        404),
    },
    "supervisor": {
        "read":     (200,  404,   200,       200,        404),
        "claim":    (200,  404,   200,       403,        404),
        "complete": (200,  404,   200,       403,        404),
    },
    "designer": {
        "read":     (404,  404,   404,       404,        404),
        "claim":    (404,  404,   404,       404,        404),
        "complete": (404,  404,   404,       404,        404),
    },
    "admin": {
        "read":     (404,  404,   404,       404,        404),
        "claim":    (404,  404,   404,       404,        404),
        "complete": (404,  404,   404,       404,        404),
    },
    "pilot": {
        "read":     (200,  404,   200,       200,        404),
        "claim":    (200,  404,   200,       403,        404),
        "complete": (200,  404,   200,       403,        404),
    },
}

SPIE_REFERENT = "referent.spie@example.org"
ASE_REFERENT = "referent.ase@example.org"
CSAPA_REFERENT = "referente.csapa@example.org"
ML_PATHWAY, ASE_PATHWAY = "jeune-sortant-mission-locale", "jeune-sortant-ase"
FORM_DATA = {
    "preparer-sortie": {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution", "synthese": "RSA"},
    "alerter-majorite-sans-entretien": {"action": "relance-effectuee", "date_action": "2026-01-06"},
}
# How each kind of case is built, for the ML (référent, supervisor) and for the pilot structure (the others):
# (who starts it, which pathway, which task is the one to claim or complete). The persons are born in 2001: at
# the start of the ASE pathway their majority is long past, so the pilot is alerted at once.
CASES = {
    "ml": {
        "own": (ML_REFERENT, ML_PATHWAY, "preparer-sortie"),
        "other": (CD_REFERENT, "brsa-oriente-social", "premier-rendez-vous"),
        "task_here": (CD_REFERENT, ML_PATHWAY, "preparer-sortie"),
        "handed_off": (ML_REFERENT, "demandeur-emploi-freins", "designer-conseiller"),
        "sensitive": (CSAPA_REFERENT, ML_PATHWAY, "preparer-sortie"),
    },
    "spie": {
        "own": (SPIE_REFERENT, ASE_PATHWAY, "alerter-majorite-sans-entretien"),
        "other": (CD_REFERENT, "brsa-oriente-social", "premier-rendez-vous"),
        "task_here": (ASE_REFERENT, ASE_PATHWAY, "alerter-majorite-sans-entretien"),
        "handed_off": (SPIE_REFERENT, "demandeur-emploi-freins", "designer-conseiller"),
        "sensitive": (CSAPA_REFERENT, ASE_PATHWAY, "alerter-majorite-sans-entretien"),
    },
}


def _clear(engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@dataclass
class World:
    """The demo directory and pathways, plus a sensitive structure, seeded once per database for this module."""

    app: object
    engine: object
    tokens: dict[str, dict]
    persons: int = 0

    def seed(self) -> None:
        _clear(self.engine)
        self.app.extensions["spie"].clock = DatabaseClock(start=SIMULATION_START)
        with self.app.app_context():
            with transaction(db.session):
                seed_demo(db.session)
                structure = Structure(type="association", name="CSAPA Essonne (addictologie)", sensitive=True,
                                      demo=True, coverage=[StructureCoverage(commune_insee="91228")])
                db.session.add(structure)
                db.session.flush()
                accounts.create_user(db.session, email=CSAPA_REFERENT, name="Référente CSAPA", role="referent",
                                     structure_id=structure.id, password=None, now=now_utc())
            deploy_pathways(db.session, self.app.extensions["spie"], deployed_by=DESIGNER)
            # Tokens issued directly (argon2 logins are tested elsewhere and slow here).
            with transaction(db.session):
                self.tokens = {email: {"Authorization": "Bearer " + accounts.issue_token(
                    db.session, user_by_email(db.session, email), now_utc())}
                    for email in {*ROLES.values(), SPIE_REFERENT, ASE_REFERENT, CD_REFERENT, CSAPA_REFERENT}}

    def intact(self) -> bool:
        """False if another module's test emptied the database in between (then it is seeded again)."""
        with self.app.app_context():
            return db.session.scalar(select(Structure.id).where(Structure.sensitive.is_(True))) is not None


@pytest.fixture(scope="module")
def world(database_url, migrated_engine, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPIE_INSTANCE_PATH", str(tmp_path_factory.mktemp("instance")))
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SPIE_SIMULATION": True, "TESTING": True})
    world = World(app, migrated_engine, {})
    world.seed()
    yield world
    _clear(migrated_engine)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def env(world):
    if not world.intact():
        world.seed()
    return world


def _build(env: World, client, role: str, kind: str) -> tuple[int, int, str]:
    """Start the case of this kind for this role's structure; its id, the task to act on, and that task's id."""
    starter, key, bpmn_id = CASES["ml" if role in ("referent", "supervisor") else "spie"][kind]
    env.persons += 1
    person = {"first_name": "Personne", "last_name": f"Matrice{env.persons}", "birth_date": "2001-01-02",
              "commune_insee": "91228"}
    created = client.post("/api/v1/cases", headers=env.tokens[starter], json={"person": person, "pathway_key": key})
    assert created.status_code == 201, created.json
    tasks = {t["bpmn_id"]: t for t in created.json["open_tasks"]}
    task = tasks[bpmn_id]
    if task["assignee"] == starter:  # handed to its starter at once: release it, so that claiming means something
        assert client.post(f"/api/v1/tasks/{task['id']}/release", headers=env.tokens[starter]).status_code == 200
    return created.json["id"], task["id"], bpmn_id


def _matrix():
    for role in ROLES:
        for action in ACTIONS:
            for kind, status in zip(KINDS, EXPECTED[role][action], strict=True):
                yield pytest.param(role, kind, action, status, id=f"{role}-{kind}-{action}-{status}")


@pytest.mark.parametrize("role, kind, action, expected", list(_matrix()))
def test_access(env, role, kind, action, expected):
    client = env.app.test_client()
    case_id, task_id, bpmn_id = _build(env, client, role, kind)
    headers = env.tokens[ROLES[role]]
    if action == "read":
        response = client.get(f"/api/v1/cases/{case_id}", headers=headers)
        listed = {c["id"] for c in client.get("/api/v1/cases?per_page=200", headers=headers).json}
        assert (case_id in listed) == (expected == 200), "GET /cases must list exactly the readable cases"
    elif action == "claim":
        response = client.post(f"/api/v1/tasks/{task_id}/claim", headers=headers)
    else:
        response = client.post(f"/api/v1/tasks/{task_id}/complete", headers=headers,
                               json={"data": FORM_DATA.get(bpmn_id, {})})
    assert response.status_code == expected, response.json
    if expected != 200:
        assert response.mimetype == "application/problem+json"
    if expected == 404:  # indistinguishable from a case or task that does not exist
        what = "case" if action == "read" else "task"
        assert response.json["detail"] == f"{what} {case_id if action == 'read' else task_id} does not exist"
    # Every access, allowed or denied, is in the log with its outcome, under the caller's name.
    with env.app.app_context():
        user_id = user_by_email(db.session, ROLES[role]).id
        logged = db.session.execute(select(AccessLog.action, AccessLog.outcome).where(
            AccessLog.case_id == case_id, AccessLog.user_id == user_id)).all()
    action_name = {"read": "case.read", "claim": "task.claim", "complete": "task.complete"}[action]
    assert (action_name, "allowed" if expected == 200 else "denied") in logged, logged


def test_sensitive_case_is_visible_to_its_own_care_team(env):
    client = env.app.test_client()
    case_id, task_id, _ = _build(env, client, "referent", "sensitive")
    csapa = env.tokens[CSAPA_REFERENT]
    assert client.get(f"/api/v1/cases/{case_id}", headers=csapa).status_code == 200
    assert case_id in {c["id"] for c in client.get("/api/v1/cases", headers=csapa).json}
    # The ML holds a task on it, which its people can neither see in their inbox nor open.
    ml = env.tokens[ML_REFERENT]
    assert task_id not in {t["id"] for t in client.get("/api/v1/tasks?scope=structure", headers=ml).json}
    assert client.get(f"/api/v1/tasks/{task_id}", headers=ml).status_code == 404
