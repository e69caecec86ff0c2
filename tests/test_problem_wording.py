"""Deploy problems reach the designer in French: every message the engine writes has its French sentence.

The engine writes each problem in English (the API) with a code and the values in it; the
designer pages word it again in French (web.pathway_wording). These tests produce each code
from a real refused diagram or form and check the French sentence carries the values, and
that no code lacks its sentence (nor a sentence its code).
"""
from __future__ import annotations

import re

import pytest
from SpiffWorkflow.spiff.parser import SpiffBpmnParser

from engine import pathways
from engine.bpmn_parsing import parse_pathway
from engine.errors import Problem
from engine.forms import check_form_schemas
from tests.conftest import fixture_bytes
from tests.spie_support import seed_and_deploy, spie_context
from tests.test_bpmn_parsing import BILLION_LAUGHS, FORMS, TWO_PROCESSES, edit, fixture, refused, simple
from web.pathway_wording import PROBLEM_DETAILS, problem_out

SECOND_PROCESS = '<bpmn:process id="autre" isExecutable="true"><bpmn:startEvent id="autre-start" /></bpmn:process>'


def _problems_of_every_kind(monkeypatch) -> list[Problem]:
    """At least one problem of each code, each from input a designer could send."""
    base = simple()
    found = []
    found += refused(edit(base, '<bpmn:endEvent id="fin-relance" />', '<bpmn:endEvent id="fin-relance">'))
    found += refused(BILLION_LAUGHS)
    found += refused(fixture("orientation.dmn"))
    found += refused(base, [b'<x xmlns="urn:pas-dmn"/>'])
    found += refused(edit(base, '<bpmn:endEvent id="fin-suivi" />', '<bpmn:endEvent id="relance" />'))
    found += refused(edit(base, 'targetRef="fin-suivi"', 'targetRef="fin-inexistante"'))
    found += refused(edit(base, 'targetRef="fin-suivi"', 'targetRef="fin-inexistante"'), validate=False)
    found += refused(edit(base, 'sourceRef="diagnostic"', 'sourceRef="debut-inexistant"'))
    found += refused(edit(base, '<bpmn:endEvent id="fin-suivi" />',
                          '<bpmn:endEvent id="fin-suivi" />\n<bpmn:fooTask id="x" />'))
    found += refused(edit(base, 'default="vers-suivi" ', ""))
    found += refused(edit(base, "</bpmn:definitions>", SECOND_PROCESS + "</bpmn:definitions>"))
    found += refused(edit(base, 'isExecutable="true"', 'isExecutable="false"'))
    found += refused(b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" />')
    found += refused(fixture("sortie-accompagnement.bpmn"), library={"autre": base})
    found += refused(fixture("sortie-accompagnement.bpmn"),
                     library={"passage-de-relais": fixture("sortie-accompagnement.bpmn")})
    found += refused(TWO_PROCESSES.replace(b'calledElement="appele"', b'calledElement=""')
                     .replace(b'<bpmn:process id="appele" isExecutable="true">', b'<bpmn:process id="appele">'))
    found += refused(edit(base, "<bpmn:flowNodeRef>designation</bpmn:flowNodeRef>", ""))
    found += refused(edit(base, ' camunda:formKey="relance"', ""), form_keys=FORMS - {"diagnostic"})
    found += refused(edit(base, '"P15D"</bpmn:timeDuration>', "P15D</bpmn:timeDuration>"))
    found += refused(edit(base, '"P15D"</bpmn:timeDuration>', '"P15X"</bpmn:timeDuration>'))
    found += refused(edit(base, '"P15D"</bpmn:timeDuration>', "</bpmn:timeDuration>"))
    found += refused(edit(base, '"P15D"</bpmn:timeDuration>', '"P15D</bpmn:timeDuration>'))
    found += _warnings(edit(base, '"P15D"</bpmn:timeDuration>', 'delai</bpmn:timeDuration>'))
    found += refused(edit(base, 'spie:dueIn="P30D"', 'spie:dueIn="30 jours"'))
    found += refused(edit(base, 'besoin = "social"', "besoin = = 1"))
    found += refused(fixture("entree-diagnostic.bpmn"),
                     [edit(fixture("orientation.dmn"), "<text>&gt;= 3</text>", "<text>&gt;= = 3</text>")])
    found += check_form_schemas({"liste": [], "enorme": {"description": "x" * 300_000},
                                 "faux": {"type": "objet"}})
    found += refused(base, rules=[_broken_rule])
    monkeypatch.setattr(SpiffBpmnParser, "get_spec", _broken)
    found += refused(base)
    return found


def _spie_problems(session_factory) -> list[Problem]:
    """The SPIE rules and the versioning check, as the designer's « Vérifier » runs them (pathways.check)."""
    ctx = spie_context()
    seed_and_deploy(session_factory, ctx)
    relay = fixture_bytes("engine/sortie-apres-relais.bpmn")
    skipping = relay.replace(b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="relais"/>',
                             b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sortie"/>')
    unknown = (relay.replace(b'name="Mission Locale"', b'name="Bureau des licornes"')
               .replace(b' spie:receivingStructureType="departement"', b""))
    with session_factory() as session:
        return [*pathways.check(session, ctx, skipping), *pathways.check(session, ctx, unknown),
                *pathways.check(session, ctx, relay, key="passage-de-relais")]


def _warnings(xml: bytes) -> list[Problem]:
    return list(parse_pathway(xml, form_keys=FORMS).warnings)


def _broken_rule(lint):
    raise KeyError("oops")


def _broken(self, *args, **kwargs):
    raise RuntimeError("boom")


def test_every_problem_the_engine_writes_reads_in_french(session_factory, monkeypatch):
    problems = [*_spie_problems(session_factory), *_problems_of_every_kind(monkeypatch)]
    codes = {p.code for p in problems}
    assert None not in codes, [p for p in problems if p.code is None]
    assert codes == set(PROBLEM_DETAILS), (set(PROBLEM_DETAILS) - codes, codes - set(PROBLEM_DETAILS))
    for problem in problems:
        shown = problem_out(problem)
        assert shown["detail_lang"] == "fr", problem
        detail = shown["detail"]
        assert "{" not in detail.replace("{http", "") or problem.code in ("xsd", "spiff-validation"), detail
        assert not re.search(r"\b(?:is|the|of|which|without|must)\b", _own_words(problem, detail)), detail
        for key, value in problem.params.items():
            if key not in ("kind", "what", "file") and value != "":
                assert str(value) in detail, (key, value, detail)
        if "file" in problem.params:
            assert detail.startswith(f"Dans {problem.params['file']} : "), detail
        assert "DMN" in shown["title"] if problem.code == "not-dmn" else "DMN" not in shown["title"], shown


def _own_words(problem: Problem, detail: str) -> str:
    """The detail without the texts it quotes (values, and messages of lxml, Python or SpiffWorkflow)."""
    for value in problem.params.values():
        detail = detail.replace(str(value), "")
    return detail


def test_a_problem_without_a_known_code_keeps_the_engine_english():
    stored = {"rule": "timer-expression", "message": "timeDuration of x is computed at run time (delai)",
              "element_id": "x", "line": 3, "severity": "warning"}  # a warning stored before codes existed
    shown = problem_out(stored)
    assert shown["detail"] == stored["message"] and shown["detail_lang"] == "en"
    assert shown["title"] == "Minuterie calculée à l'exécution : non vérifiable au déploiement"
    changed = problem_out({**stored, "code": "timer-computed", "params": {"kind": "timeDuration"}})  # a value missing
    assert changed["detail_lang"] == "en"


@pytest.mark.parametrize("code, params, expected", [
    ("timer-not-iso", {"kind": "timeDuration", "owner": "relance-timer", "value": "P15X"},
     "Minuterie (durée) de relance-timer : « P15X » n'est pas une durée ISO 8601 comme \"P15D\"."),
    ("python-invalid", {"what": "DMN input entry", "owner": "regle", "error": "invalid syntax", "line": 1,
                        "text": ">= = 3", "file": "orientation.dmn"},
     "Dans orientation.dmn : Entrée DMN de regle : Python invalide (invalid syntax), ligne 1 : >= = 3"),
    ("flow-missing-target", {"flow": "", "source": "passerelle", "ref": "fin"},
     "Le flux partant de passerelle mène à un élément absent : fin."),
])
def test_values_that_are_engine_words_are_put_into_french(code, params, expected):
    shown = problem_out(Problem("x", "english", code=code, params=params))
    assert shown["detail"] == expected
