"""engine.pathway_diff on the real pathways of bpmn/, edited the way a designer would (no database)."""
from __future__ import annotations

from engine.pathway_diff import Change, Timer, diff_versions
from engine.paths import BPMN_DIR
from web.pathway_wording import describe

RELAIS = (BPMN_DIR / "passage-de-relais.bpmn").read_text(encoding="utf-8")
ML = (BPMN_DIR / "jeune-sortant-mission-locale.bpmn").read_text(encoding="utf-8")
ASE = (BPMN_DIR / "jeune-sortant-ase.bpmn").read_text(encoding="utf-8")


def edit(xml: str, old: str, new: str) -> str:
    assert xml.count(old) == 1, f"{old!r} is not once in the file"
    return xml.replace(old, new)


def only_change(old_xml: str, new_xml: str) -> Change:
    changes = diff_versions(old_xml, new_xml).changes
    assert len(changes) == 1, changes
    return changes[0]


def test_a_file_has_no_change_with_itself_even_reformatted():
    assert diff_versions(RELAIS, RELAIS).changes == []
    # Layout, attribute order and indentation are not changes.
    moved = RELAIS.replace('<dc:Bounds x="', '<dc:Bounds x="1').replace("\n    <", "\n<")
    moved = moved.replace('id="delai-15-jours" name="15 jours"', 'name="15 jours" id="delai-15-jours"')
    assert diff_versions(RELAIS, moved).changes == []


def test_timer_duration_changed():
    changed = edit(RELAIS, '<bpmn:timeDuration>"P15D"</bpmn:timeDuration>',
                   '<bpmn:timeDuration>"P10D"</bpmn:timeDuration>')
    diff = diff_versions(RELAIS, changed)
    [change] = diff.changes
    assert change == Change("timer", "delai-15-jours", "boundaryEvent", "15 jours",
                            before=Timer("timeDuration", '"P15D"'), after=Timer("timeDuration", '"P10D"'))
    assert describe(change, diff) == "Minuterie modifiée : P15D → P10D sur « 15 jours » (événement de bordure)"


def test_timer_kind_and_computed_expression():
    changed = edit(ML, "<bpmn:timeDate>date_butee_26_ans</bpmn:timeDate>",
                   '<bpmn:timeDuration>"P1Y"</bpmn:timeDuration>')
    diff = diff_versions(ML, changed)
    [change] = diff.changes
    assert change.before == Timer("timeDate", "date_butee_26_ans") and change.before.computed
    assert change.after.value == "P1Y" and not change.after.computed
    assert describe(change, diff) == ("Minuterie modifiée : date date_butee_26_ans (calculée) → durée P1Y "
                                      "sur « 26 ans » (événement de bordure)")


def test_lane_structure_type_removed_and_form_key_and_due_and_exit_changed():
    changed = edit(RELAIS, ' name="Département (pilote SPIE)" spie:structureType="departement"',
                   ' name="Département (pilote SPIE)"')
    changed = edit(changed, 'spie:formKey="designation-referent" spie:action="designate-referent" spie:dueIn="P15D"',
                   'spie:formKey="entretien" spie:action="designate-referent" spie:dueIn="P10D"')
    changed = edit(changed, 'spie:formKey="sortie" spie:exit="true"', 'spie:formKey="sortie"')
    diff = diff_versions(RELAIS, changed)
    by_attribute = {(c.element_id, c.attribute): c for c in diff.changes}
    assert set(by_attribute) == {("lane-pilote", "structureType"), ("designer-referent", "formKey"),
                                 ("designer-referent", "dueIn"), ("sortie-structure-origine", "exit")}
    assert all(c.kind == "spie" for c in diff.changes)
    lane = by_attribute["lane-pilote", "structureType"]
    assert (lane.before, lane.after) == ("departement", None)
    sentences = [describe(c, diff) for c in diff.changes]
    assert ("Typologie de structure modifiée : Département → aucune "
            "sur « Département (pilote SPIE) » (couloir)") in sentences
    assert ("Formulaire modifié : designation-referent → entretien "
            "sur « Accepter le relais et désigner le référent » (tâche utilisateur)") in sentences
    assert ("Échéance modifiée : P15D → P10D "
            "sur « Accepter le relais et désigner le référent » (tâche utilisateur)") in sentences
    assert ("Sortie d'accompagnement modifiée : oui → non "
            "sur « Clore l'accompagnement de la structure d'origine » (tâche utilisateur)") in sentences


def test_flow_rerouted_and_element_renamed():
    changed = edit(RELAIS, 'sourceRef="delai-15-jours" targetRef="relancer-designation"',
                   'sourceRef="delai-15-jours" targetRef="debloquer-relais"')
    changed = edit(changed, 'name="Relance traitée"', 'name="Relance close"')
    diff = diff_versions(RELAIS, changed)
    kinds = {c.kind: c for c in diff.changes}
    assert set(kinds) == {"rerouted", "renamed"}
    assert kinds["rerouted"].element_id == "flux-delai-15-jours"
    assert kinds["rerouted"].after == ("delai-15-jours", "debloquer-relais")
    assert describe(kinds["rerouted"], diff) == (
        "Flux redirigé : « 15 jours » → « Relance : référent non désigné à 15 jours » devient "
        "« 15 jours » → « Débloquer le relais : aucun référent à 30 jours » sur flux-delai-15-jours (flux)")
    assert describe(kinds["renamed"], diff) == (
        "Nom modifié : « Relance traitée » → « Relance close » (événement de fin fin-relance-designation)")


def test_elements_added_and_removed():
    added = edit(RELAIS, '<bpmn:endEvent id="fin-relance-designation" name="Relance traitée"/>',
                 '<bpmn:endEvent id="fin-relance-designation" name="Relance traitée"/>\n'
                 '    <bpmn:userTask id="appeler-personne" name="Appeler la personne" spie:formKey="entretien"/>')
    diff = diff_versions(RELAIS, added)
    [change] = diff.changes
    assert (change.kind, change.element_id, change.element_type) == ("added", "appeler-personne", "userTask")
    assert describe(change, diff) == "Élément ajouté : tâche utilisateur « Appeler la personne »"

    diff = diff_versions(added, RELAIS)
    [change] = diff.changes
    assert change.kind == "removed"
    assert describe(change, diff) == "Élément supprimé : tâche utilisateur « Appeler la personne »"


def test_call_activity_receiver_lane_move_and_condition():
    changed = edit(ML, 'calledElement="passage-de-relais" spie:receivingStructureType="departement"',
                   'calledElement="passage-de-relais" spie:receivingStructureType="ccas|departement"')
    diff = diff_versions(ML, changed)
    [change] = diff.changes
    assert describe(change, diff) == ("Structure d'accueil modifiée : Département → CCAS / CIAS puis Département "
                                      "sur « Passage de relais au Département » (appel de parcours)")

    moved = edit(ML, "<bpmn:flowNodeRef>fin-alerte-26-ans</bpmn:flowNodeRef>\n", "")
    moved = edit(moved, "<bpmn:flowNodeRef>fin-relais-departement</bpmn:flowNodeRef>",
                 "<bpmn:flowNodeRef>fin-relais-departement</bpmn:flowNodeRef>\n"
                 "        <bpmn:flowNodeRef>fin-alerte-26-ans</bpmn:flowNodeRef>")
    diff = diff_versions(ML, moved)
    [change] = diff.changes
    assert (change.kind, change.before, change.after) == ("lane", "lane-pilote", "lane-mission-locale")
    assert describe(change, diff) == ("Changement de couloir : « Département (pilote SPIE) » → « Mission Locale » "
                                      "sur « Alerte traitée » (événement de fin)")

    condition = edit(RELAIS, "presence_personne and presence_referent_origine and presence_referent_accueil",
                     "presence_personne and presence_referent_accueil")
    [change] = diff_versions(RELAIS, condition).changes
    assert (change.kind, change.element_id) == ("condition", "flux-presences-sortie")


def test_positive_exit_flag_and_interruption_and_script():
    brsa = (BPMN_DIR / "brsa-oriente-social.bpmn").read_text(encoding="utf-8")
    changed = brsa.replace('spie:positiveExit="true"', "")
    diff = diff_versions(brsa, changed)
    [change] = diff.changes
    assert (change.kind, change.attribute, change.before, change.after) == ("spie", "positiveExit", "true", None)
    assert describe(change, diff).startswith("Branche de sortie positive modifiée : oui → non sur ")

    interrupting = edit(RELAIS, 'attachedToRef="designer-referent" cancelActivity="false">\n'
                                '      <bpmn:timerEventDefinition id="delai-30-jours-timer">',
                        'attachedToRef="designer-referent">\n'
                        '      <bpmn:timerEventDefinition id="delai-30-jours-timer">')
    diff = diff_versions(RELAIS, interrupting)
    [change] = diff.changes
    assert describe(change, diff) == ("Interruption modifiée : non interrompante → interrompante "
                                      "sur « 30 jours » (événement de bordure)")

    script = edit(ML, '<bpmn:script>entry_structure_type = "departement"</bpmn:script>',
                  '<bpmn:script>entry_structure_type = "ccas"</bpmn:script>')
    [change] = diff_versions(ML, script).changes
    assert (change.kind, change.element_id) == ("script", "preparer-suite-rsa")


def test_every_real_pathway_has_no_change_with_itself_and_each_timer_counts_once():
    for path in BPMN_DIR.glob("*.bpmn"):
        xml = path.read_text(encoding="utf-8")
        assert diff_versions(xml, xml).changes == [], path.name
    both = ASE.replace("<bpmn:timeDate>date_limite_entretien_autonomie</bpmn:timeDate>",
                       '<bpmn:timeDuration>"P6M"</bpmn:timeDuration>')
    both = both.replace("<bpmn:timeDate>date_majorite</bpmn:timeDate>", '<bpmn:timeDuration>"P1Y"</bpmn:timeDuration>')
    changes = diff_versions(ASE, both).changes
    assert [(c.kind, c.after.value) for c in changes] == [("timer", "P6M"), ("timer", "P1Y")]
