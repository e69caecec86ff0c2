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
# Where one of a rule's messages needs its own title (Problem.code).
CODE_TITLES = {"not-dmn": "Ce n'est pas un document DMN"}

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

# Each message of the deploy rules (Problem.code), in French, from the values the engine put in it
# (Problem.params). Texts quoted from lxml, Python or SpiffWorkflow ({error}) stay as they were written.
PROBLEM_DETAILS = {
    "rule-crashed": "La règle de vérification {rule} a échoué : {error}.",
    "due-in-not-duration": "L'échéance spie:dueIn « {value} » de la tâche {task} n'est pas une durée ISO 8601"
                           " comme P15D.",
    "timer-empty": "Minuterie ({kind}) de {owner} : l'expression est vide ; il faut {expected}.",
    "timer-not-iso": "Minuterie ({kind}) de {owner} : « {value} » n'est pas {expected}.",
    "timer-unquoted": "Minuterie ({kind}) de {owner} : {value} est écrit sans guillemets. Les expressions de minuterie"
                      " sont du Python : ce serait une erreur à l'exécution. Écrivez-la entre guillemets : \"{value}\".",
    "timer-not-python": "Minuterie ({kind}) de {owner} : ce n'est pas une expression Python ({error}) ; il faut"
                        " {expected}, entre guillemets.",
    "timer-computed": "Minuterie ({kind}) de {owner} : calculée à l'exécution ({value}), elle ne peut pas être"
                      " vérifiée au déploiement.",
    "form-missing": "La tâche utilisateur {task} n'a pas de formulaire : renseignez spie:formKey.",
    "form-unknown": "La tâche utilisateur {task} utilise le formulaire « {form_key} », qui n'existe pas.",
    "task-without-lane": "La tâche utilisateur {task} n'est dans aucun couloir : placez-la dans le couloir de la"
                         " structure qui la réalise.",
    "python-invalid": "{what} de {owner} : Python invalide ({error}), ligne {line} : {text}",
    "exit-without-hand-off": "Le chemin {path} atteint la sortie {exit} sans passage de relais (appel de"
                             " {hand_off}) ni branche de sortie positive ({positive_exits}).",
    "lane-unknown-type": "Le couloir « {lane} » ne correspond à aucune typologie de structure connue ({unknown}) :"
                         " renseignez spie:structureType parmi {known}.",
    "hand-off-without-receiver": "L'appel {call} de {hand_off} n'indique pas de structure d'accueil connue"
                                 " (spie:receivingStructureType : « {receiving} »).",
    "process-key-changed": "Le processus exécutable de ce schéma est « {found} », et non « {expected} » : gardez"
                           " l'identifiant « {expected} » pour créer une nouvelle version de ce parcours.",
    "form-not-object": "Le formulaire « {form} » n'est pas un objet JSON.",
    "form-too-large": "Le formulaire « {form} » dépasse {limit} octets.",
    "form-invalid-schema": "Le formulaire « {form} » n'est pas un JSON Schema valide : {error}",
    "parse-crashed": "Erreur inattendue à la lecture du schéma : {error}",
    "xml-malformed": "XML mal formé : {error}",
    "doctype": "Un DOCTYPE n'est pas accepté : les DTD et les déclarations d'entités sont refusées par sécurité.",
    "not-bpmn": "Un document BPMN 2.0 (bpmn:definitions) est attendu ; l'élément racine est <{found}>.",
    "not-dmn": "Un document DMN 1.1, 1.2 ou 1.3 (dmn:definitions) est attendu ; l'élément racine est <{found}>.",
    "duplicate-id": "L'identifiant « {id} » est utilisé {count} fois, lignes {lines}.",
    "flow-missing-source": "Le flux {flow} part d'un élément absent : {ref}.",
    "flow-missing-target": "Le flux {flow} mène à un élément absent : {ref}.",
    "no-process": "Le fichier ne contient aucun processus (bpmn:process).",
    "no-executable-process": "Aucun processus exécutable (trouvés : {found}) : mettez isExecutable=\"true\" sur le"
                             " parcours.",
    "ambiguous-process": "Impossible de savoir quel processus exécutable est le parcours parmi {candidates} :"
                         " n'en gardez qu'un qui ne soit appelé par aucun autre.",
    "call-unknown-process": "L'appel {call} vise le processus « {process} », qui n'est ni dans ce fichier ni un"
                            " parcours déployé.",
    "call-without-process": "L'appel {call} ne nomme aucun processus (calledElement est vide).",
    "call-process-missing": "L'appel {call} vise « {process} », mais le fichier déployé de ce parcours n'a pas ce"
                            " processus.",
    "xsd": "Écart au schéma BPMN 2.0 : {error}",
    "spiff-validation": "Refusé par SpiffWorkflow : {error}",
}
# Values that are words of the engine's English, put into French before they go into a detail.
_PARAM_WORDS = {
    "kind": TIMER_KINDS,
    "what": {"script": "Script", "condition": "Condition", "DMN expression": "Expression DMN",
             "DMN input entry": "Entrée DMN"},
}
_EXPECTED = {"timeDate": 'une date-heure ISO 8601 comme "2025-01-31T09:00:00"',
             "timeDuration": 'une durée ISO 8601 comme "P15D"',
             "timeCycle": 'un intervalle répété ISO 8601 comme "R3/P1D"'}


def problem_out(problem: Problem | dict) -> dict:
    """A deploy problem (or a stored warning) for the page: French title, severity and detail.

    The detail is the engine's English (``detail_lang`` "en") only for a problem without a
    known code: a rule added without its wording here, or a warning stored before codes existed.
    """
    data = problem.to_dict() if isinstance(problem, Problem) else dict(problem)
    warning = data.get("severity") == "warning"
    data["title"] = (CODE_TITLES.get(data.get("code") or "") or (warning and WARNING_TITLES.get(data.get("rule")))
                     or RULE_TITLES.get(data.get("rule"), "Problème"))
    data["severity_label"] = SEVERITIES.get(data.get("severity"), "Erreur")
    detail = problem_detail(data.get("code"), data.get("params") or {})
    data["detail"], data["detail_lang"] = (detail, "fr") if detail else (data.get("message"), "en")
    return data


def problem_detail(code: str | None, params: dict) -> str | None:
    """The French sentence of one rule's message, or None when its code or one of its values is unknown."""
    template = PROBLEM_DETAILS.get(code or "")
    if template is None:
        return None
    values = {key: _PARAM_WORDS.get(key, {}).get(value, value) if isinstance(value, str) else value
              for key, value in params.items()}
    if "kind" in params:
        values["expected"] = _EXPECTED.get(params["kind"], "")
    if code == "flow-missing-target" and not params.get("flow"):
        values["flow"] = f"partant de {params.get('source')}"
    try:
        detail = template.format(**values)
    except (KeyError, IndexError, ValueError):
        return None
    return f"Dans {params['file']} : {detail}" if params.get("file") else detail


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
