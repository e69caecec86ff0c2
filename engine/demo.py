"""The demo: passwords for the seeded demo accounts, and the pathways of bpmn/ deployed in order."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import pathways
from engine.accounts import hash_password
from engine.context import EngineContext
from engine.db import transaction
from engine.directory import Structure, User
from engine.paths import BPMN_DIR

# Printed by `spie demo`; demo accounts only exist in demo databases (their structures are flagged demo).
DEMO_PASSWORD = "essonne-demo-2026"

# Called pathways first: a pathway can only call what is already deployed.
DEPLOY_ORDER = ["passage-de-relais", "brsa-oriente-social", "jeune-sortant-ase", "demandeur-emploi-freins",
                "entree-diagnostic", "jeune-sortant-mission-locale", "prescription-offre"]
DECISIONS = {"entree-diagnostic": ["orientation.dmn"]}


def pathway_files(directory: Path = BPMN_DIR) -> list[tuple[Path, list[Path]]]:
    return [(directory / f"{key}.bpmn", [directory / name for name in DECISIONS.get(key, [])])
            for key in DEPLOY_ORDER]


def deploy_pathways(session: Session, ctx: EngineContext, *, deployed_by: str,
                    directory: Path = BPMN_DIR) -> list[pathways.DeployResult]:
    """Deploy the pathways of ``directory`` in :data:`DEPLOY_ORDER`, each in its own transaction."""
    results = []
    for bpmn, dmns in pathway_files(directory):
        with transaction(session):
            results.append(pathways.deploy(session, ctx, bpmn.read_bytes(), [d.read_bytes() for d in dmns],
                                           deployed_by=deployed_by))
    return results


def set_demo_passwords(session: Session, password: str) -> list[User]:
    """Give every account of a demo structure the demo password (hashing once)."""
    users = list(session.scalars(select(User).join(Structure, Structure.id == User.structure_id)
                                 .where(Structure.demo.is_(True)).order_by(User.structure_id, User.id)))
    hashed = hash_password(password)
    for user in users:
        user.password_hash = hashed
    return users
