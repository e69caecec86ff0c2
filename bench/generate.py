#!/usr/bin/env python
"""A national-size SPIE data set on PostgreSQL, bulk-loaded with COPY.

    python bench/generate.py [--cases 2000000] [--postgres-url URL] [--database spie_scale]
                             [--territories T] [--writers 2] [--replace] [--check-sample N] [--json FILE]

1. Creates the database (or reuses one this script completed), migrates it
   (``engine.schema.upgrade_database``), seeds the Essonne directory, its
   demo accounts (``seed_demo``, password ``DEMO_PASSWORD``) and the demo offer
   catalogue, deploys the six pathways.
2. Walks every pathway with the engine on simulated time
   (bench/scale_templates.py): about sixty real cases, snapshot after each
   command. These *templates* stay in the database as ordinary cases.
3. Clones the Essonne directory into T-1 synthetic départements (one per
   ~40,000 cases: the Essonne's share of a national two million), each with its
   194 communes, 33 structures and pilot; adds référents and supervisors to every
   structure in proportion to the cases it will hold (~80 cases per référent),
   all with the password ``BENCH_PASSWORD``.
4. Streams N cases with COPY: each is a template snapshot copied for a person
   of a commune drawn by population, its structures those of that commune,
   its people drawn from those structures, its times shifted so that it sits
   somewhere in its step (no timer already due): persons, cases (the real
   serialized state, names and due dates substituted), care_team_member,
   human_task (history and open), timer and case_event rows. Secondary indexes
   and foreign keys are dropped during the load and rebuilt after, then
   VACUUM ANALYZE.

Prints rows/s per phase and the total; ``--json`` writes every figure.
"""
from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import queue  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import date, datetime, timezone  # noqa: E402

import psycopg  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bench.scale_common import (BENCH_PASSWORD, DAY_US, NULL, US, TimestampFormatter, admin_url,  # noqa: E402
                                copy_escape, create_database, database_exists, database_size, database_url,
                                from_epoch_us, human_bytes, libpq_url, table_sizes, to_epoch_us)
from bench.scale_templates import Template, build_templates, describe  # noqa: E402
from engine import pathways  # noqa: E402
from engine.accounts import hash_password  # noqa: E402
from engine.clock import DatabaseClock  # noqa: E402
from engine.context import EngineContext  # noqa: E402
from engine.db import make_engine, make_session_factory, transaction  # noqa: E402
from engine.demo import DEMO_PASSWORD, pathway_files, set_demo_passwords  # noqa: E402
from engine.directory import Commune, Structure, StructureCoverage  # noqa: E402
from engine.directory_io import seed_demo  # noqa: E402
from engine.offers import seed_demo_offers  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402

DEFAULT_DATABASE = "spie_scale"
CASES_PER_TERRITORY = 40_000  # Essonne: ~2 % of the national RSA and job-seeker population
CASES_PER_REFERENT = 80
TEMPLATE_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
BULK_TABLES = ("person", "case", "care_team_member", "human_task", "timer", "case_event")
# Département codes for the synthetic territories (Essonne, 91, is the real one).
DEPARTEMENTS = [f"{n:02d}" for n in range(1, 96) if n not in (20, 91)]
# How long a generated case may have been sitting in its step (no timer due meanwhile).
WAIT_WITHOUT_TIMER = 45 * DAY_US
CLOSED_SPREAD = 540 * DAY_US
MAX_WAIT = 400 * DAY_US
# Share of the cases per template walk beyond the walk's own weight: closed cases are a good part of any stock.
CLOSED_WEIGHT = 12.0
IDLE_WEIGHT = 0.5  # snapshots with no open task (waiting six months for a review, say)
# The per-database settings docs/operations.md recommends, which the read benchmarks measure.
DATABASE_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}
# Active cases also followed by a sensitive structure (addiction care): visible to their care team only.
SENSITIVE_SHARE = 1 / 30

FIRST_NAMES = ("Inès Léa Jade Louise Emma Chloé Manon Camille Sarah Lina Zoé Alice Mila Nour Lucie Yasmine Nadia "
               "Sophie Julie Aminata Fatoumata Samira Sylvie Isabelle Nathalie Céline Aurélie Claire Hélène Marie "
               "Lucas Hugo Louis Gabriel Arthur Jules Adam Rayan Nathan Yanis Kévin Mohamed Karim Thomas Nicolas "
               "Julien Maxime Antoine Alexandre Romain Mehdi Bilal Ibrahim Moussa Mamadou Sébastien David Pierre "
               "Paul Théo Enzo Noah Ethan Sacha Ali Omar Axel Bastien Quentin").split()
LAST_NAMES = ("Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefebvre Leroy "
              "Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau Vincent Muller "
              "Lefèvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier François Legrand Gauthier Garcia "
              "Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont "
              "Marie Lemaire Noël Meyer Dufour Meunier Brun Blanchard Giraud Joly Rivière Lucas Brunet Gaillard "
              "Barbier Arnaud Martinez Gérard Roche Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger "
              "Fabre Aubert Lemoine Renaud Dumas Lacroix Olivier Philippe Bourgeois Pierre Benoît Rey Leclerc "
              "Payet Rolland Leclercq Guillaume Lecomte Lopez Jean Dupuy Guillot Hubert Berger Carpentier Sanchez "
              "Dupuis Moulin Louis Deschamps Huet Vasseur Perez Boucher Fleury Royer Klein Jacquet Adam Paris "
              "Poirier Marty Aubry Guyot Carré Charles Renault Charpentier Ménard Maillard Baron Bertin Bailly "
              "Hervé Schneider Fernandez Le Gall Collet Léger Bouvier Julien Prévost Millet Perrot Daniel Diallo "
              "Traoré Haddad Benali Kone Diop Ndiaye Camara Cissé Sylla Nguyen Tran Ferreira Da Silva Rodrigues "
              "Mendes Lopes Gomes Bouzid Belkacem Mansouri Cherif Amrani Saidi Hamidi").split()


# --------------------------------------------------------------------------- set-up


def log(message: str = "") -> None:
    print(message, flush=True)


def prepare(url: str) -> tuple[list[Template], dict]:
    """Migrate, seed Essonne, deploy the pathways, walk them: the templates."""
    engine = make_engine(url)
    timings = {}
    started = time.perf_counter()
    upgrade_database(engine)
    factory = make_session_factory(engine)
    ctx = EngineContext(clock=DatabaseClock(start=TEMPLATE_START))
    with factory() as session, transaction(session):
        seed_demo(session)
        set_demo_passwords(session, DEMO_PASSWORD)
        seed_demo_offers(session, TEMPLATE_START)  # the templates' prescriptions name a demo offer
    for bpmn, dmns in pathway_files():
        with factory() as session, transaction(session):
            pathways.deploy(session, ctx, bpmn.read_bytes(), [d.read_bytes() for d in dmns], deployed_by="bench")
    timings["migrate_seed_deploy_s"] = time.perf_counter() - started
    started = time.perf_counter()
    templates = build_templates(factory, ctx, log=log)
    timings["templates_s"] = time.perf_counter() - started
    engine.dispose()
    return templates, timings


# --------------------------------------------------------------------------- directory


@dataclass
class Directory:
    """Territories, communes with their population, who covers what, and the staff of each structure."""

    territories: list[str]  # département codes; [0] is the Essonne
    communes: list[tuple[int, str, int]] = field(default_factory=list)  # (territory, insee, population)
    cover: dict[tuple[str, str], int] = field(default_factory=dict)  # (insee, type) -> structure id
    pilot: dict[int, int] = field(default_factory=dict)  # territory -> pilot structure id
    clone: dict[tuple[int, int], int] = field(default_factory=dict)  # (territory, Essonne structure id) -> id
    staff: dict[tuple[int, str], list[tuple[int, str]]] = field(default_factory=dict)  # (sid, role) -> users
    structures: int = 0
    users: int = 0


def _clone_insee(code: str, insee: str) -> str:
    return insee if code == "91" else code + insee[2:]


def expand_directory(url: str, territories: int, cases: int, involvement: dict[str, float], log=log) -> Directory:
    """Clone the Essonne into synthetic départements and staff every structure for its expected load."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    codes = ["91", *DEPARTEMENTS[:territories - 1]]
    directory = Directory(codes)
    with factory() as session:
        communes = list(session.scalars(select(Commune).where(Commune.insee.like("91%")).order_by(Commune.insee)))
        essonne = list(session.scalars(select(Structure).order_by(Structure.id)))
        coverage = defaultdict(list)
        for sc in session.scalars(select(StructureCoverage)):
            coverage[sc.structure_id].append((sc.commune_insee, sc.via_epci))
        already_cloned = session.scalar(select(func.count()).select_from(Structure).where(Structure.demo.is_(False)))
    if already_cloned:
        raise SystemExit("the directory was already expanded: use --replace")
    population = {c.insee: c.population or 0 for c in communes}
    cases_per_territory = cases / len(codes)
    territory_population = sum(population.values())

    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM structure")
        next_structure = cur.fetchone()[0] + 1
        commune_lines, structure_lines, coverage_lines = [], [], []
        structures_by_territory: dict[int, list[tuple[int, Structure]]] = {}
        for t, code in enumerate(codes):
            mapping = []
            for s in essonne:
                if t == 0:
                    sid = s.id
                else:
                    sid = next_structure
                    next_structure += 1
                    structure_lines.append("\t".join([
                        str(sid), s.type, copy_escape(f"{s.name} ({code})"), NULL,
                        copy_escape(s.email.replace("@", f"+{code}@")) if s.email else NULL, NULL, NULL,
                        "t" if s.sensitive else "f", "t" if s.is_pilot else "f", "f"]) + "\n")
                    for insee, via in coverage[s.id]:
                        coverage_lines.append(f"{sid}\t{_clone_insee(code, insee)}\t"
                                              f"{_clone_insee(code, via) if via else NULL}\n")
                directory.clone[(t, s.id)] = sid
                mapping.append((sid, s))
                if s.is_pilot:
                    directory.pilot.setdefault(t, sid)
                for insee, _ in coverage[s.id]:
                    directory.cover.setdefault((_clone_insee(code, insee), s.type), sid)
            structures_by_territory[t] = mapping
            for c in communes:
                insee = _clone_insee(code, c.insee)
                directory.communes.append((t, insee, c.population or 0))
                if t:
                    commune_lines.append("\t".join([
                        insee, copy_escape(f"{c.name} ({code})"), copy_escape(json.dumps(c.postcodes or [])),
                        str(c.population or 0), _clone_insee(code, c.epci_siren) if c.epci_siren else NULL,
                        copy_escape(f"{c.epci_name} ({code})") if c.epci_name else NULL]) + "\n")
        with cur.copy("COPY commune (insee, name, postcodes, population, epci_siren, epci_name) FROM STDIN") as cp:
            cp.write("".join(commune_lines))
        with cur.copy("COPY structure (id, type, name, siret, email, phone, address, sensitive, is_pilot, demo) "
                      "FROM STDIN") as cp:
            cp.write("".join(structure_lines))
        with cur.copy("COPY structure_coverage (structure_id, commune_insee, via_epci) FROM STDIN") as cp:
            cp.write("".join(coverage_lines))
        cur.execute("SELECT setval(pg_get_serial_sequence('structure', 'id'), (SELECT max(id) FROM structure))")

        # Staff: référents in proportion to the cases each structure will hold.
        cur.execute("SELECT id, structure_id, role, email FROM app_user WHERE active ORDER BY id")
        existing = defaultdict(list)
        for uid, sid, role, email in cur.fetchall():
            existing[(sid, role)].append((uid, email))
        cur.execute("SELECT coalesce(max(id), 0) FROM app_user")
        next_user = cur.fetchone()[0] + 1
        password_hash = hash_password(BENCH_PASSWORD)
        now = datetime.now(timezone.utc).isoformat()
        user_lines = []
        for t, mapping in structures_by_territory.items():
            for sid, s in mapping:
                covered = sum(population.get(insee, 0) for insee, _ in coverage[s.id])
                if s.is_pilot:
                    expected = cases_per_territory * involvement.get("pilot", 0.0)
                else:
                    expected = cases_per_territory * (covered / territory_population) * involvement.get(s.type, 0.0)
                referents = max(2, math.ceil(expected / CASES_PER_REFERENT))
                supervisors = 1 + referents // 20
                if s.is_pilot:
                    referents, supervisors = 1, 2
                for role, wanted in (("referent", referents), ("supervisor", supervisors)):
                    have = list(existing.get((sid, role), []))
                    for k in range(len(have), wanted):
                        email = f"{role[:3]}{k}.s{sid}@bench.example.org"
                        user_lines.append(f"{next_user}\t{email}\t{copy_escape(f'{role.title()} {k} — {s.name}')}"
                                          f"\t{role}\t{sid}\tt\t{password_hash}\t{now}\n")
                        have.append((next_user, email))
                        next_user += 1
                    directory.staff[(sid, role)] = have
        with cur.copy("COPY app_user (id, email, name, role, structure_id, active, password_hash, created_at) "
                      "FROM STDIN") as cp:
            cp.write("".join(user_lines))
        cur.execute("SELECT setval(pg_get_serial_sequence('app_user', 'id'), (SELECT max(id) FROM app_user))")
        conn.commit()
        cur.execute("SELECT count(*) FROM structure")
        directory.structures = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM app_user")
        directory.users = cur.fetchone()[0]
    engine.dispose()
    return directory


# --------------------------------------------------------------------------- templates compiled for COPY


class Slotted:
    """A text with slots: literal parts (already COPY-escaped) between named slots."""

    __slots__ = ("parts", "slots")

    def __init__(self, text_value: str, tokens: dict[str, object]):
        if not tokens:
            self.parts, self.slots = [copy_escape(text_value)], []
            return
        pattern = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
        parts, slots, position = [], [], 0
        for match in pattern.finditer(text_value):
            parts.append(copy_escape(text_value[position:match.start()]))
            slots.append(tokens[match.group(0)])
            position = match.end()
        parts.append(copy_escape(text_value[position:]))
        self.parts, self.slots = parts, slots

    def render(self, values) -> str:
        if not self.slots:
            return self.parts[0]
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:]):
            out.append(values(slot))
            out.append(part)
        return "".join(out)


def _c(value) -> str:
    """A constant column in COPY text."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    return copy_escape(str(value))


@dataclass
class Compiled:
    template: Template
    weight: float
    headroom_us: int
    state: Slotted
    birth: date
    case_const: str
    task_rows: list = field(default_factory=list)
    timer_rows: list = field(default_factory=list)
    event_rows: list = field(default_factory=list)
    member_rows: list = field(default_factory=list)
    user_slots: list = field(default_factory=list)  # template emails, in a fixed order
    structure_ids: list = field(default_factory=list)
    open_count: int = 0
    escalated_count: int = 0
    open_dues: list = field(default_factory=list)  # due offsets of the open tasks


def compile_template(t: Template, weight: float) -> Compiled:
    first, last, birth = t.person
    tokens: dict[str, object] = {json.dumps(first): ("name", "first"), json.dumps(last): ("name", "last"),
                                 f'"birth_date": "{birth}"': ("birth",)}
    for due in t.due_strings:
        due_us = to_epoch_us(datetime.fromisoformat(due))
        tokens[json.dumps(due)] = ("due", due_us - t.snapshot_us)
    state = Slotted(t.state, tokens)
    if t.status == "closed":
        headroom = CLOSED_SPREAD
    elif t.next_timer_off is None:
        headroom = WAIT_WITHOUT_TIMER
    else:
        headroom = max(0, t.next_timer_off - 60 * US)
    headroom = min(headroom, MAX_WAIT)
    users = sorted(t.users)
    compiled = Compiled(
        template=t, weight=weight, headroom_us=headroom, state=state, birth=date.fromisoformat(birth),
        case_const="\t".join([_c(t.pathway_version_id), _c(t.status), _c(t.serializer_version), NULL,
                              _c(t.version), _c(t.exit_reason)]),
        user_slots=users, structure_ids=sorted(t.structures))
    for r in t.tasks:
        const = "\t".join(_c(r[k]) for k in ("task_uuid", "bpmn_id", "name", "lane", "form_key", "state",
                                              "escalation_level", "audience", "unassigned", "version"))
        compiled.task_rows.append((const, r["assignee"], r["completed_by"], r["structure_id"], r["created_off"],
                                   r["due_off"], r["ended_off"]))
    for r in t.timers:
        const = "\t".join(_c(r[k]) for k in ("task_uuid", "bpmn_id", "kind", "state", "fired_count"))
        compiled.timer_rows.append((const, r["due_off"], r["last_fired_off"]))
    for r in t.events:
        summary_tokens: dict[str, object] = {}
        summary = dict(r["summary"])
        for key, value in list(summary.items()):
            if key == "timer_id" and isinstance(value, tuple):
                token = f"@@timer{value[1]}@@"
                summary[key], summary_tokens[f'"{token}"'] = token, ("timer", value[1])
            elif key == "structure_id" and isinstance(value, int) and value in t.structures:
                token = f"@@structure{value}@@"
                summary[key], summary_tokens[f'"{token}"'] = token, ("structure", value)
            elif key in ("user", "assignee") and value in t.users:
                token = f"@@user{users.index(value)}@@"
                summary[key], summary_tokens[f'"{token}"'] = token, ("user", value)
        body = Slotted(json.dumps(summary), summary_tokens)
        const = "\t".join(_c(r[k]) for k in ("kind", "bpmn_id", "task_uuid"))
        compiled.event_rows.append((const, r["actor"], r["at_off"], body))
    for r in t.members:
        email = t.user_ids.get(r["user_id"]) if r["user_id"] else None
        const = "\t".join(_c(r[k]) for k in ("role", "end_reason"))
        compiled.member_rows.append((const, r["structure_id"], email, r["started_off"], r["ended_off"]))
    return compiled


def template_weights(templates: list[Template]) -> list[float]:
    weights = []
    for t in templates:
        w = t.weight * max(1, len(t.tasks))
        if t.status == "closed":
            w *= CLOSED_WEIGHT
        elif t.open_tasks == 0:
            w *= IDLE_WEIGHT
        weights.append(w)
    return weights


def involvement(templates: list[Template], weights: list[float]) -> dict[str, float]:
    """Per structure type, the share of cases that involve a structure of that type (for staffing)."""
    total = sum(weights)
    share: dict[str, float] = defaultdict(float)
    for t, w in zip(templates, weights):
        kinds = {"pilot" if pilot else kind for kind, pilot in t.structures.values()}
        for kind in kinds:
            share[kind] += w / total
    return dict(share)


# --------------------------------------------------------------------------- the load


COLUMNS = {
    "person": "id, first_name, last_name, birth_date, commune_insee, contact, created_at",
    "case": "id, person_id, commune_insee, pathway_version_id, status, serializer_version, incident, version, "
            "exit_reason, created_by, created_at, updated_at, ended_at, next_timer_at, state",
    "care_team_member": "id, case_id, role, end_reason, structure_id, user_id, started_at, ended_at",
    "human_task": "id, case_id, task_uuid, bpmn_id, name, lane, form_key, state, escalation_level, audience, "
                  "unassigned, version, assignee, completed_by, structure_id, created_at, due_at, ended_at",
    "timer": "id, case_id, task_uuid, bpmn_id, kind, state, fired_count, due_at, last_fired_at",
    "case_event": "id, case_id, kind, bpmn_id, task_uuid, actor, at, summary",
}


@dataclass
class Counters:
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    state_bytes: int = 0
    open_tasks: int = 0
    overdue_tasks: int = 0
    closed: int = 0
    escalated: int = 0


class CaseWriter:
    """Builds the COPY text of N cases from compiled templates; ids continue after the existing rows."""

    def __init__(self, compiled: list[Compiled], directory: Directory, next_ids: dict[str, int], now_us: int,
                 seed: int, age_us=None):
        self.compiled = compiled
        # Default: a case sits anywhere in its step before its next timer; ``age_us(rng, compiled)`` overrides
        # how long ago it reached it (the timer storm puts every case past its due time).
        self.age_us = age_us
        self.directory = directory
        self.ids = dict(next_ids)
        self.now_us = now_us
        self.rng = random.Random(seed)
        self.ts = TimestampFormatter()
        self.counters = Counters()
        self.template_cum = list(_cumulative([c.weight for c in compiled]))
        self.commune_cum = list(_cumulative([p for _, _, p in directory.communes]))
        self.dates: dict[int, str] = {}
        # (insee, Essonne structure id) -> structure id of that role for a case of this commune.
        self.structure_of: dict[tuple[str, int], int] = {}
        self.template_structures = {sid: kind for c in compiled for sid, kind in c.template.structures.items()}

    def _structure(self, territory: int, insee: str, template_sid: int) -> int:
        key = (insee, template_sid)
        found = self.structure_of.get(key)
        if found is None:
            kind, pilot = self.template_structures[template_sid]
            if pilot:
                found = self.directory.pilot[territory]
            else:
                found = self.directory.cover.get((insee, kind)) or self.directory.clone[(territory, template_sid)]
            self.structure_of[key] = found
        return found

    def _date(self, ordinal: int) -> str:
        text_value = self.dates.get(ordinal)
        if text_value is None:
            text_value = self.dates[ordinal] = date.fromordinal(ordinal).isoformat()
        return text_value

    def chunk(self, count: int) -> dict[str, str]:
        rng, ts, ids, counters, now_us = self.rng, self.ts, self.ids, self.counters, self.now_us
        out = {table: [] for table in COLUMNS}
        person_out, case_out, task_out = out["person"], out["case"], out["human_task"]
        timer_out, event_out, member_out = out["timer"], out["case_event"], out["care_team_member"]
        choices = rng.choices(self.compiled, cum_weights=self.template_cum, k=count)
        places = rng.choices(self.directory.communes, cum_weights=self.commune_cum, k=count)
        staff = self.directory.staff
        for c, (territory, insee, _) in zip(choices, places):
            t = c.template
            case_id = ids["case"]
            ids["case"] += 1
            person_id = ids["person"]
            ids["person"] += 1
            age = self.age_us(rng, c) if self.age_us else int(rng.random() * c.headroom_us) // US * US
            base = now_us - age - t.snapshot_us  # the shift of every time of the template
            # Structures and people of this case.
            smap = {sid: self._structure(territory, insee, sid) for sid in c.structure_ids}
            emails, user_ids = {None: NULL}, {None: NULL}
            for email in c.user_slots:
                sid, role = t.users[email]
                candidates = staff.get((smap.get(sid, sid), role)) or staff.get((smap.get(sid, sid), "referent"))
                uid, new_email = candidates[int(rng.random() * len(candidates))]
                emails[email], user_ids[email] = new_email, str(uid)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            birth = self._date(c.birth.toordinal() + int(rng.random() * 300) - 150)
            created = base + t.snapshot_us + t.created_off
            person_out.append(f"{person_id}\t{first}\t{last}\t{birth}\t{insee}\t{{}}\t{ts(created)}\n")

            def state_slot(slot, snapshot_at=base + t.snapshot_us, first=first, last=last, birth=birth):
                kind = slot[0]
                if kind == "name":
                    return f'"{first if slot[1] == "first" else last}"'
                if kind == "birth":
                    return f'"birth_date": "{birth}"'
                return '"' + from_epoch_us(snapshot_at + slot[1]).isoformat() + '"'

            state_text = c.state.render(state_slot)
            counters.state_bytes += len(state_text)
            snap = base + t.snapshot_us
            case_out.append(
                f"{case_id}\t{person_id}\t{insee}\t{c.case_const}\t{emails.get(t.created_by, t.created_by)}\t"
                f"{ts(snap + t.created_off)}\t{ts(snap + t.updated_off)}\t"
                f"{NULL if t.ended_off is None else ts(snap + t.ended_off)}\t"
                f"{NULL if t.next_timer_off is None else ts(snap + t.next_timer_off)}\t{state_text}\n")
            if t.status == "closed":
                counters.closed += 1
            for const, assignee, completed_by, sid, created_off, due_off, ended_off in c.task_rows:
                task_out.append(
                    f"{ids['human_task']}\t{case_id}\t{const}\t{emails.get(assignee, assignee)}\t"
                    f"{emails.get(completed_by, completed_by)}\t{NULL if sid is None else smap[sid]}\t"
                    f"{ts(snap + created_off)}\t{NULL if due_off is None else ts(snap + due_off)}\t"
                    f"{NULL if ended_off is None else ts(snap + ended_off)}\n")
                ids["human_task"] += 1
            timer_ids = []
            for const, due_off, fired_off in c.timer_rows:
                timer_ids.append(ids["timer"])
                timer_out.append(f"{ids['timer']}\t{case_id}\t{const}\t{ts(snap + due_off)}\t"
                                 f"{NULL if fired_off is None else ts(snap + fired_off)}\n")
                ids["timer"] += 1

            def summary_slot(slot, smap=smap, emails=emails, timer_ids=timer_ids):
                kind, value = slot
                if kind == "timer":
                    return str(timer_ids[value])
                if kind == "structure":
                    return str(smap.get(value, value))
                return f'"{emails[value]}"'

            for const, actor, at_off, body in c.event_rows:
                event_out.append(f"{ids['case_event']}\t{case_id}\t{const}\t{emails.get(actor) or copy_escape(actor)}"
                                 f"\t{ts(snap + at_off)}\t{body.render(summary_slot)}\n")
                ids["case_event"] += 1
            for const, sid, email, started_off, ended_off in c.member_rows:
                member_out.append(f"{ids['care_team_member']}\t{case_id}\t{const}\t{smap[sid]}\t"
                                  f"{user_ids[email] if email else NULL}\t{ts(snap + started_off)}\t"
                                  f"{NULL if ended_off is None else ts(snap + ended_off)}\n")
                ids["care_team_member"] += 1
            counters.open_tasks += c.open_count
            counters.escalated += c.escalated_count
            counters.overdue_tasks += sum(1 for due_off in c.open_dues if snap + due_off < now_us)
        for table, lines in out.items():
            counters.rows[table] += len(lines)
        return {table: "".join(lines) for table, lines in out.items()}


def _cumulative(values):
    total = 0.0
    for v in values:
        total += v
        yield total


def _finish_compile(compiled: list[Compiled]) -> None:
    for c in compiled:
        open_rows = [r for r in c.template.tasks if r["state"] in ("open", "claimed")]
        c.open_count = len(open_rows)
        c.escalated_count = sum(1 for r in open_rows if r["escalation_level"])
        c.open_dues = [r["due_off"] for r in open_rows if r["due_off"] is not None]


# --------------------------------------------------------------------------- sensitive partners


def add_sensitive_partners(conn: psycopg.Connection, territories: list[str], share: float = SENSITIVE_SHARE) -> int:
    """Put each territory's addiction-care centre (a CSAPA, a *sensitive* structure) on the care team of
    ``share`` of its active cases, with one of its référents, as when it opened the case to the SPIE.

    Those cases are visible to their care team only (engine/access.py): the other structures holding one of
    their tasks must not see them, and the queries of the inboxes must test it on real data. Run after the
    COPY (explicit ids; the sequences are set afterwards); returns the care-team rows added.
    """
    cur = conn.cursor()
    cur.execute("SELECT coalesce(max(id), 0) FROM structure")
    next_structure = cur.fetchone()[0] + 1
    cur.execute("SELECT coalesce(max(id), 0) FROM app_user")
    next_user = cur.fetchone()[0] + 1
    every = round(1 / share)
    cur.execute("SELECT left(commune_insee, 2), count(*) FROM \"case\" WHERE status = 'active' AND id %% %s = 0 "
                "GROUP BY 1", (every,))
    followed = dict(cur.fetchall())
    password_hash = hash_password(BENCH_PASSWORD)
    now = datetime.now(timezone.utc).isoformat()
    structures, users, partners = [], [], []
    for code in territories:
        sid, next_structure = next_structure, next_structure + 1
        structures.append((sid, "association", f"CSAPA — addictologie ({code})", True, False, False))
        referents = []
        for role, count in (("referent", max(2, math.ceil(followed.get(code, 0) / CASES_PER_REFERENT))),
                            ("supervisor", 1)):
            for k in range(count):
                users.append((next_user, f"{role[:3]}{k}.s{sid}@bench.example.org",
                              f"{role.title()} {k} — CSAPA ({code})", role, sid, True, password_hash, now))
                if role == "referent":
                    referents.append(next_user)
                next_user += 1
        partners.append((code, sid, referents))
    cur.executemany("INSERT INTO structure (id, type, name, sensitive, is_pilot, demo) VALUES (%s, %s, %s, %s, %s, %s)",
                    structures)
    cur.executemany("INSERT INTO app_user (id, email, name, role, structure_id, active, password_hash, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", users)
    cur.execute("CREATE TEMP TABLE bench_partner (code text PRIMARY KEY, structure_id bigint, referents bigint[])")
    cur.executemany("INSERT INTO bench_partner VALUES (%s, %s, %s)", partners)
    cur.execute("""
        INSERT INTO care_team_member (id, case_id, role, structure_id, user_id, started_at)
        SELECT (SELECT coalesce(max(id), 0) FROM care_team_member) + row_number() OVER (ORDER BY c.id), c.id,
               'referent', p.structure_id, p.referents[1 + c.id %% cardinality(p.referents)], c.created_at
        FROM "case" c JOIN bench_partner p ON p.code = left(c.commune_insee, 2)
        WHERE c.status = 'active' AND c.id %% %s = 0""", (every,))
    added = cur.rowcount
    cur.execute("DROP TABLE bench_partner")
    for table in ("structure", "app_user"):
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    conn.commit()
    return added


# --------------------------------------------------------------------------- indexes and constraints


def drop_secondary(conn: psycopg.Connection) -> list[str]:
    """Drop secondary indexes, unique constraints and foreign keys of the bulk tables; return the DDL to rebuild."""
    names = list(BULK_TABLES)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS bench_deferred_ddl (position serial PRIMARY KEY, ddl text NOT NULL)")
    cur.execute("""
        SELECT c.conname, c.conrelid::regclass::text, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c
        WHERE c.contype IN ('f', 'u')
          AND (c.conrelid IN (SELECT oid FROM pg_class WHERE relname = ANY(%(t)s) AND relkind = 'r')
               OR c.confrelid IN (SELECT oid FROM pg_class WHERE relname = ANY(%(t)s) AND relkind = 'r'))
        ORDER BY c.contype DESC, c.conname""", {"t": names})
    constraints = cur.fetchall()
    cur.execute("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY(%(t)s) AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1""", {"t": names})
    indexes = cur.fetchall()
    rebuild = [ddl for _, ddl in indexes]
    rebuild += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
                for name, table, definition, kind in constraints if kind == "u"]
    rebuild += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
                for name, table, definition, kind in constraints if kind == "f"]
    for ddl in rebuild:
        cur.execute("INSERT INTO bench_deferred_ddl (ddl) VALUES (%s)", (ddl,))
    for name, table, _, kind in sorted(constraints, key=lambda c: c[3] != "f"):
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    conn.commit()
    return rebuild


def rebuild_secondary(conn: psycopg.Connection, log=log) -> list[tuple[str, float]]:
    """Run the DDL saved by :func:`drop_secondary` (also after an interrupted run)."""
    cur = conn.cursor()
    cur.execute("SELECT to_regclass('bench_deferred_ddl') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute("SET maintenance_work_mem = '512MB'")
    cur.execute("SELECT position, ddl FROM bench_deferred_ddl ORDER BY position")
    done = []
    for position, ddl in cur.fetchall():
        started = time.perf_counter()
        cur.execute(ddl)
        cur.execute("DELETE FROM bench_deferred_ddl WHERE position = %s", (position,))
        conn.commit()
        done.append((ddl, time.perf_counter() - started))
    cur.execute("DROP TABLE bench_deferred_ddl")
    conn.commit()
    return done


# --------------------------------------------------------------------------- consistency of a sample


def check_sample(url: str, count: int, seed: int = 5, log=log) -> dict:
    """``engine.consistency.check_cases`` on ``count`` random cases (the whole check takes about an hour per
    two million cases on one core: ``spie check`` does it; this is the quick look)."""
    from engine.consistency import check_cases

    engine = make_engine(url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    with factory() as session:
        top = session.scalar(text('SELECT max(id) FROM "case"'))
        rng = random.Random(seed)
        ids = sorted({rng.randint(1, top) for _ in range(count)})
        problems = check_cases(session, EngineContext(), ids)
        session.rollback()
    seconds = time.perf_counter() - started
    engine.dispose()
    log(f"consistency of a random sample: {len(ids):,} cases checked in {seconds:.1f} s "
        f"({len(ids) / seconds:,.0f} cases/s): {len(problems)} problem(s)")
    for problem in problems[:10]:
        log(f"  {problem}")
    return {"cases": len(ids), "seconds": seconds, "problems": len(problems)}


# --------------------------------------------------------------------------- main


def load_cases(url: str, compiled: list[Compiled], directory: Directory, cases: int, *, chunk: int, seed: int,
               now_us: int, writers: int = 2, age_us=None, log=log) -> tuple[Counters, float]:
    """Stream ``cases`` cases with COPY: the main thread builds chunks, ``writers`` connections write them."""
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        next_ids = {}
        for table in BULK_TABLES:
            cur.execute(f'SELECT coalesce(max(id), 0) + 1 FROM "{table}"')
            next_ids[table] = cur.fetchone()[0]
    writer = CaseWriter(compiled, directory, next_ids, now_us, seed, age_us=age_us)
    pending: queue.Queue = queue.Queue(maxsize=writers + 1)
    failure: list[BaseException] = []

    def copy_worker() -> None:
        try:
            with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
                # lz4 TOAST compression (PostgreSQL 14+): the states compress as well as with pglz, much faster.
                cur.execute("SET default_toast_compression = 'lz4'")
                while True:
                    item = pending.get()
                    if item is None:
                        return
                    for table in BULK_TABLES:
                        if item[table]:
                            with cur.copy(f'COPY "{table}" ({COLUMNS[table]}) FROM STDIN') as cp:
                                cp.write(item[table])
                    conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)
            while pending.get() is not None:  # unblock the producer
                pass

    threads = [threading.Thread(target=copy_worker, daemon=True) for _ in range(writers)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    done, last_report = 0, started
    while done < cases:
        size = min(chunk, cases - done)
        pending.put(writer.chunk(size))
        done += size
        if failure:
            break
        if time.perf_counter() - last_report > 30 or done == cases:
            elapsed = time.perf_counter() - started
            rows = sum(writer.counters.rows.values())
            log(f"  {done:>10,} cases  {rows:>12,} rows  {elapsed:7.1f} s  {done / elapsed:8.0f} cases/s "
                f"{rows / elapsed:9.0f} rows/s")
            last_report = time.perf_counter()
    for _ in threads:
        pending.put(None)
    for thread in threads:
        thread.join()
    if failure:
        raise failure[0]
    return writer.counters, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2_000_000)
    parser.add_argument("--postgres-url", default=None, help="admin URL of the server (default "
                        "SPIE_BENCH_POSTGRES_URL, SPIE_TEST_POSTGRES_URL, else the local server)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--territories", type=int, default=None,
                        help=f"Essonne + synthetic départements (default: one per {CASES_PER_TERRITORY:,} cases)")
    parser.add_argument("--chunk", type=int, default=5000, help="cases per COPY transaction")
    parser.add_argument("--writers", type=int, default=2, help="COPY connections in parallel")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--replace", action="store_true", help="drop the database first if it exists")
    parser.add_argument("--no-vacuum", action="store_true", help="skip VACUUM ANALYZE (ANALYZE only)")
    parser.add_argument("--check-sample", type=int, default=0, metavar="N",
                        help="afterwards (or on a reused data set) check N random cases with engine.consistency")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    admin = admin_url(args.postgres_url)
    url = database_url(admin, args.database)
    territories = args.territories or max(1, min(len(DEPARTEMENTS) + 1, round(args.cases / CASES_PER_TERRITORY)))
    figures: dict = {"database": args.database, "cases_requested": args.cases, "territories": territories}
    total = time.perf_counter()

    if database_exists(admin, args.database) and not args.replace:
        engine = make_engine(url)
        with engine.connect() as connection:
            marker = connection.scalar(text("SELECT to_regclass('bench_generation') IS NOT NULL")) and \
                connection.execute(text("SELECT cases, figures FROM bench_generation")).first()
        engine.dispose()
        if marker and marker[0] >= args.cases:
            log(f"database {args.database} already holds a generated data set of {marker[0]:,} cases: reused "
                f"(--replace to generate again)")
            if args.check_sample:
                return 1 if check_sample(url, args.check_sample)["problems"] else 0
            return 0
        raise SystemExit(f"database {args.database} exists without a complete data set of {args.cases:,} cases; "
                         f"use --replace")
    create_database(admin, args.database, drop_first=args.replace)
    log(f"database {args.database} on {admin.rsplit('@', 1)[-1]}: {args.cases:,} cases over {territories} "
        f"territor{'y' if territories == 1 else 'ies'}")

    templates, timings = prepare(url)
    weights = template_weights(templates)
    log(f"set-up (migrate, seed Essonne, deploy 6 pathways): {timings['migrate_seed_deploy_s']:.1f} s; "
        f"{len(templates)} template snapshots from {len({t.walk for t in templates})} walks: "
        f"{timings['templates_s']:.1f} s")
    for line in describe(templates):
        log(line)
    share = involvement(templates, weights)

    started = time.perf_counter()
    directory = expand_directory(url, territories, args.cases, share, log=log)
    timings["directory_s"] = time.perf_counter() - started
    log(f"directory: {territories} territories, {len(directory.communes):,} communes, {directory.structures:,} "
        f"structures, {directory.users:,} users ({timings['directory_s']:.1f} s)")

    compiled = [compile_template(t, w) for t, w in zip(templates, weights)]
    _finish_compile(compiled)
    total_weight = sum(weights)
    expected_tasks = sum(len(t.tasks) * w for t, w in zip(templates, weights)) / total_weight
    log(f"expected per case: {expected_tasks:.2f} task rows, "
        f"{sum(len(t.events) * w for t, w in zip(templates, weights)) / total_weight:.1f} events, "
        f"{sum(len(t.state) * w for t, w in zip(templates, weights)) / total_weight / 1024:.1f} kB of state")

    with psycopg.connect(libpq_url(url)) as conn:
        started = time.perf_counter()
        drop_secondary(conn)
        timings["drop_indexes_s"] = time.perf_counter() - started
    now_us = to_epoch_us(datetime.now(timezone.utc))
    log("loading (COPY, secondary indexes and foreign keys dropped):")
    counters, load_s = load_cases(url, compiled, directory, args.cases, chunk=args.chunk, seed=args.seed,
                                  now_us=now_us, writers=args.writers, log=log)
    timings["copy_s"] = load_s
    rows = sum(counters.rows.values())
    log(f"COPY: {rows:,} rows in {load_s:.1f} s = {rows / load_s:,.0f} rows/s "
        f"({args.cases / load_s:,.0f} cases/s; {human_bytes(counters.state_bytes)} of state text)")
    for table in BULK_TABLES:
        log(f"  {table:<17} {counters.rows[table]:>12,} rows")
    with psycopg.connect(libpq_url(url)) as conn:
        partners = add_sensitive_partners(conn, directory.territories)
    counters.rows["care_team_member"] += partners
    rows += partners
    log(f"sensitive partners: a CSAPA per territory on the care team of {partners:,} active cases "
        f"(1 in {round(1 / SENSITIVE_SHARE)})")

    with psycopg.connect(libpq_url(url)) as conn:
        started = time.perf_counter()
        rebuilt = rebuild_secondary(conn, log=log)
        timings["rebuild_indexes_s"] = time.perf_counter() - started
        log(f"indexes and constraints rebuilt: {len(rebuilt)} in {timings['rebuild_indexes_s']:.1f} s")
        for ddl, seconds in sorted(rebuilt, key=lambda item: -item[1])[:5]:
            log(f"  {seconds:6.1f} s  {ddl[:110]}")
        cur = conn.cursor()
        for table in BULK_TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                        f"(SELECT max(id) FROM \"{table}\"))")
        conn.commit()
        conn.autocommit = True
        started = time.perf_counter()
        cur.execute("ANALYZE" if args.no_vacuum else "VACUUM (ANALYZE)")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        log(f"{'ANALYZE' if args.no_vacuum else 'VACUUM (ANALYZE)'}: {timings['vacuum_analyze_s']:.1f} s")
        for setting, value in DATABASE_SETTINGS.items():
            cur.execute(f'ALTER DATABASE "{args.database}" SET {setting} = {value}')
        log("per-database settings (docs/operations.md): "
            + ", ".join(f"{k} = {v}" for k, v in DATABASE_SETTINGS.items()))

    size = database_size(url)
    sizes = table_sizes(url, list(BULK_TABLES))
    total_s = time.perf_counter() - total
    figures.update({
        "timings_s": timings, "total_s": total_s, "rows": dict(counters.rows), "rows_total": rows,
        "rows_per_s_copy": rows / load_s, "cases_per_s_copy": args.cases / load_s,
        "task_rows_per_case": counters.rows["human_task"] / args.cases,
        "open_tasks": counters.open_tasks, "overdue_open_tasks": counters.overdue_tasks,
        "escalated_open_tasks": counters.escalated, "closed_cases": counters.closed,
        "state_text_bytes": counters.state_bytes, "database_bytes": size,
        "table_bytes": {t: s for t, (_, s) in sizes.items()}, "structures": directory.structures,
        "users": directory.users, "templates": len(templates),
    })
    log(f"task rows per case {figures['task_rows_per_case']:.2f}; open tasks {counters.open_tasks:,}, "
        f"overdue {counters.overdue_tasks:,} ({counters.overdue_tasks / max(1, counters.open_tasks):.0%}), "
        f"escalated {counters.escalated:,}; closed cases {counters.closed:,} "
        f"({counters.closed / args.cases:.0%})")
    log("sizes: " + ", ".join(f"{t} {human_bytes(s)}" for t, (_, s) in sizes.items())
        + f"; database {human_bytes(size)}")
    log(f"total {total_s:.1f} s ({total_s / 60:.1f} min) for {args.cases:,} cases, {rows:,} rows: "
        f"{rows / total_s:,.0f} rows/s overall")

    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_generation (cases bigint, territories int, generated_at "
                                "timestamptz, figures json)"))
        connection.execute(text("INSERT INTO bench_generation VALUES (:c, :t, now(), :f)"),
                           {"c": args.cases, "t": territories, "f": json.dumps(figures)})
    engine.dispose()
    if args.check_sample:
        figures["check_sample"] = check_sample(url, args.check_sample)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 1 if figures.get("check_sample", {}).get("problems") else 0


if __name__ == "__main__":
    sys.exit(main())
