"""Helpers for the offer and prescription page tests (no tests here): the demo catalogue and Mme X.

Mme X: an RSA beneficiary living alone with her two-year-old son at Évry-Courcouronnes. The
Département's référent (MDS Centre) opens « Entrée et diagnostic » for her; her diagnostic
records the childcare barrier (« Contraintes familiales (dont garde d'enfants) »), which the
demo catalogue's single Essonne « garde d'enfants » scheme lifts; its provider is the CAF.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from api.extensions import db
from engine import cases
from engine.db import transaction
from engine.directory import user_by_email
from engine.models import HumanTask
from engine.offers import seed_demo_offers
from engine.prescriptions import Prescription
from tests.api_support import CD_REFERENT
from tests.conftest import SIMULATION_START
from tests.test_web_support import complete, start_entry_diagnostic

CHILDCARE = "demo--garde-enfants-essonne"
CHILDCARE_NAME = "Solution garde d'enfants pour la reprise d'emploi"
DRIVING = "demo--auto-ecole-sociale-grand-paris-sud"  # for professionals only, Grand Paris Sud
CAF_REFERENT = "referent.caf@example.org"
FT_REFERENT = "referent.ft-evry@example.org"
CHILDCARE_BARRIER = "Contraintes familiales (dont garde d'enfants)"

MME_X = {"first_name": "Aurélie", "last_name": "Xavier", "birth_date": "1994-03-12", "commune_insee": "91228"}
_NO = {"valeur": "NON"}
MME_X_DIAGNOSTIC = {
    "date_diagnostic": "2026-01-05",
    "situation_professionnelle": "recherche_emploi",
    "niveau_formation": "NV4",
    "freins": {"mobilite": _NO, "sante": _NO, "maitrise_langue": _NO, "logement": _NO,
               "difficulte_financiere": _NO, "difficulte_administrative": _NO,
               "contraintes_familiales": {"valeur": "OUI",
                                          "situation": "Élève seule son fils de 2 ans, sans mode de garde."}},
    "besoins": ["trouver_un_emploi"],
    "synthese": "Bénéficiaire du RSA, souhaite reprendre un emploi dès qu'une garde est trouvée.",
    "consentement_partage": True,
}


@pytest.fixture
def catalogue(seeded):
    """The seeded demo app with the demo offer catalogue."""
    with seeded.app_context(), transaction(db.session):
        seed_demo_offers(db.session, SIMULATION_START)
    return seeded


def mme_x_case(app, email: str = CD_REFERENT, person: dict = MME_X) -> int:
    """Her « Entrée et diagnostic » case, diagnostic done by the Département's référent."""
    ids = start_entry_diagnostic(app, email, person)
    complete(app, ids["diagnostic_id"], MME_X_DIAGNOSTIC, email)
    return ids["case_id"]


def job_seeker_at_prescription(app, person: dict = MME_X) -> dict:
    """« Demandeur d'emploi avec freins » opened by France Travail; both référents named; the Département's
    référent now has « Prescrire une offre pour lever un frein »."""
    ctx = app.extensions["spie"]
    with app.app_context():
        counsellor = user_by_email(db.session, FT_REFERENT)
        with transaction(db.session):
            found = cases.find_or_create_person(db.session, ctx, person)
            case_id = cases.start_case(db.session, ctx, "demandeur-emploi-freins", actor=counsellor.email,
                                       person=found, referent=counsellor).id
    for bpmn_id, email in (("designer-conseiller", FT_REFERENT), ("designer-referent-social", CD_REFERENT)):
        complete(app, open_task(app, case_id, bpmn_id), {"referent_email": email, "date_designation": "2026-01-05"},
                 email)
    return {"case_id": case_id, "task_id": open_task(app, case_id, "prescrire-offre")}


def open_task(app, case_id: int, bpmn_id: str) -> int | None:
    with app.app_context():
        return db.session.scalar(select(HumanTask.id).where(
            HumanTask.case_id == case_id, HumanTask.bpmn_id == bpmn_id, HumanTask.state.in_(("open", "claimed"))))


def prescriptions_of(app, **where) -> list[Prescription]:
    with app.app_context():
        query = select(Prescription).order_by(Prescription.id)
        for name, value in where.items():
            query = query.where(getattr(Prescription, name) == value)
        found = list(db.session.scalars(query))
        for item in found:
            db.session.expunge(item)
        return found
