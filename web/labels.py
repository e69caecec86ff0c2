"""French wording of the interface: roles, states, timeline events, dates (Europe/Paris)."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.directory import STRUCTURE_TYPES
from engine.people import EXIT_REASONS

try:
    PARIS = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # a machine without a time zone database: show UTC rather than fail
    PARIS = UTC

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")

ROLES = {"referent": "Référent de parcours", "supervisor": "Encadrant de structure",
         "designer": "Concepteur de parcours", "admin": "Administrateur"}

TASK_STATES = {"open": "À prendre", "claimed": "Prise", "completed": "Terminée", "cancelled": "Annulée"}

CASE_STATUSES = {"active": "En cours", "closed": "Clos", "incident": "Incident à traiter"}

AUDIENCES = {"referent": "Référents", "supervisor": "Encadrants", "pilot": "Pilote SPIE"}

# HumanTask.escalation_level (engine.projection.ESCALATION_LEVELS): who has been alerted.
ESCALATION_LEVELS = {0: "Aucune escalade", 1: "Niveau 1 · encadrant", 2: "Niveau 2 · pilote SPIE"}

CARE_TEAM_ROLES = {"referent": "Référent"}

HTTP_TITLES = {400: "Requête refusée", 401: "Connexion nécessaire", 403: "Accès refusé", 404: "Page introuvable",
               405: "Action non permise", 409: "Action impossible pour l'instant", 413: "Envoi trop volumineux",
               422: "Données refusées", 429: "Trop de tentatives", 500: "Erreur inattendue"}

# "Avancer le temps": durations offered in simulation mode (ISO 8601 → label).
ADVANCE_CHOICES = {"P1D": "1 jour", "P7D": "1 semaine", "P15D": "15 jours", "P1M": "1 mois", "P3M": "3 mois"}

EVENTS = {
    "case_started": "Parcours démarré",
    "case_closed": "Parcours clos",
    "task_created": "Tâche ouverte",
    "task_claimed": "Tâche prise",
    "task_released": "Tâche libérée",
    "task_assigned": "Tâche attribuée",
    "task_completed": "Tâche terminée",
    "task_cancelled": "Tâche annulée",
    "task_unassigned": "Aucune structure trouvée : tâche confiée au pilote",
    "timer_fired": "Échéance atteinte",
    "referent_joined": "Entrée dans le groupe de suivi",
    "referent_left": "Sortie du groupe de suivi",
    "joint_meeting_recorded": "Rendez-vous tripartite tenu",
    "joint_meeting_incomplete": "Rendez-vous tripartite incomplet",
    "orientation_decided": "Orientation décidée",
    "message_delivered": "Information reçue",
    "incident_opened": "Incident technique",
    "incident_retried": "Incident relancé",
    "prescription_sent": "Prescription envoyée",
    "prescription_reminded": "Prescription relancée (sans réponse à 10 jours)",
    "prescription_accepted": "Prescription acceptée",
    "prescription_refused": "Prescription refusée",
    "prescription_expired": "Prescription expirée (sans réponse à 30 jours)",
}

# Prescriptions (orientations vers une offre): where they come from; their states are engine.prescriptions.STATES.
PRESCRIPTION_ORIGINS = {"referent": "Prescription d'un référent", "self": "Demande de la personne elle-même"}

# Zones of the offers that are neither a commune nor an EPCI.
ZONES = {"91": "Essonne (département)", "france": "France entière", "99100": "France entière"}

ORIENTATIONS = {"social": "Sociale", "sociopro": "Socio-professionnelle", "pro": "Professionnelle"}


def structure_type(code: str | None) -> str:
    return STRUCTURE_TYPES.get(code or "", code or "")


def exit_reason(code: str | None) -> str:
    if not code:
        return ""
    return EXIT_REASONS.get(code, {"case-closed": "Clôture du parcours"}.get(code, code))


def _local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS)


def date_fr(value: date | datetime | str | None) -> str:
    """« 5 janvier 2026 »."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = _local(value).date()
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"


def short_date_fr(value: date | datetime | None) -> str:
    """« 05/01/2026 »."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = _local(value).date()
    return value.strftime("%d/%m/%Y")


def datetime_fr(value: datetime | None) -> str:
    """« 5 janvier 2026 à 10 h 00 » (heure de Paris)."""
    if value is None:
        return ""
    local = _local(value)
    return f"{date_fr(local.date())} à {local.hour} h {local.minute:02d}"


def days_between(start: datetime, end: datetime) -> int:
    return (_local(end).date() - _local(start).date()).days


def due_text(due_at: datetime | None, now: datetime) -> str:
    """« dans 3 jours », « aujourd'hui », « en retard de 2 jours »."""
    if due_at is None:
        return "sans échéance"
    days = days_between(now, due_at)
    if due_at < now:
        late = max(-days, 0)
        return "en retard" if late == 0 else f"en retard de {late} jour{'s' if late > 1 else ''}"
    if days == 0:
        return "aujourd'hui"
    return "demain" if days == 1 else f"dans {days} jours"


def age(birth: date | None, today: datetime) -> int | None:
    if birth is None:
        return None
    current = _local(today).date()
    return current.year - birth.year - ((current.month, current.day) < (birth.month, birth.day))


# Refusals of the engine are written in English for developers; the pages say them in French.
_ENGINE_MESSAGES = [
    (re.compile(r"already claimed by (?P<who>\S+)"), "Cette tâche a déjà été prise par {who}."),
    (re.compile(r"is claimed by (?P<who>\S+)"), "Cette tâche est prise par {who}."),
    (re.compile(r"is not claimed by"), "Cette tâche n'est pas prise par vous."),
    (re.compile(r"is already (completed|cancelled)"), "Cette tâche est déjà terminée ou annulée."),
    (re.compile(r"no longer waiting for input|no longer exists in the case"),
     "Cette tâche n'attend plus de saisie : rechargez la page."),
    (re.compile(r"changed by someone else"), "Quelqu'un d'autre vient de modifier ce dossier : rechargez la page."),
    (re.compile(r"would leave the person without a référent"),
     ("Cette sortie laisserait la personne sans référent. Il faut d'abord qu'un référent de la structure "
      "d'accueil soit actif dans le groupe de suivi et que le rendez-vous tripartite (personne et deux référents) "
      "ait eu lieu ; sinon, choisissez un motif de sortie positive (emploi durable, formation qualifiante, "
      "création d'entreprise, déménagement hors du territoire).")),
    (re.compile(r"at least one active référent"), "Un parcours actif doit garder au moins un référent actif."),
    (re.compile(r"of this offer is still open for this case"),
     "Une prescription de cette offre attend déjà la réponse du prestataire pour cette personne."),
    (re.compile(r"prescription \d+ is already"), "Cette demande a déjà reçu une réponse ou a expiré."),
    (re.compile(r"no new prescription"), "Ce parcours est clos : il ne reçoit plus de prescription."),
    (re.compile(r"must be an active referent of the task's structure"),
     "Choisissez un référent actif de la structure de la tâche."),
    (re.compile(r"must be an active supervisor of the task's structure"),
     "Une escalade ne peut être attribuée qu'à un encadrant actif de la structure de la tâche."),
]


def translated(message: str, patterns: list[tuple[re.Pattern, str]], otherwise: str) -> str:
    """The French of the first pattern found in an English ``message``, its named groups filled in; else ``otherwise``."""
    for pattern, french in patterns:
        found = pattern.search(message)
        if found:
            return french.format(**found.groupdict())
    return otherwise


def engine_message(message: str) -> str:
    return translated(message, _ENGINE_MESSAGES, f"Le moteur a refusé l'action : {message}")


_FIELD_MESSAGES = [
    (re.compile(r"no active user"), "Aucun professionnel actif n'a cette adresse électronique."),
    (re.compile(r"does not belong to the structure"),
     "Ce professionnel n'appartient pas à la structure qui accueille la personne."),
    (re.compile(r"no offer .* in the catalogue"), "Aucune offre du catalogue n'a cet identifiant."),
    (re.compile(r"mobilisable par les usagers only"),
     "Cette offre se demande par la personne elle-même : un référent ne peut pas la prescrire."),
    (re.compile(r"required with the reason 'autre'"), "Précisez le motif du refus."),
]


def field_message(message: str) -> str:
    """A field error of the engine (``{field, message}``) in French."""
    return translated(message, _FIELD_MESSAGES, f"Valeur refusée : {message}")


def role_label(user) -> str:
    """« Référent de parcours », « Pilote SPIE » for a supervisor of the Département's SPIE team..."""
    if user.role == "supervisor" and user.structure is not None and user.structure.is_pilot:
        return "Pilote SPIE"
    return ROLES.get(user.role, user.role)
