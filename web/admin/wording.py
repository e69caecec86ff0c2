"""French wording of the administration pages: refusals of the engine, directory import errors, log entries.

The engine explains its refusals in English for developers (and the API
returns them as they are); the pages say them in French, as
:func:`web.labels.engine_message` does for cases and tasks.
"""
from __future__ import annotations

import re

from engine.accounts import MIN_PASSWORD_LENGTH
from web import labels

ACCOUNT_FIELDS = {"name": "Prénom et nom", "email": "Adresse électronique", "role": "Rôle",
                  "structure_id": "Structure", "password": "Mot de passe"}

_ACCOUNT_ERRORS = {
    ("name", "required"): "Indiquez le prénom et le nom.",
    ("name", "at most 255 characters"): "255 caractères au plus.",
    ("email", "not an email address"): "Indiquez une adresse électronique valide, par exemple prenom.nom@structure.fr.",
    ("email", "already used"): "Un compte utilise déjà cette adresse électronique.",
    ("structure_id", "no such structure"): "Cette structure n'est pas dans l'annuaire.",
    ("structure_id", "every professional belongs to a structure"):
        "Choisissez la structure du professionnel : seuls les administrateurs peuvent ne pas en avoir.",
    ("password", f"at least {MIN_PASSWORD_LENGTH} characters"):
        f"Au moins {MIN_PASSWORD_LENGTH} caractères, ou laissez vide pour en générer un.",
}

_CONFLICTS = [
    (re.compile(r"cannot change their own role"),
     "Vous ne pouvez pas changer votre propre rôle : demandez-le à un autre administrateur."),
    (re.compile(r"cannot deactivate their own account"),
     "Vous ne pouvez pas désactiver votre propre compte : demandez-le à un autre administrateur."),
    (re.compile(r"holds claimed tasks or follows cases"),
     ("Ce professionnel a des tâches prises ou suit des parcours : un encadrant de sa structure doit d'abord les "
      "confier à un collègue avant qu'il change de structure ou quitte les rôles de référent et d'encadrant. "
      "S'il a quitté son poste, désactivez plutôt son compte : ses tâches reviendront à la file de sa structure.")),
]


def account_error(field: str, message: str) -> str:
    if field == "role":
        return "Choisissez un des rôles proposés."
    return _ACCOUNT_ERRORS.get((field, message), f"Valeur refusée : {message}")


def account_errors(errors: list[dict]) -> dict[str, list[str]]:
    """The engine's ``[{field, message}]`` as French messages by field."""
    by_field: dict[str, list[str]] = {}
    for error in errors:
        field = str(error.get("field") or "")
        by_field.setdefault(field, []).append(account_error(field, str(error.get("message") or "")))
    return by_field


def conflict(message: str) -> str:
    return labels.translated(message, _CONFLICTS, labels.engine_message(message))


# ---------------------------------------------------------------- directory import (engine.directory_io)

_COLUMNS = "id, type, name, siret, email, phone, address, sensitive, is_pilot, demo, communes, epci"
_TYPES = ", ".join(labels.STRUCTURE_TYPES)
_IMPORT_ERRORS = [
    (r"empty file", "Le fichier est vide : la première ligne doit nommer les colonnes, au moins type et name."),
    (r"unknown column '(?P<v>[^']*)'", f"Colonne inconnue « {{v}} ». Colonnes possibles : {_COLUMNS}."),
    (r"missing column '(?P<v>[^']*)'", "Colonne obligatoire absente : « {v} »."),
    (r"column '(?P<v>[^']*)' appears twice", "La colonne « {v} » apparaît deux fois."),
    (r"more values than columns", "Cette ligne a plus de valeurs que l'en-tête n'a de colonnes."),
    (r"id must be a whole number, got '(?P<v>[^']*)'", "L'identifiant doit être un nombre entier (ici « {v} »)."),
    (r"no structure with id (?P<v>\d+)",
     "Aucune structure n'a l'identifiant {v} : laissez la colonne id vide pour créer une structure."),
    (r"unknown structure type '(?P<v>[^']*)'", f"Type de structure inconnu « {{v}} ». Types possibles : {_TYPES}."),
    (r"the name is missing", "Le nom de la structure manque."),
    (r"the name is longer than (?P<v>\d+)", "Le nom dépasse {v} caractères."),
    (r"invalid SIRET '(?P<v>[^']*)'", "SIRET invalide « {v} » : 14 chiffres avec une clé de contrôle valide."),
    (r"invalid email address '(?P<v>[^']*)'", "Adresse électronique invalide « {v} »."),
    (r"longer than (?P<v>\d+) characters", "Plus de {v} caractères."),
    (r"expected true or false, got '(?P<v>[^']*)'", "Valeur « {v} » : indiquez true ou false (oui ou non)."),
    (r"unknown INSEE code\(s\): (?P<v>.*)", "Code(s) INSEE inconnu(s) de l'annuaire : {v}."),
    (r"unknown EPCI SIREN code\(s\).*: (?P<v>.*)", "SIREN d'EPCI inconnu(s) (aucune commune de l'annuaire) : {v}."),
    (r"id (?P<v>\d+) already given on line (?P<w>\d+)", "L'identifiant {v} figure déjà ligne {w}."),
    (r"structure (?P<v>\d+) already has this type and name",
     "La structure n° {v} a déjà ce type et ce nom."),
    (r"same type and name as line (?P<v>\d+)", "Même type et même nom qu'à la ligne {v}."),
    (r"is over (?P<v>\d+) MB", "Le fichier dépasse {v} Mo."),
    (r"not UTF-8", "Le fichier n'est pas encodé en UTF-8 : enregistrez-le au format « CSV UTF-8 »."),
]
_IMPORT_PATTERNS = [(re.compile(pattern), french) for pattern, french in _IMPORT_ERRORS]


def import_message(message: str) -> str:
    return labels.translated(message, _IMPORT_PATTERNS, f"Refusé : {message}")


# ---------------------------------------------------------------- logs

ACCESS_ACTIONS = {
    "case.create": "Création du dossier",
    "case.list": "Dossier listé",
    "case.read": "Consultation du dossier",
    "case.diagram": "Consultation du schéma du parcours",
    "task.read": "Consultation d'une tâche",
    "task.complete": "Validation d'une tâche",
    "task.claim": "Prise d'une tâche",
    "task.release": "Libération d'une tâche",
    "task.assign": "Attribution d'une tâche",
    "prescription.create": "Orientation vers une offre",
    "prescription.list": "Liste des orientations",
    "prescription.read": "Consultation d'une orientation",
    "prescription.accept": "Orientation acceptée",
    "prescription.refuse": "Orientation refusée",
}
OUTCOMES = {"allowed": "Autorisé", "denied": "Refusé"}

ADMIN_ACTIONS = {
    "user_created": "Compte créé",
    "user_updated": "Rôle ou structure modifié",
    "user_deactivated": "Compte désactivé",
    "user_reactivated": "Compte réactivé",
    "password_reset": "Mot de passe réinitialisé",
    "directory_imported": "Annuaire importé",
}


def access_action(code: str) -> str:
    if code.startswith("message."):
        return f"Information transmise au dossier ({code[len('message.'):]})"
    return ACCESS_ACTIONS.get(code, code)


def admin_detail(action: str, detail: dict, structures: dict[int, str]) -> str:
    """One line saying what an administration event changed."""
    def structure(value) -> str:
        return structures.get(value, "aucune structure") if value is not None else "aucune structure"

    parts = []
    if action == "user_created":
        parts.append(f"{labels.ROLES.get(detail.get('role'), detail.get('role'))}, {structure(detail.get('structure_id'))}")
    for name, (before, after) in ((k, v) for k, v in detail.items() if k in ("role", "structure_id")
                                  and isinstance(v, list)):
        if name == "role":
            parts.append(f"rôle : {labels.ROLES.get(before, before)} → {labels.ROLES.get(after, after)}")
        else:
            parts.append(f"structure : {structure(before)} → {structure(after)}")
    if detail.get("password") == "generated":
        parts.append("mot de passe généré")
    elif detail.get("password") == "chosen":
        parts.append("mot de passe choisi par l'administrateur")
    if detail.get("tokens_revoked"):
        parts.append(f"{detail['tokens_revoked']} jeton(s) d'API révoqué(s)")
    if detail.get("tasks_released"):
        parts.append(f"{len(detail['tasks_released'])} tâche(s) rendue(s) à la file de la structure")
    if action == "directory_imported":
        parts.append(f"{detail.get('created', 0)} structure(s) créée(s), {detail.get('updated', 0)} modifiée(s), "
                     f"{detail.get('unchanged', 0)} inchangée(s)")
    return " ; ".join(parts)
