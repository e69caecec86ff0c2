"""French wording of the designer pages: BPMN element kinds, deploy problems, changes between two versions."""
from __future__ import annotations

from engine.errors import Problem
from engine.pathway_diff import Change, PathwayDiff, Timer
from web import labels

ELEMENT_TYPES = {
    "process": "processus", "lane": "couloir", "sequenceFlow": "flux",
    "task": "tâche", "userTask": "tâche utilisateur", "scriptTask": "tâche script", "serviceTask": "tâche de service",
    "businessRuleTask": "tâche de règle métier", "manualTask": "tâche manuelle", "sendTask": "tâche d'envoi",
    "receiveTask": "tâche de réception", "callActivity": "appel de parcours", "subProcess": "sous-processus",
    "transaction": "transaction", "adHocSubProcess": "sous-processus ad hoc",
    "startEvent": "événement de début", "endEvent": "événement de fin", "boundaryEvent": "événement de bordure",
    "intermediateCatchEvent": "événement intermédiaire (attente)",
    "intermediateThrowEvent": "événement intermédiaire (émission)",
    "exclusiveGateway": "branchement exclusif", "parallelGateway": "branchement parallèle",
    "inclusiveGateway": "branchement inclusif", "eventBasedGateway": "branchement sur événement",
    "complexGateway": "branchement complexe",
}

# Deploy rules (engine.bpmn_parsing, engine.lint, engine.spie_lint) -> what a designer reads first.
RULE_TITLES = {
    "xml-syntax": "Le fichier n'est pas un XML bien formé",
    "xml-doctype": "DOCTYPE refusé (sécurité)",
    "xml-root": "Ce n'est pas un document BPMN 2.0",
    "xsd": "Non conforme au schéma BPMN 2.0",
    "duplicate-id": "Identifiant utilisé plusieurs fois",
    "sequence-flow": "Flux relié à un élément absent",
    "process": "Processus exécutable introuvable ou ambigu",
    "process-key": "Identifiant du processus modifié",
    "call-activity": "Appel d'un parcours inconnu",
    "bpmn": "Erreur BPMN",
    "dmn": "Erreur dans une table de décision",
    "parse": "Lecture du schéma impossible",
    "lint": "Une règle de vérification a échoué",
    "timer-expression": "Expression de minuterie ou d'échéance invalide",
    "form-key": "Formulaire manquant ou inconnu",
    "form-schema": "Formulaire invalide",
    "user-task-lane": "Tâche utilisateur hors de tout couloir",
    "python-syntax": "Script ou condition Python invalide",
    "spie-lane-structure-type": "Couloir sans typologie de structure connue",
    "spie-exit-without-hand-off": "Sortie d'accompagnement sans passage de relais",
    "spie-hand-off-receiver": "Passage de relais sans structure d'accueil connue",
}

# Where a rule's warnings say something else than its errors.
WARNING_TITLES = {
    "timer-expression": "Minuterie calculée à l'exécution : non vérifiable au déploiement",
}

SEVERITIES = {"error": "Erreur", "warning": "Avertissement"}

# spie:* attributes -> the phrase announcing their change.
SPIE_CHANGES = {
    "structureType": "Typologie de structure modifiée",
    "structureTypeVariable": "Variable de typologie modifiée",
    "formKey": "Formulaire modifié",
    "exit": "Sortie d'accompagnement modifiée",
    "dueIn": "Échéance modifiée",
    "audience": "Destinataires modifiés",
    "action": "Effet sur le groupe de suivi modifié",
    "positiveExit": "Branche de sortie positive modifiée",
    "receivingStructureType": "Structure d'accueil modifiée",
}
_YES_NO_ATTRIBUTES = {"exit", "positiveExit"}
_STRUCTURE_ATTRIBUTES = {"structureType", "receivingStructureType"}

TIMER_KINDS = {"timeDuration": "durée", "timeDate": "date", "timeCycle": "cycle"}

# spie:action (engine.task_effects): what completing the task does to the case.
ACTIONS = {"designate-referent": "Désigner le référent", "joint-meeting": "Rendez-vous tripartite",
           "orientation": "Orientation", "prescribe": "Prescrire une offre"}

NONE = "aucun"


def problem_out(problem: Problem | dict) -> dict:
    """A deploy problem (or a stored warning) for the page: French title and severity, the engine's English detail."""
    data = problem.to_dict() if isinstance(problem, Problem) else dict(problem)
    warning = data.get("severity") == "warning"
    data["title"] = (warning and WARNING_TITLES.get(data.get("rule"))) or RULE_TITLES.get(data.get("rule"), "Problème")
    data["severity_label"] = SEVERITIES.get(data.get("severity"), "Erreur")
    return data


def element_type(name: str) -> str:
    return ELEMENT_TYPES.get(name, name)


def describe(change: Change, diff: PathwayDiff) -> str:
    """One change as a French sentence (« Minuterie modifiée : P15D → P10D sur « 15 jours » »)."""
    where = f"sur {_element(change)}"
    kind, before, after = change.kind, change.before, change.after
    if kind == "added":
        return f"Élément ajouté : {element_type(change.element_type)} {_quoted(change)}"
    if kind == "removed":
        return f"Élément supprimé : {element_type(change.element_type)} {_quoted(change)}"
    if kind == "renamed":
        return f"Nom modifié : {_q(before) if before else 'sans nom'} → {_q(after) if after else 'sans nom'} " \
               f"({element_type(change.element_type)} {change.element_id})"
    if kind == "type":
        return f"Type modifié : {element_type(before)} → {element_type(after)} {where}"
    if kind == "spie":
        phrase = SPIE_CHANGES.get(change.attribute, f"Attribut spie:{change.attribute} modifié")
        return f"{phrase} : {_spie_value(change.attribute, before)} → {_spie_value(change.attribute, after)} {where}"
    if kind == "timer":
        return _timer_change(before, after, where)
    if kind == "rerouted":
        return f"Flux redirigé : {_route(diff, before)} devient {_route(diff, after)} {where}"
    if kind == "condition":
        return f"Condition modifiée : {before or 'aucune'} → {after or 'aucune'} {where}"
    if kind == "script":
        return f"Script modifié {where}"
    if kind == "lane":
        return f"Changement de couloir : {_label(diff, before)} → {_label(diff, after)} {where}"
    if kind == "documentation":
        return f"Description modifiée {where}"
    return _attribute_change(change, diff, where)


def _attribute_change(change: Change, diff: PathwayDiff, where: str) -> str:
    before, after = change.before, change.after
    if change.attribute == "calledElement":
        return f"Parcours appelé modifié : {before or NONE} → {after or NONE} {where}"
    if change.attribute == "attachedToRef":
        return f"Rattachement modifié : {_label(diff, before)} → {_label(diff, after)} {where}"
    if change.attribute == "cancelActivity":
        return f"Interruption modifiée : {_interrupting(before)} → {_interrupting(after)} {where}"
    if change.attribute == "default":
        return f"Flux par défaut modifié : {_label(diff, before)} → {_label(diff, after)} {where}"
    return f"Attribut {change.attribute} modifié : {before or NONE} → {after or NONE} {where}"


def _timer_change(before: Timer | None, after: Timer | None, where: str) -> str:
    if before is None:
        return f"Minuterie ajoutée : {_timer(after, True)} {where}"
    if after is None:
        return f"Minuterie retirée : {_timer(before, True)} {where}"
    with_kind = before.kind != after.kind
    return f"Minuterie modifiée : {_timer(before, with_kind)} → {_timer(after, with_kind)} {where}"


def _timer(timer: Timer, with_kind: bool) -> str:
    value = timer.value or "vide"
    if timer.computed and timer.value:
        value = f"{value} (calculée)"
    return f"{TIMER_KINDS.get(timer.kind, 'sans type')} {value}" if with_kind else value


def _spie_value(attribute: str | None, value: str | None) -> str:
    if attribute in _YES_NO_ATTRIBUTES:
        return "oui" if (value or "").lower() in ("true", "1") else "non"
    if value is None:
        return "aucune" if attribute in _STRUCTURE_ATTRIBUTES else NONE
    if attribute in _STRUCTURE_ATTRIBUTES:
        return " puis ".join(labels.structure_type(code.strip()) for code in value.split("|"))
    if attribute == "audience":
        return labels.AUDIENCES.get(value, value)
    if attribute == "action":
        return ACTIONS.get(value, value)
    return value


def _interrupting(value: str | None) -> str:
    return "non interrompante" if (value or "").lower() == "false" else "interrompante"


def _route(diff: PathwayDiff, ends: tuple[str | None, str | None]) -> str:
    return f"{_label(diff, ends[0])} → {_label(diff, ends[1])}"


def _label(diff: PathwayDiff, element_id: str | None) -> str:
    return _q(diff.label(element_id)) if element_id else NONE


def _element(change: Change) -> str:
    return f"{_quoted(change)} ({element_type(change.element_type)})"


def _quoted(change: Change) -> str:
    return _q(change.name) if change.name else change.element_id


def _q(text: str) -> str:
    return f"« {text} »"
