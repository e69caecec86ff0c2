"""The shipped pathways (bpmn/) and forms (forms/): valid, deployable, drawn, and runnable.

No database: the pathways are parsed with the engine's deploy parser, in deploy
order, and run directly on SpiffWorkflow with the sandboxed script engine and
the engine's clock, so timers fire as simulated time moves.
"""
from __future__ import annotations

from copy import deepcopy
from datetime import datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator
from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.bpmn_parsing import parse_pathway
from engine.clock import install_spiff_clock, workflow_time
from engine.forms import load_forms_dir
from engine.paths import BPMN_DIR, FORMS_DIR
from engine.sandbox import create_script_engine

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {
    "bpmn": BPMN_NS,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
SPIE = "{https://spie-parcours.fr/schema/bpmn/1.0}"

# Deploy order: a pathway is deployed after the pathways it calls.
DEPLOY_ORDER = [
    "passage-de-relais",
    "brsa-oriente-social",
    "jeune-sortant-ase",
    "demandeur-emploi-freins",
    "entree-diagnostic",
    "jeune-sortant-mission-locale",
    "prescription-offre",
]
DECISIONS = {"entree-diagnostic": ["orientation.dmn"]}
STRUCTURE_TYPES = {"mission-locale", "departement", "france-travail", "caf", "plie", "ccas", "cap-emploi", "ase"}
ACTION_FORMS = {
    "designate-referent": "designation-referent",
    "joint-meeting": "rendez-vous-tripartite",
    "orientation": "decision-orientation",
    "prescribe": "prescription",
}
FORMS = load_forms_dir(FORMS_DIR)
FLOW_NODES = (
    "startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent task userTask manualTask "
    "scriptTask serviceTask businessRuleTask sendTask receiveTask callActivity subProcess exclusiveGateway "
    "parallelGateway inclusiveGateway eventBasedGateway"
).split()

FREINS_NON = {
    key: {"valeur": "NON"}
    for key in ("mobilite", "contraintes_familiales", "sante", "maitrise_langue", "logement",
                "difficulte_financiere", "difficulte_administrative")
}

# A realistic filled-in form for every form key.
EXAMPLES = {
    "relance-prescription": {"point_demande": "personne-contactee", "date_reponse_prevue": "2026-02-10",
                             "commentaire": "Rendez-vous proposé le 10 février."},
    "diagnostic-socio-professionnel": {
        "date_diagnostic": "2026-01-12",
        "situation_professionnelle": "recherche_emploi",
        "niveau_formation": "NV5",
        "rqth": False,
        "freins": {
            **FREINS_NON,
            "mobilite": {"valeur": "OUI", "situation": "Pas de permis, dépend des bus (ligne 91-02)"},
            "contraintes_familiales": {
                "valeur": "OUI", "situation": "Deux enfants de moins de 3 ans sans solution de garde",
            },
            "sante": {"valeur": "NON_ABORDEE"},
        },
        "besoins": ["trouver_un_emploi", "preparer_sa_candidature"],
        "synthese": "Projet d'aide à domicile ; la garde des enfants bloque toute reprise.",
        "consentement_partage": True,
    },
    "decision-orientation": {
        "orientation": "sociopro",
        "target_structure_type": "france-travail",
        "date_decision": "2026-01-20",
        "motif": "Deux freins à lever en parallèle de la recherche d'emploi.",
    },
    "designation-referent": {
        "referent_email": "camille.martin@essonne.fr",
        "date_designation": "2026-01-22",
    },
    "rendez-vous-tripartite": {
        "date_rendez_vous": "2026-02-03",
        "presence_personne": True,
        "presence_referent_origine": True,
        "presence_referent_accueil": True,
        "compte_rendu": "Présentation du nouveau référent, reprise du plan d'action.",
    },
    "contrat-engagement": {
        "type_contrat": "CE",
        "date_signature": "2026-02-10",
        "date_fin": "2026-08-10",
        "heures_activite_hebdomadaires": 15,
        "objectifs": [
            {"libelle": "Trouver une solution de garde pour les deux enfants", "theme": "contraintes_familiales"},
            {"libelle": "Obtenir le code de la route", "theme": "mobilite", "echeance": "2026-06-30"},
        ],
    },
    "sortie": {"exit_reason": "relais-autre-structure", "exit_date": "2026-02-04"},
    "preparation-sortie": {
        "date_sortie_prevue": "2026-03-31",
        "situation_sortie": "sans-solution",
        "droits_a_ouvrir": ["rsa", "css"],
        "synthese": "Jeune de 25 ans, CAP cuisine, sans emploi depuis 8 mois ; demande de RSA à déposer.",
    },
    "prescription": {
        "offer_id": "dora--garde-enfants-91-creche-vip",
        "frein": "contraintes_familiales",
        "message": "Deux enfants de 1 et 2 ans, reprise d'emploi visée en avril.",
    },
    "entretien": {
        "date_entretien": "2026-01-15", "modalite": "presentiel", "notes": "Premier entretien, situation stable.",
    },
    "escalade": {"action": "relance-effectuee", "date_action": "2026-01-25", "commentaire": "Équipe relancée."},
    "revue-parcours": {
        "date_revue": "2026-08-12",
        "diagnostic_conjoint": True,
        "freins_leves": ["contraintes_familiales"],
        "decision": "poursuivre",
        "motif": "Logement à stabiliser avant une recherche d'emploi.",
    },
    "arbitrage-parcours": {
        "date_arbitrage": "2028-03-02",
        "decision": "nouveau-cycle",
        "motif": "Hébergement d'urgence en cours de sortie ; reprise d'emploi envisagée d'ici un an.",
    },
    "relance-prestataire": {"date_relance": "2026-02-20", "moyen": "telephone"},
    "bilan-prescription": {
        "date_bilan": "2026-03-01", "personne_entree_dans_l_offre": True, "suite": "fin-prescriptions",
    },
}


# --- Forms ----------------------------------------------------------------------------------------


def test_every_form_has_an_example():
    assert set(FORMS) == set(EXAMPLES)


@pytest.mark.parametrize("key", sorted(FORMS))
def test_form_is_a_french_draft_2020_12_schema(key):
    schema = FORMS[key]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["title"] and schema["description"] and schema["required"]
    assert all(prop.get("title") for prop in schema["properties"].values())


@pytest.mark.parametrize("key", sorted(FORMS))
def test_form_accepts_a_realistic_example(key):
    validator = Draft202012Validator(FORMS[key], format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(EXAMPLES[key])] == []


@pytest.mark.parametrize(
    "key, change",
    [
        ("sortie", {"exit_reason": "parti"}),
        ("sortie", {"exit_date": "04/02/2026"}),
        ("designation-referent", {"referent_email": "camille.martin"}),
        ("revue-parcours", {"decision": "reorientation"}),  # a reorientation names the new orientation
        ("arbitrage-parcours", {"decision": "reorientation"}),
        ("diagnostic-socio-professionnel", {"freins": {**FREINS_NON, "sante": {"valeur": "PEUT-ETRE"}}}),
        ("diagnostic-socio-professionnel", {"consentement_partage": None}),
        ("decision-orientation", {"orientation": "autre"}),
        ("contrat-engagement", {"objectifs": []}),
        ("entretien", {"champ_inconnu": "x"}),
    ],
)
def test_form_refuses_wrong_data(key, change):
    data = {**deepcopy(EXAMPLES[key]), **change}
    data = {k: v for k, v in data.items() if v is not None}
    validator = Draft202012Validator(FORMS[key], format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(data))


def test_sortie_offers_the_exit_reasons_of_the_engine():
    reasons = {option["const"] for option in FORMS["sortie"]["properties"]["exit_reason"]["oneOf"]}
    assert reasons == {
        "emploi-durable", "formation-qualifiante", "creation-entreprise", "demenagement-hors-territoire",
        "relais-autre-structure", "fin-de-droits", "abandon", "refus", "deces", "autre",
    }


# --- Deploying the pathways -----------------------------------------------------------------------


def read(name: str) -> bytes:
    return (BPMN_DIR / name).read_bytes()


@pytest.fixture(scope="module")
def deployed():
    """Every pathway parsed as the engine deploys it: in order, earlier files as the library."""
    library, parsed = {}, {}
    for key in DEPLOY_ORDER:
        xml = read(f"{key}.bpmn")
        dmns = [read(name) for name in DECISIONS.get(key, [])]
        parsed[key] = parse_pathway(xml, dmns, library=library, form_keys=set(FORMS))
        library[key] = (xml, dmns)
    return parsed


def test_the_deploy_order_covers_every_file():
    assert sorted(p.stem for p in BPMN_DIR.glob("*.bpmn")) == sorted(DEPLOY_ORDER)


def test_every_pathway_deploys_without_errors(deployed):
    for key, parsed in deployed.items():
        assert parsed.key == key
        assert parsed.name and parsed.name != key  # a French name
        errors = [w for w in parsed.warnings if w.severity != "warning"]
        assert errors == []
        # only the run-time dates computed from the birth date cannot be checked at deploy
        assert all("computed at run time" in w.message for w in parsed.warnings), parsed.warnings


def documents():
    return [(key, etree.fromstring(read(f"{key}.bpmn"))) for key in DEPLOY_ORDER]


@pytest.mark.parametrize("key, root", documents(), ids=DEPLOY_ORDER)
def test_one_executable_process_named_after_the_file_and_documented(key, root):
    processes = root.findall("bpmn:process", NS)
    assert [p.get("id") for p in processes] == [key]
    assert processes[0].get("isExecutable") == "true"
    documentation = processes[0].findtext("bpmn:documentation", namespaces=NS)
    assert documentation and ("CASF" in documentation or "code du travail" in documentation)


@pytest.mark.parametrize("key, root", documents(), ids=DEPLOY_ORDER)
def test_user_tasks_have_a_form_and_a_structure_lane(key, root):
    lane_of = {}
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        types = lane.get(f"{SPIE}structureType")
        variable = lane.get(f"{SPIE}structureTypeVariable")
        assert types or variable, f"lane {lane.get('id')} needs a structure type or a variable"
        if types:
            assert set(types.split("|")) <= STRUCTURE_TYPES, types
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            lane_of[ref.text] = lane
    for task in root.iter(f"{{{BPMN_NS}}}userTask"):
        owner = task
        while owner.getparent().tag != f"{{{BPMN_NS}}}process":  # tasks of a subprocess use its lane
            owner = owner.getparent()
        assert owner.get("id") in lane_of, f"user task {task.get('id')} is in no lane"
        form = task.get(f"{SPIE}formKey")
        assert form in FORMS, f"user task {task.get('id')} has form {form!r}"
        action = task.get(f"{SPIE}action")
        if action:
            assert ACTION_FORMS[action] == form, task.get("id")
        if task.get(f"{SPIE}exit") == "true":
            assert form == "sortie", task.get("id")
        assert task.get(f"{SPIE}audience", "referent") in ("referent", "supervisor", "pilot")
        if task.get(f"{SPIE}audience") == "pilot":
            assert lane_of[owner.get("id")].get(f"{SPIE}structureType") == "departement"


@pytest.mark.parametrize("key, root", documents(), ids=DEPLOY_ORDER)
def test_hand_offs_name_the_receiving_structure(key, root):
    for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
        assert call.get("calledElement") in DEPLOY_ORDER[: DEPLOY_ORDER.index(key)]
        if call.get("calledElement") == "passage-de-relais":
            assert call.get(f"{SPIE}receivingStructureType") in STRUCTURE_TYPES


@pytest.mark.parametrize("key, root", documents(), ids=DEPLOY_ORDER)
def test_diagram_is_complete(key, root):
    shapes = {s.get("bpmnElement"): s for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    elements = [e for tag in FLOW_NODES for e in root.iter(f"{{{BPMN_NS}}}{tag}")]
    elements += list(root.iter(f"{{{BPMN_NS}}}lane")) + list(root.iter(f"{{{BPMN_NS}}}participant"))
    for element in elements:
        shape = shapes.get(element.get("id"))
        assert shape is not None, f"no shape for {element.get('id')}"
        bounds = shape.find("dc:Bounds", NS)
        assert float(bounds.get("width")) > 0 and float(bounds.get("height")) > 0
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        edge = edges.get(flow.get("id"))
        assert edge is not None, f"no edge for {flow.get('id')}"
        points = [(float(p.get("x")), float(p.get("y"))) for p in edge.findall("di:waypoint", NS)]
        assert len(points) >= 2
        assert all(x1 == x2 or y1 == y2 for (x1, y1), (x2, y2) in zip(points, points[1:])), "orthogonal"
    plane = root.find(".//bpmndi:BPMNPlane", NS)
    assert plane.get("bpmnElement") in {e.get("id") for e in root.iter()}


# --- Running the pathways -------------------------------------------------------------------------

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
SCRIPT_ENGINE = create_script_engine()


class Run:
    """One case of a pathway on SpiffWorkflow, with the engine's sandbox and a simulated clock."""

    def __init__(self, parsed, data, now=START):
        install_spiff_clock()
        self.now = now
        self.workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SCRIPT_ENGINE)
        for task in self.workflow.get_tasks(state=TaskState.READY):
            task.data.update(deepcopy(data))
        self.settle()

    def settle(self):
        with workflow_time(self.now):
            for _ in range(50):
                self.workflow.refresh_timers()
                self.workflow.do_engine_steps()
                if not self.workflow.get_tasks(state=TaskState.READY, manual=False):
                    return
        raise AssertionError("the workflow does not settle")

    def advance(self, **duration):
        self.now += timedelta(**duration)
        self.settle()

    def ready(self) -> list[str]:
        return sorted(t.task_spec.bpmn_id for t in self.workflow.get_tasks(state=TaskState.READY, manual=True))

    def task(self, bpmn_id):
        (task,) = [t for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)
                   if t.task_spec.bpmn_id == bpmn_id]
        return task

    def complete(self, bpmn_id, form, **changes):
        data = {**deepcopy(EXAMPLES[form]), **changes}
        validator = Draft202012Validator(FORMS[form], format_checker=Draft202012Validator.FORMAT_CHECKER)
        assert [e.message for e in validator.iter_errors(data)] == []
        task = self.task(bpmn_id)
        with workflow_time(self.now):
            task.set_data(**data)
            task.run()
        self.settle()
        return task

    def deliver(self, message, payload):
        (waiting,) = [t for t in self.workflow.get_tasks(state=TaskState.WAITING)
                      if getattr(getattr(t.task_spec, "event_definition", None), "name", None) == message]
        with workflow_time(self.now):
            self.workflow.send_event(BpmnEvent(waiting.task_spec.event_definition, payload=payload))
        self.settle()

    def hand_off(self):
        """Work a passage-de-relais to its end: designation, joint meeting, sender's exit."""
        self.complete("designer-referent", "designation-referent")
        self.complete("rendez-vous-tripartite", "rendez-vous-tripartite")
        self.complete("sortie-structure-origine", "sortie")


def person(birth_date, commune="91228"):
    return {"person": {"first_name": "Inès", "last_name": "Benali", "birth_date": birth_date, "commune_insee": commune}}


def test_hand_off_escalates_at_15_and_30_days_then_needs_all_three_at_the_meeting(deployed):
    run = Run(deployed["passage-de-relais"], {"receiving_structure_type": "departement",
                                              "sending_structure_type": "mission-locale"})
    assert run.ready() == ["designer-referent"]
    run.advance(days=14)
    assert run.ready() == ["designer-referent"]
    run.advance(days=2)
    assert run.ready() == ["designer-referent", "relancer-designation"]
    run.advance(days=15)
    assert run.ready() == ["debloquer-relais", "designer-referent", "relancer-designation"]
    run.complete("relancer-designation", "escalade")
    run.complete("designer-referent", "designation-referent")
    run.complete("rendez-vous-tripartite", "rendez-vous-tripartite", presence_referent_origine=False)
    assert "rendez-vous-tripartite" in run.ready()  # not all three there: a new meeting
    run.complete("rendez-vous-tripartite", "rendez-vous-tripartite")
    assert run.ready() == ["debloquer-relais", "sortie-structure-origine"]
    run.complete("sortie-structure-origine", "sortie")
    assert run.workflow.completed  # the relay is done: the pending escalation is cancelled


def test_hand_off_designated_in_time_raises_no_escalation(deployed):
    run = Run(deployed["passage-de-relais"], {})
    run.advance(days=3)
    run.complete("designer-referent", "designation-referent")
    run.advance(days=40)
    assert run.ready() == ["rendez-vous-tripartite"]


def test_young_person_leaving_the_mission_locale_is_handed_to_the_departement(deployed):
    run = Run(deployed["jeune-sortant-mission-locale"], person("2000-09-30"))
    assert run.task("preparer-sortie").data["date_butee_26_ans"] == "2026-09-30T00:00:00+00:00"
    run.complete("preparer-sortie", "preparation-sortie")
    assert run.ready() == ["designer-referent"]  # the Département's task, in passage-de-relais
    run.hand_off()
    assert run.ready() == ["diagnostic"]  # the RSA référent's diagnostic, in the same case
    assert run.task("diagnostic").data["entry_structure_type"] == "departement"


def test_hard_stop_at_26_alerts_the_pilot_and_keeps_the_hand_off(deployed):
    run = Run(deployed["jeune-sortant-mission-locale"], person("2000-02-29"))
    assert run.task("preparer-sortie").data["date_butee_26_ans"] == "2026-03-01T00:00:00+00:00"
    run.complete("preparer-sortie", "preparation-sortie")
    run.advance(days=60)  # past 1 March 2026
    assert "alerte-butee-26-ans" in run.ready() and "designer-referent" in run.ready()
    run.complete("alerte-butee-26-ans", "escalade", action="comite-de-parcours")
    run.hand_off()
    assert run.ready() == ["diagnostic"]


def test_rsa_social_track_escalates_then_reviews_at_six_months_and_reorients(deployed):
    run = Run(deployed["brsa-oriente-social"], person("1988-05-17"))
    assert run.ready() == ["premier-rendez-vous"]
    run.complete("premier-rendez-vous", "entretien")
    run.advance(days=32)  # one month after the orientation
    assert run.ready() == ["relancer-entree-accompagnement", "signer-contrat"]
    run.complete("relancer-entree-accompagnement", "escalade")
    run.complete("signer-contrat", "contrat-engagement")
    run.advance(days=180)
    assert run.ready() == []
    run.advance(days=5)
    assert run.ready() == ["revoir-parcours"]
    run.complete("revoir-parcours", "revue-parcours", decision="reorientation", orientation_proposee="sociopro")
    assert run.ready() == ["designer-referent"]  # France Travail names the new référent
    run.hand_off()
    assert run.workflow.completed


def test_rsa_social_track_loops_four_reviews_then_the_pilot_arbitrates(deployed):
    run = Run(deployed["brsa-oriente-social"], person("1988-05-17"))
    run.complete("premier-rendez-vous", "entretien")
    run.complete("signer-contrat", "contrat-engagement")
    for _ in range(4):
        run.advance(days=190)
        run.complete("revoir-parcours", "revue-parcours")
    assert run.task("arbitrer-parcours").data["revues"] == 4
    run.complete("arbitrer-parcours", "arbitrage-parcours")
    assert run.workflow.completed  # the pilot opens the new social cycle as a new case


def test_rsa_social_track_pilot_may_reorient_after_two_years(deployed):
    run = Run(deployed["brsa-oriente-social"], person("1988-05-17"))
    run.complete("premier-rendez-vous", "entretien")
    run.complete("signer-contrat", "contrat-engagement")
    for _ in range(4):
        run.advance(days=190)
        run.complete("revoir-parcours", "revue-parcours")
    run.complete("arbitrer-parcours", "arbitrage-parcours", decision="reorientation", orientation_proposee="pro")
    assert run.ready() == ["designer-referent"]


def test_rsa_social_track_positive_exit(deployed):
    run = Run(deployed["brsa-oriente-social"], person("1988-05-17"))
    run.complete("premier-rendez-vous", "entretien")
    run.complete("signer-contrat", "contrat-engagement")
    run.advance(days=190)
    run.complete("revoir-parcours", "revue-parcours", decision="sortie")
    run.complete("sortie-accompagnement-social", "sortie", exit_reason="emploi-durable")
    assert run.workflow.completed


def test_young_person_leaving_child_welfare(deployed):
    run = Run(deployed["jeune-sortant-ase"], person("2009-03-10"))  # 16 on 5 January 2026
    data = run.task("entretien-autonomie").data
    assert (data["date_limite_entretien_autonomie"], data["date_majorite"]) == (
        "2026-03-10T00:00:00+00:00", "2027-03-10T00:00:00+00:00")
    run.advance(days=70)  # 17 years old: the ASE supervisor is alerted
    assert run.ready() == ["entretien-autonomie", "relancer-entretien-autonomie"]
    run.advance(days=365)  # of age: the SPIE pilot is alerted
    assert run.ready() == ["alerter-majorite-sans-entretien", "entretien-autonomie", "relancer-entretien-autonomie"]
    run.complete("relancer-entretien-autonomie", "escalade")
    run.complete("alerter-majorite-sans-entretien", "escalade")
    run.complete("entretien-autonomie", "entretien")
    run.complete("preparer-sortie-ase", "preparation-sortie", droits_a_ouvrir=["accompagnement-jeune-majeur"])
    run.hand_off()  # the Mission Locale takes over, then the ASE exits
    assert run.ready() == []
    run.advance(days=185)
    assert run.ready() == ["entretien-six-mois"]
    run.complete("entretien-six-mois", "entretien")
    assert run.workflow.completed


def test_job_seeker_with_barriers_gets_two_referents_and_prescriptions(deployed):
    run = Run(deployed["demandeur-emploi-freins"], person("1991-11-02"))
    assert run.ready() == ["designer-conseiller", "designer-referent-social"]
    run.complete("designer-conseiller", "designation-referent", referent_email="l.durand@francetravail.fr")
    assert run.ready() == ["designer-referent-social"]
    run.complete("designer-referent-social", "designation-referent")
    run.complete("prescrire-offre", "prescription")
    run.advance(days=11)
    assert run.ready() == ["relancer-prestataire"]  # reminder at 10 days, still waiting
    run.complete("relancer-prestataire", "relance-prestataire")
    run.deliver("reponse-prescription", {"statut": "acceptee"})
    assert run.task("faire-le-point").data["reponse_prescription"] == {"statut": "acceptee"}
    run.complete("faire-le-point", "bilan-prescription", suite="nouvelle-prescription")
    run.complete("prescrire-offre", "prescription", offer_id="dora--auto-ecole-sociale-evry")
    run.advance(days=31)  # no answer: the prescription expires
    assert run.ready() == ["faire-le-point", "relancer-prestataire"]
    assert run.task("faire-le-point").data["reponse_prescription"] == {"statut": "expiree"}
    run.complete("faire-le-point", "bilan-prescription")
    assert run.workflow.completed


def diagnostic(situation="recherche_emploi", oui=(), date_diagnostic="2026-01-12"):
    freins = {key: {"valeur": "OUI" if key in oui else "NON"} for key in FREINS_NON}
    return {**EXAMPLES["diagnostic-socio-professionnel"], "situation_professionnelle": situation,
            "freins": freins, "date_diagnostic": date_diagnostic}


@pytest.mark.parametrize(
    "birth_date, form, expected",
    [
        ("1990-04-01", diagnostic(), ("pro", "france-travail")),
        ("1990-04-01", diagnostic(oui=["mobilite", "logement"]), ("sociopro", "france-travail")),
        ("1990-04-01", diagnostic(oui=["mobilite", "logement", "sante"]), ("social", "departement")),
        ("1990-04-01", diagnostic(situation="invalidite"), ("social", "departement")),
        ("1990-04-01", diagnostic(situation="au_foyer", oui=["contraintes_familiales", "mobilite"]),
         ("social", "departement")),
        ("2003-06-01", diagnostic(), ("pro", "mission-locale")),
        ("2003-06-01", diagnostic(oui=["mobilite", "logement", "sante"]), ("sociopro", "mission-locale")),
        # 26 on the day of the diagnostic: no longer a Mission Locale public
        ("2000-01-12", diagnostic(oui=["logement"]), ("sociopro", "france-travail")),
        ("2000-01-13", diagnostic(oui=["logement"]), ("sociopro", "mission-locale")),
    ],
)
def test_orientation_decision(deployed, birth_date, form, expected):
    run = Run(deployed["entree-diagnostic"], {**person(birth_date), "entry_structure_type": "ccas"})
    run.complete("diagnostic", "diagnostic-socio-professionnel", **form)
    data = run.task("valider-orientation").data
    assert (data["orientation"], data["target_structure_type"]) == expected


def test_entry_diagnostic_escalates_then_starts_the_social_pathway(deployed):
    run = Run(deployed["entree-diagnostic"], {**person("1985-07-14"), "entry_structure_type": "mission-locale"})
    run.advance(days=31)
    assert run.ready() == ["diagnostic", "relancer-diagnostic"]
    run.complete("diagnostic", "diagnostic-socio-professionnel",
                 **diagnostic(oui=["logement", "sante", "difficulte_financiere"], date_diagnostic="2026-02-06"))
    data = run.task("valider-orientation").data
    assert (data["nb_freins"], data["age"]) == (3, 40)
    run.complete("valider-orientation", "decision-orientation", orientation="social",
                 target_structure_type="ccas")
    assert run.ready() == ["premier-rendez-vous", "relancer-diagnostic"]  # brsa-oriente-social has begun


def test_entry_diagnostic_starts_the_job_seeker_pathway(deployed):
    run = Run(deployed["entree-diagnostic"], {**person("1985-07-14"), "entry_structure_type": "france-travail"})
    run.complete("diagnostic", "diagnostic-socio-professionnel")
    run.complete("valider-orientation", "decision-orientation")
    assert run.ready() == ["designer-conseiller", "designer-referent-social"]
