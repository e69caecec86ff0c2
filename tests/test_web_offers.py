"""The offer catalogue and prescription pages through the test client, on SQLite and PostgreSQL.

Search (barriers, commune, words), « Offres proposées » on Mme X's carnet and the prescription
sent from it, the pathway task « Prescrire une offre » making a real prescription, the provider's
« Demandes reçues » (accept, refuse with a DORA reason, htmx and plain POST), the public
« Demander une offre » page without account (no cookie, signed form token, rate limit), and who
may do what (a référent outside the care team gets 404).
"""
from __future__ import annotations

import html
import re

from sqlalchemy import select

from api.extensions import db
from engine.access import AccessLog
from engine.prescriptions import PUBLIC_REQUESTS_PER_HOUR
from tests.api_support import CD_REFERENT, DESIGNER, ML_REFERENT
from tests.offers_support import (CAF_REFERENT, CHILDCARE, CHILDCARE_BARRIER, CHILDCARE_NAME, DRIVING, MME_X,
                                  catalogue, job_seeker_at_prescription, mme_x_case, open_task,  # noqa: F401
                                  prescriptions_of)
from tests.test_web_support import csrf_token, post, sign_in

EVRY = "91228"
SIGNED_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def text(response) -> str:
    """The page's HTML with entities decoded (« d'enfants », not « d'enfants »)."""
    return html.unescape(response.get_data(as_text=True))


def offer_cards(response) -> list[str]:
    """The names of the offers listed on a page, in order."""
    return re.findall(r'<h[23] id="offre-[^"]+" class="offre__titre">([^<]+)</h[23]>', text(response))


def prescribe_url(case_id: int, offer: str = CHILDCARE, **extra) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"offre": offer, "dossier": case_id, **extra}.items())
    return f"/offres/prescrire?{query}"


# --------------------------------------------------------------------------- the catalogue


def test_search_by_barrier_commune_and_words(client, catalogue):
    sign_in(client, CD_REFERENT)
    assert "Offres" in text(client.get("/taches")) and "Demandes reçues" in text(client.get("/taches"))

    childcare = client.get("/offres?recherche=1&frein=contraintes_familiales")
    assert childcare.status_code == 200
    assert offer_cards(childcare) == [CHILDCARE_NAME]
    assert "CAF de l'Essonne" in text(childcare) and "Essonne (département)" in text(childcare)
    assert "Demande directe possible" in text(childcare)

    # Mobilité in Évry: the Grand Paris Sud driving school, not Paris-Saclay's scooters.
    mobility = offer_cards(client.get(f"/offres?recherche=1&frein=mobilite&commune={EVRY}"))
    assert mobility == ["Auto-école sociale : préparer le permis B"]
    assert len(offer_cards(client.get("/offres?recherche=1&frein=mobilite"))) == 2
    # Two barriers: the offers lifting either.
    both = offer_cards(client.get(f"/offres?recherche=1&frein=mobilite&frein=contraintes_familiales&commune={EVRY}"))
    assert sorted(both) == sorted(mobility + [CHILDCARE_NAME])
    # Words ignore accents; a whole category or one thématique.
    assert offer_cards(client.get("/offres?recherche=1&mots=creche")) == [CHILDCARE_NAME]
    assert offer_cards(client.get("/offres?recherche=1&thematique=logement-hebergement")) == [
        "Accompagnement au maintien dans le logement"]
    everything = client.get("/offres")
    assert "8 offres" in text(everything) and len(offer_cards(everything)) == 8
    assert "Prescrire" not in text(everything)  # no case: nothing to prescribe for

    bad = client.get("/offres?recherche=1&mots=permis&frein=garde&commune=99999&thematique=famille--x")
    assert bad.status_code == 422
    page = text(bad)
    for message in ("Choisissez des freins de la liste.", "Choisissez une commune de la liste.",
                    "Choisissez une thématique de la liste."):
        assert message in page
    assert 'value="permis"' in page  # the words are kept


def test_catalogue_is_for_referents_and_supervisors(client, catalogue):
    assert client.get("/offres").status_code == 302  # to the login page
    sign_in(client, DESIGNER)
    assert client.get("/offres").status_code == 403
    assert client.get("/prescriptions").status_code == 403


# --------------------------------------------------------------------------- prescribing from the carnet


def test_carnet_proposes_the_childcare_offer_and_prescribes_it(client, catalogue):
    case_id = mme_x_case(catalogue)
    sign_in(client, CD_REFERENT)
    carnet = text(client.get(f"/dossiers/{case_id}"))
    section = carnet[carnet.index('id="titre-offres"'):carnet.index('id="titre-schema"')]
    assert CHILDCARE_BARRIER in section and "à Évry-Courcouronnes" in section
    assert CHILDCARE_NAME in section and "Auto-école" not in section
    assert prescribe_url(case_id) in section
    assert "Aucune prescription pour l'instant." in section

    # The catalogue opened for her: her commune and her barrier, already chosen.
    search = client.get(f"/offres?dossier={case_id}")
    page = text(search)
    assert offer_cards(search) == [CHILDCARE_NAME]
    assert f'<option value="{EVRY}" selected>' in page
    assert re.search(r'value="contraintes_familiales" checked', page)
    assert "Aurélie Xavier" in page

    form = client.get(prescribe_url(case_id))
    assert form.status_code == 200
    assert '<option value="contraintes_familiales" selected>' in text(form)
    assert "Le prestataire recevra le nom, la commune et les coordonnées" in text(form)

    # No CSRF token: refused. A message too long: the error beside it, the message kept.
    assert client.post(prescribe_url(case_id), data={"message": "x"}).status_code == 400
    too_long = post(client, prescribe_url(case_id), {"frein": "contraintes_familiales", "message": "é" * 2001})
    assert too_long.status_code == 422
    assert "Saisissez au plus 2000 caractères (vous en avez saisi 2001)." in text(too_long)
    assert "é" * 2001 in text(too_long)
    assert prescriptions_of(catalogue) == []

    sent = post(client, prescribe_url(case_id), {"frein": "contraintes_familiales",
                                                  "message": "Reprise d'emploi visée, enfant de 2 ans."})
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/dossiers/{case_id}#offres")
    [prescription] = prescriptions_of(catalogue)
    assert (prescription.case_id, prescription.offer.di_id, prescription.state, prescription.frein,
            prescription.origin) == (case_id, CHILDCARE, "ouverte", "contraintes_familiales", "referent")

    carnet = text(client.get(f"/dossiers/{case_id}"))
    assert "Prescription envoyée à CAF de l'Essonne" in carnet  # the flash message
    assert "Prescription en attente de réponse." in carnet
    assert "badge-prescription-ouverte" in carnet and "réponse attendue avant le 4 février 2026" in carnet
    assert f"Prescription envoyée</strong> « {CHILDCARE_NAME} » — CAF de l'Essonne" in carnet

    again = post(client, prescribe_url(case_id), {"frein": "contraintes_familiales"})
    assert again.status_code == 409
    assert "attend déjà la réponse du prestataire" in text(again)
    assert len(prescriptions_of(catalogue)) == 1


def test_a_referent_outside_the_care_team_cannot_prescribe(client, catalogue):
    case_id = mme_x_case(catalogue)
    sign_in(client, ML_REFERENT)
    assert client.get(f"/offres?dossier={case_id}").status_code == 404
    assert client.get(prescribe_url(case_id)).status_code == 404
    assert post(client, prescribe_url(case_id), {"frein": "contraintes_familiales"}).status_code == 404
    assert prescriptions_of(catalogue) == []
    with catalogue.app_context():
        denied = db.session.scalars(select(AccessLog.action).where(
            AccessLog.case_id == case_id, AccessLog.outcome == "denied")).all()
    assert set(denied) == {"offers.search", "prescription.create"}
    sign_in(client, CD_REFERENT)
    assert client.get(prescribe_url(case_id, offer="demo--inconnue")).status_code == 404
    assert client.get(prescribe_url(case_id, tache=999)).status_code == 404  # not a task of hers


# --------------------------------------------------------------------------- the pathway task « Prescrire une offre »


def test_completing_the_prescrire_offre_task_makes_the_prescription(client, catalogue):
    ids = job_seeker_at_prescription(catalogue)
    task_id, case_id = ids["task_id"], ids["case_id"]
    sign_in(client, CD_REFERENT)
    page = text(client.get(f"/taches/{task_id}"))
    assert f"/offres?dossier={case_id}&tache={task_id}" in page  # « Choisir l'offre dans le catalogue »
    assert post(client, f"/taches/{task_id}/prendre").status_code == 303

    unknown = post(client, f"/taches/{task_id}", {"offer_id": "demo--inconnue", "frein": "contraintes_familiales"})
    assert unknown.status_code == 422
    assert "Aucune offre du catalogue n'a cet identifiant." in text(unknown)
    assert 'value="demo--inconnue"' in text(unknown)
    assert open_task(catalogue, case_id, "prescrire-offre") == task_id and prescriptions_of(catalogue) == []

    done = post(client, f"/taches/{task_id}", {"offer_id": CHILDCARE, "frein": "contraintes_familiales",
                                               "message": "Garde à trouver avant la reprise."})
    assert done.status_code == 303
    [prescription] = prescriptions_of(catalogue)
    assert (prescription.task_id, prescription.case_id, prescription.case_waits, prescription.state,
            prescription.message) == (task_id, case_id, True, "ouverte", "Garde à trouver avant la reprise.")
    assert open_task(catalogue, case_id, "prescrire-offre") is None

    # The CAF accepts: the job seeker's case, which waited for the answer, goes on to « Faire le point ».
    sign_in(client, CAF_REFERENT)
    assert post(client, f"/prescriptions/{prescription.id}/accepter").status_code == 303
    assert open_task(catalogue, case_id, "faire-le-point") is not None


def test_the_catalogue_opened_from_the_task_completes_it(client, catalogue):
    ids = job_seeker_at_prescription(catalogue)
    task_id, case_id = ids["task_id"], ids["case_id"]
    sign_in(client, CD_REFERENT)
    search = client.get(f"/offres?dossier={case_id}&tache={task_id}")
    assert "Prescrire ici termine la tâche « Prescrire une offre pour lever un frein »" in text(search)
    url = prescribe_url(case_id, tache=task_id)
    assert url in text(search)
    assert post(client, url, {"frein": "contraintes_familiales"}).status_code == 303
    [prescription] = prescriptions_of(catalogue)
    assert (prescription.task_id, prescription.case_waits) == (task_id, True)
    assert open_task(catalogue, case_id, "prescrire-offre") is None
    assert client.get(f"/offres?dossier={case_id}&tache={task_id}").status_code == 404  # the task is done


# --------------------------------------------------------------------------- the provider's queue


def test_provider_accepts_one_request_and_refuses_another(client, catalogue):
    first = mme_x_case(catalogue)
    second = mme_x_case(catalogue, person={**MME_X, "first_name": "Inès", "last_name": "Martin",
                                           "birth_date": "1990-01-02"})
    sign_in(client, CD_REFERENT)
    for case_id in (first, second):
        assert post(client, prescribe_url(case_id), {"frein": "contraintes_familiales"}).status_code == 303
    accepted, refused = (p.id for p in prescriptions_of(catalogue))

    # The Département's référent sent them but does not answer them.
    assert post(client, f"/prescriptions/{accepted}/accepter").status_code == 403
    sent = text(client.get("/prescriptions?vue=envoyees"))
    assert sent.count("badge-prescription-ouverte") == 2 and "Voir le dossier de Aurélie Xavier" in sent

    sign_in(client, CAF_REFERENT)
    queue = client.get("/prescriptions")
    page = text(queue)
    assert "Aurélie Xavier" in page and "Inès Martin" in page and "(Évry-Courcouronnes)" in page
    assert "Prescription d'un référent : Vincent Mercier (Département de l'Essonne — MDS Centre)" in page
    assert re.search(r'id="compte-attente">2<', page)

    # Accept with htmx: the card comes back validated, the count and the announcement out of band.
    token = csrf_token(client, "/prescriptions")
    swapped = client.post(f"/prescriptions/{accepted}/accepter", data={"csrf_token": token},
                          headers={"HX-Request": "true"})
    fragment = text(swapped)
    assert swapped.status_code == 200 and "<html" not in fragment
    assert f'id="demande-{accepted}"' in fragment and "Validée" in fragment
    assert 'id="compte-attente" hx-swap-oob="true">1<' in fragment and "Demande acceptée" in fragment

    # Refuse without a reason, then « Autre motif » without saying why: errors, the text kept.
    missing = post(client, f"/prescriptions/{refused}/refuser", {"motif": "", "precisions": "Complet."},
                   token_from="/prescriptions")
    assert missing.status_code == 422
    assert "Choisissez le motif du refus dans la liste." in text(missing) and ">Complet.</textarea>" in text(missing)
    other = post(client, f"/prescriptions/{refused}/refuser", {"motif": "autre"}, token_from="/prescriptions")
    assert other.status_code == 422 and "Précisez le motif du refus" in text(other)
    done = post(client, f"/prescriptions/{refused}/refuser",
                {"motif": "session-complete", "precisions": "Plus de place avant septembre."},
                token_from="/prescriptions")
    assert done.status_code == 303
    states = {p.id: (p.state, p.refusal_reason, p.answer_message) for p in prescriptions_of(catalogue)}
    assert states == {accepted: ("validee", None, None),
                      refused: ("refusee", "session-complete", "Plus de place avant septembre.")}
    assert "Aucune demande en attente." in text(client.get("/prescriptions"))
    answered = text(client.get("/prescriptions?etat=toutes"))
    assert "La session est complète" in answered and "Validée le" in answered

    # Answered already: the plain form says so on the list; htmx gets the card with the message.
    late = post(client, f"/prescriptions/{accepted}/refuser", {"motif": "autre", "precisions": "?"},
                token_from="/prescriptions")
    assert late.status_code == 303
    assert "Cette demande a déjà reçu une réponse ou a expiré." in text(client.get("/prescriptions"))
    late = client.post(f"/prescriptions/{refused}/accepter", data={"csrf_token": csrf_token(client, "/prescriptions")},
                       headers={"HX-Request": "true"})
    assert late.status_code == 200 and "Cette demande a déjà reçu une réponse ou a expiré." in text(late)
    assert "Refusée" in text(late) and "Accepter" not in text(late)

    # The référent's carnet: the acceptance on the timeline, the states in « Offres proposées ».
    sign_in(client, CD_REFERENT)
    carnet = text(client.get(f"/dossiers/{first}"))
    assert "Prescription acceptée</strong>" in carnet and "badge-prescription-validee" in carnet
    carnet = text(client.get(f"/dossiers/{second}"))
    assert "Prescription refusée</strong>" in carnet and "motif : La session est complète" in carnet

    sign_in(client, ML_REFERENT)  # neither provider nor on the care team
    assert post(client, f"/prescriptions/{accepted}/accepter").status_code == 404


# --------------------------------------------------------------------------- the public page


def _public_form(client, offer: str = CHILDCARE) -> str:
    page = client.get(f"/demande?commune={EVRY}&offre={offer}")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
    return SIGNED_TOKEN.search(text(page)).group(1)


def _request(token: str, **fields) -> dict:
    return {"csrf_token": token, "offre": CHILDCARE, "commune": EVRY, "prenom": "Aurélie", "nom": "Xavier",
            "courriel": "aurelie.xavier@example.org", "telephone": "", "message": "Mon fils a 2 ans.",
            "consentement": "oui", **fields}


def test_public_request_reaches_the_provider_queue(client, catalogue):
    start = client.get("/demande")
    assert start.status_code == 200 and "Set-Cookie" not in start.headers
    listed = client.get(f"/demande?commune={EVRY}")
    assert CHILDCARE_NAME in text(listed)
    assert "Auto-école" not in text(listed)  # professionals prescribe it; persons do not ask for it
    assert "Trouver sa formation" in text(listed)

    token = _public_form(client)
    sent = client.post("/demande", data=_request(token))
    assert sent.status_code == 200 and "Set-Cookie" not in sent.headers
    page = text(sent)
    [request] = prescriptions_of(catalogue)
    assert "Demande envoyée" in page and f"Votre demande n° {request.id}" in page
    assert "transmise à CAF de l'Essonne" in page and "avant le 4 février 2026" in page
    assert (request.origin, request.case_id, request.consent, request.person_contact) == (
        "self", None, True, {"first_name": "Aurélie", "last_name": "Xavier", "email": "aurelie.xavier@example.org",
                             "commune_insee": EVRY})

    sign_in(client, CAF_REFERENT)
    queue = text(client.get("/prescriptions"))
    assert "Demande de la personne elle-même" in queue and "aurelie.xavier@example.org" in queue
    assert "Mon fils a 2 ans." in queue


def test_public_request_errors_keep_the_values(client, catalogue):
    token = _public_form(client)
    wrong = client.post("/demande", data=_request(token, courriel="aurelie@", consentement="", prenom="",
                                                  message="Je cherche une crèche."))
    assert wrong.status_code == 422 and "Set-Cookie" not in wrong.headers
    page = text(wrong)
    assert "Votre demande contient 3 erreurs" in page
    for message in ("Indiquez votre prénom", "Indiquez une adresse électronique valide",
                    "Cochez la case : sans votre accord"):
        assert message in page
    assert 'value="aurelie@"' in page and "Je cherche une crèche.</textarea>" in page and 'value="Xavier"' in page

    no_contact = text(client.post("/demande", data=_request(token, courriel="")))
    assert "Indiquez une adresse électronique ou un numéro de téléphone" in no_contact
    # An offer persons cannot ask for themselves, or a forged form: refused.
    assert "ne peut pas être demandée directement" in text(client.post("/demande", data=_request(token,
                                                                                                 offre=DRIVING)))
    forged = client.post("/demande", data=_request(token[:-2] + "xx"))
    assert forged.status_code == 400 and "Le formulaire a expiré" in text(forged)
    assert prescriptions_of(catalogue) == []


def test_public_request_rate_limit(client, catalogue):
    token = _public_form(client)
    for _ in range(PUBLIC_REQUESTS_PER_HOUR):  # every request counts, even refused ones
        assert client.post("/demande", data=_request(token, consentement="")).status_code == 422
    limited = client.post("/demande", data=_request(token))
    assert limited.status_code == 429
    page = text(limited)
    assert "Beaucoup de demandes sont parties de cette connexion" in page
    assert 'value="aurelie.xavier@example.org"' in page  # nothing lost
    assert prescriptions_of(catalogue) == []
