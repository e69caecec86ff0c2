"""parse_pathway: safe XML reading, SpiffWorkflow specs, our extensions, and precise refusals."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.bpmn_parsing import MAX_XML_BYTES, LaneInfo, parse_pathway
from engine.errors import DeployError, Problem, TooLarge
from engine.lint import DEFAULT_RULES

FIXTURES = Path(__file__).parent / "fixtures" / "bpmn"
FORMS = frozenset(
    {"diagnostic", "relance", "designation-referent", "entretien-suivi", "preparation-sortie", "acceptation-relais"}
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def simple() -> bytes:
    return fixture("accompagnement-simple.bpmn")


def edit(xml: bytes, old: str, new: str) -> bytes:
    assert old.encode() in xml, f"fixture text not found: {old}"
    return xml.replace(old.encode(), new.encode(), 1)


def line_of(xml: bytes, text: str) -> int:
    return xml[: xml.index(text.encode())].count(b"\n") + 1


def refused(bpmn: bytes, dmns=(), **kwargs) -> list[Problem]:
    """The problems of a refused deploy; any other exception fails the test."""
    kwargs.setdefault("form_keys", FORMS)
    with pytest.raises(DeployError) as info:
        parse_pathway(bpmn, dmns, **kwargs)
    assert info.value.problems, "a DeployError must carry problems"
    return info.value.problems


def one(problems: list[Problem], rule: str) -> Problem:
    matching = [p for p in problems if p.rule == rule]
    assert len(matching) == 1, f"expected one {rule!r} problem in {problems}"
    return matching[0]


# --- Pathways that deploy -------------------------------------------------------------------------


def test_simple_pathway_parses_with_lanes_forms_exits_and_timers():
    parsed = parse_pathway(simple(), form_keys=FORMS)

    assert (parsed.key, parsed.name) == ("accompagnement-simple", "Accompagnement simple")
    assert parsed.lanes == {"Mission Locale": LaneInfo(("mission-locale",)), "Département": LaneInfo(())}
    assert parsed.exits == {"designation", "fin-relais"}
    assert parsed.called_processes == set()
    assert set(parsed.subprocess_specs) == {"suivi"}
    assert parsed.warnings == []
    tasks = parsed.user_tasks
    assert set(tasks) == {"diagnostic", "relance", "designation", "entretien-suivi"}
    assert tasks["diagnostic"].form_key == "diagnostic"  # spie:formKey
    assert tasks["relance"].form_key == "relance"  # camunda:formKey
    assert tasks["entretien-suivi"].form_key == "entretien-suivi"  # spiffworkflow formJsonSchemaFilename
    assert tasks["diagnostic"].due_in == "P30D"
    assert tasks["diagnostic"].line == line_of(simple(), '<bpmn:userTask id="diagnostic"')
    assert tasks["designation"].exit and not tasks["diagnostic"].exit
    assert {k: t.lane for k, t in tasks.items()} == {
        "diagnostic": "Mission Locale",
        "relance": "Département",
        "designation": "Département",
        "entretien-suivi": "Mission Locale",  # inherited from its embedded subprocess
    }


def test_simple_pathway_runs_in_spiffworkflow():
    parsed = parse_pathway(simple(), form_keys=FORMS)
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs)
    workflow.do_engine_steps()
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert [t.task_spec.bpmn_id for t in ready] == ["diagnostic"]


def test_call_activity_resolves_through_library_and_only_needed_files_are_read():
    library = {"passage-de-relais": fixture("passage-de-relais.bpmn"), "autre-parcours": b"<not xml"}
    parsed = parse_pathway(fixture("sortie-accompagnement.bpmn"), library=library, form_keys=FORMS)

    assert parsed.key == "sortie-accompagnement"
    assert parsed.called_processes == {"passage-de-relais"}
    assert set(parsed.subprocess_specs) == {"passage-de-relais"}
    assert set(parsed.user_tasks) == {"preparation"}  # the library's tasks belong to the library's pathway
    assert parsed.exits == {"fin"}


def test_business_rule_task_runs_its_dmn_table():
    parsed = parse_pathway(fixture("entree-diagnostic.bpmn"), [fixture("orientation.dmn")], form_keys=FORMS)
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs)
    workflow.do_engine_steps()
    diagnostic = workflow.get_tasks(state=TaskState.READY, manual=True)[0]
    diagnostic.set_data(nb_freins=2)
    diagnostic.run()
    workflow.do_engine_steps()
    assert workflow.completed and workflow.data["parcours"] == "sociopro"


def test_fast_path_skips_lint():
    parsed = parse_pathway(simple(), validate=False)  # no form keys known: lint would refuse
    assert parsed.key == "accompagnement-simple" and parsed.warnings == []


def test_computed_timer_is_a_warning_not_an_error():
    xml = edit(simple(), '"P15D"</bpmn:timeDuration>', "delai_relance</bpmn:timeDuration>")
    parsed = parse_pathway(xml, form_keys=FORMS)
    warning = one(parsed.warnings, "timer-expression")
    assert warning.severity == "warning" and warning.element_id == "relance-timer"


def test_rules_are_pluggable():
    def no_design_without_docs(lint):
        yield Problem("custom", "always refuses", element_id=lint.spec.name)

    problems = refused(simple(), rules=[*DEFAULT_RULES, no_design_without_docs])
    assert one(problems, "custom").element_id == "accompagnement-simple"
    assert parse_pathway(simple(), rules=[]).user_tasks  # no rules: nothing to refuse


# --- Unsafe or malformed XML ----------------------------------------------------------------------


def test_malformed_xml_is_refused_with_its_line():
    xml = edit(simple(), '<bpmn:endEvent id="fin-relance" />', '<bpmn:endEvent id="fin-relance">')
    problem = one(refused(xml), "xml-syntax")
    assert "malformed XML" in problem.message
    assert problem.line is not None and problem.line > line_of(xml, '<bpmn:endEvent id="fin-relance">')


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&lol9;" isExecutable="true"><bpmn:startEvent id="s" /></bpmn:process>
</bpmn:definitions>
"""


def test_billion_laughs_is_refused_quickly():
    started = time.perf_counter()
    problem = one(refused(BILLION_LAUGHS), "xml-doctype")
    assert time.perf_counter() - started < 1
    assert "DOCTYPE" in problem.message and problem.line == 2


def test_external_entity_is_refused_and_never_read():
    xml = edit(simple(), "<bpmn:definitions", '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<bpmn:definitions')
    xml = edit(xml, 'name="Accompagnement simple"', 'name="&xxe;"')
    problem = one(refused(xml), "xml-doctype")
    assert "root:" not in problem.message


def test_spiffworkflow_gets_our_safe_tree_not_the_bytes(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("SpiffWorkflow must not parse the raw bytes itself")

    monkeypatch.setattr(SpiffBpmnParser, "add_bpmn_str", forbidden)
    monkeypatch.setattr(SpiffBpmnParser, "add_dmn_str", forbidden)
    assert parse_pathway(fixture("entree-diagnostic.bpmn"), [fixture("orientation.dmn")], form_keys=FORMS)


def test_fifty_megabytes_is_too_large_and_refused_fast():
    upload = b"<x>" + b"a" * (50 * 1024 * 1024) + b"</x>"
    started = time.perf_counter()
    with pytest.raises(TooLarge):
        parse_pathway(upload)
    with pytest.raises(TooLarge):
        parse_pathway(simple(), [upload])
    assert time.perf_counter() - started < 1
    assert len(upload) > MAX_XML_BYTES


def test_a_dmn_file_is_not_a_bpmn_file():
    problem = one(refused(fixture("orientation.dmn")), "xml-root")
    assert "bpmn:definitions" in problem.message


# --- Structure: ids, flows, processes, calls -----------------------------------------------------


def test_duplicate_ids_are_refused_with_both_lines():
    xml = edit(simple(), '<bpmn:endEvent id="fin-suivi" />', '<bpmn:endEvent id="relance" />')
    problem = one(refused(xml), "duplicate-id")
    first, second = line_of(xml, '<bpmn:userTask id="relance"'), line_of(xml, '<bpmn:endEvent id="relance"')
    assert problem.element_id == "relance" and problem.line == second
    assert f"lines {first} and {second}" in problem.message


def test_flow_to_a_missing_element_names_the_flow_and_the_target():
    xml = edit(simple(), 'targetRef="fin-suivi"', 'targetRef="fin-inexistante"')
    problem = one(refused(xml), "sequence-flow")
    assert problem.message == "sequence flow f-suivi points to missing element fin-inexistante"
    assert (problem.element_id, problem.line) == ("f-suivi", line_of(xml, '<bpmn:sequenceFlow id="f-suivi"'))


def test_spiffworkflow_misleading_missing_target_message_is_rewritten():
    xml = edit(simple(), 'targetRef="fin-suivi"', 'targetRef="fin-inexistante"')
    problem = one(refused(xml, validate=False), "sequence-flow")  # the fast path leaves it to SpiffWorkflow
    assert problem.message == "sequence flow f-suivi points to missing element fin-inexistante"
    assert "perhaps a form" not in problem.message
    assert problem.line == line_of(xml, '<bpmn:sequenceFlow id="f-suivi"')


def test_xsd_error_has_line_and_element():
    xml = edit(simple(), '<bpmn:endEvent id="fin-suivi" />', '<bpmn:endEvent id="fin-suivi" />\n<bpmn:fooTask id="x" />')
    problem = one(refused(xml), "xsd")
    assert problem.line == line_of(xml, "<bpmn:fooTask") and problem.element_id == "x"
    assert "bpmn:fooTask" in problem.message and "{http" not in problem.message


def test_semantic_spiffworkflow_error_gets_its_line_from_our_tree():
    xml = edit(simple(), 'default="vers-suivi" ', "")  # a gateway flow with neither condition nor default
    problem = one(refused(xml), "bpmn")
    assert problem.element_id == "vers-suivi"
    assert problem.line == line_of(xml, '<bpmn:sequenceFlow id="vers-suivi"')


def test_several_executable_processes_name_the_candidates():
    second = '<bpmn:process id="autre" isExecutable="true"><bpmn:startEvent id="autre-start" /></bpmn:process>'
    xml = edit(simple(), "</bpmn:definitions>", second + "</bpmn:definitions>")
    problem = one(refused(xml), "process")
    assert "'accompagnement-simple'" in problem.message and "'autre'" in problem.message


TWO_PROCESSES = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="appelant" isExecutable="true">
    <bpmn:startEvent id="s1" /><bpmn:callActivity id="appel" calledElement="appele" /><bpmn:endEvent id="e1" />
    <bpmn:sequenceFlow id="f1" sourceRef="s1" targetRef="appel" />
    <bpmn:sequenceFlow id="f2" sourceRef="appel" targetRef="e1" />
  </bpmn:process>
  <bpmn:process id="appele" isExecutable="true">
    <bpmn:startEvent id="s2" /><bpmn:endEvent id="e2" />
    <bpmn:sequenceFlow id="f3" sourceRef="s2" targetRef="e2" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_called_executable_process_of_the_same_file_is_not_the_pathway():
    parsed = parse_pathway(TWO_PROCESSES, form_keys=FORMS)
    assert parsed.key == "appelant"
    assert parsed.called_processes == {"appele"} and set(parsed.subprocess_specs) == {"appele"}


def test_non_executable_process_is_refused():
    xml = edit(simple(), 'isExecutable="true"', 'isExecutable="false"')
    problem = one(refused(xml), "process")
    assert 'isExecutable="true"' in problem.message and problem.element_id == "accompagnement-simple"


def test_call_activity_to_an_unknown_process_is_refused():
    problems = refused(fixture("sortie-accompagnement.bpmn"), library={"autre": simple()})
    problem = one(problems, "call-activity")
    assert problem.element_id == "relais" and "passage-de-relais" in problem.message
    assert problem.line == line_of(fixture("sortie-accompagnement.bpmn"), '<bpmn:callActivity id="relais"')


# --- Lint -------------------------------------------------------------------------------------------


def test_user_task_without_lane_is_refused():
    xml = edit(simple(), "<bpmn:flowNodeRef>designation</bpmn:flowNodeRef>", "")
    problem = one(refused(xml), "user-task-lane")
    assert problem.element_id == "designation" and problem.line == line_of(xml, '<bpmn:userTask id="designation"')


def test_unknown_and_missing_form_keys_are_refused():
    xml = edit(simple(), ' camunda:formKey="relance"', "")
    problems = refused(xml, form_keys=FORMS - {"diagnostic"})
    form_problems = {p.element_id: p for p in problems if p.rule == "form-key"}
    assert set(form_problems) == {"diagnostic", "relance"}
    assert "'diagnostic'" in form_problems["diagnostic"].message
    assert "no form" in form_problems["relance"].message


def test_unquoted_timer_is_refused_suggesting_quotes():
    xml = edit(simple(), '"P15D"</bpmn:timeDuration>', "P15D</bpmn:timeDuration>")
    problem = one(refused(xml), "timer-expression")
    assert problem.element_id == "relance-timer" and problem.line == line_of(xml, "<bpmn:timeDuration")
    assert 'quotes: "P15D"' in problem.message and "NameError" in problem.message


def test_invalid_iso_duration_is_refused():
    xml = edit(simple(), '"P15D"</bpmn:timeDuration>', '"P15X"</bpmn:timeDuration>')
    problem = one(refused(xml), "timer-expression")
    assert "'P15X'" in problem.message and "ISO 8601 duration" in problem.message


def test_invalid_due_in_is_refused():
    problem = one(refused(edit(simple(), 'spie:dueIn="P30D"', 'spie:dueIn="30 jours"')), "timer-expression")
    assert problem.element_id == "diagnostic" and "spie:dueIn" in problem.message


def test_script_syntax_error_names_the_line_inside_the_script():
    xml = edit(simple(), 'besoin = "social"', "besoin = = 1")
    problem = one(refused(xml), "python-syntax")
    assert problem.element_id == "init"
    assert "line 2 of the script" in problem.message
    assert problem.line == line_of(xml, "besoin = = 1")


def test_condition_syntax_error_is_refused():
    xml = edit(simple(), 'besoin == "social"', 'besoin === "social"')
    problem = one(refused(xml), "python-syntax")
    assert problem.element_id == "vers-designation" and problem.line == line_of(xml, "besoin ===")


def test_dmn_output_syntax_error_is_refused():
    dmn = edit(fixture("orientation.dmn"), '<text>"sociopro"</text>', '<text>"sociopro</text>')
    problem = one(refused(fixture("entree-diagnostic.bpmn"), [dmn]), "dmn")
    assert problem.element_id == "rule-sociopro-out" and problem.message.startswith("decision-1.dmn: ")
    assert problem.line == line_of(dmn, '"sociopro<')


def test_dmn_input_entry_syntax_error_is_refused():
    dmn = edit(fixture("orientation.dmn"), "<text>&gt;= 3</text>", "<text>&gt;= = 3</text>")
    problem = one(refused(fixture("entree-diagnostic.bpmn"), [dmn]), "python-syntax")
    assert problem.element_id == "rule-social-in" and problem.line == line_of(dmn, "&gt;= = 3")


def test_malformed_dmn_is_refused_naming_the_file():
    dmn = edit(fixture("orientation.dmn"), "</decision>", "</decisio>")
    problem = one(refused(fixture("entree-diagnostic.bpmn"), [dmn]), "xml-syntax")
    assert problem.message.startswith("decision-1.dmn: malformed XML")


def test_missing_dmn_decision_is_refused_on_the_task():
    problem = one(refused(fixture("entree-diagnostic.bpmn")), "bpmn")
    assert problem.element_id == "decider-orientation" and "orientation" in problem.message


# --- Nothing but DeployError escapes ---------------------------------------------------------------


def test_unexpected_exception_becomes_a_parse_problem(monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(SpiffBpmnParser, "get_spec", broken)
    problem = one(refused(simple()), "parse")
    assert "RuntimeError" in problem.message and "boom" in problem.message


def test_crashing_lint_rule_is_reported():
    def broken_rule(lint):
        raise KeyError("oops")

    problem = one(refused(simple(), rules=[broken_rule]), "lint")
    assert "broken_rule" in problem.message


@pytest.mark.parametrize(
    "upload",
    [b"", b"not xml at all", b"<a/>", "<?xml version='1.0' encoding='utf-8'?><a/>", b"\xff\xfe<\x00"],
    ids=["empty", "text", "foreign-root", "str-with-declaration", "bad-encoding"],
)
def test_garbage_is_refused_with_a_deploy_error(upload):
    assert refused(upload)[0].message


def test_library_file_without_the_called_process_is_refused():
    library = {"passage-de-relais": fixture("sortie-accompagnement.bpmn")}  # wrong file under that key
    problem = one(refused(fixture("sortie-accompagnement.bpmn"), library=library), "call-activity")
    assert problem.element_id == "relais" and "no such process" in problem.message
