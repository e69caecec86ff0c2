"""Mme X in a real browser: the garde d'enfants offer prescribed from her carnet and accepted by the CAF; then
asked for by herself on the public page, without account, and answered from the CAF's queue.

Mme X is an RSA beneficiary living alone with her two-year-old son at Évry-Courcouronnes; her
diagnostic (« Entrée et diagnostic », by the Département's référent) records the childcare
barrier. axe-core checks every page (no serious or critical violation) and each page's screenshot
goes to test-artifacts/screenshots/. Needs Debian's chromium and node_modules (see
tests/browser_support.py).
"""
from __future__ import annotations

from tests.api_support import CD_REFERENT
from tests.browser_support import browser, check_page, expect, live_server, log_in, page, skip_without_browser  # noqa: F401
from tests.offers_support import CAF_REFERENT, CHILDCARE_BARRIER, CHILDCARE_NAME, catalogue, mme_x_case  # noqa: F401

pytestmark = skip_without_browser


def log_out(page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()


def test_mme_x_gets_the_childcare_offer_prescribed_and_accepted(page, live_server, catalogue):
    base = live_server
    case_id = mme_x_case(catalogue)

    # The Département's référent opens her carnet: the childcare offer is proposed for her barrier.
    log_in(page, base, CD_REFERENT)
    page.goto(f"{base}/dossiers/{case_id}")
    offers = page.locator("#offres")
    expect(offers).to_contain_text(CHILDCARE_BARRIER)
    expect(offers.get_by_role("heading", name=CHILDCARE_NAME)).to_be_visible()
    expect(offers).to_contain_text("Aucune prescription pour l'instant.")
    check_page(page, "offres-dossier-mme-x")

    # The whole catalogue for her: her commune and her barrier already chosen.
    offers.get_by_role("link", name="Chercher une autre offre dans le catalogue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalogue des offres")
    expect(page.get_by_label("Commune de la personne")).to_have_value("91228")
    expect(page.get_by_label(CHILDCARE_BARRIER)).to_be_checked()
    expect(page.locator("#titre-resultats")).to_have_text("1 offre")
    check_page(page, "offres-catalogue-mme-x")
    page.get_by_label(CHILDCARE_BARRIER).uncheck()
    page.get_by_role("button", name="Rechercher").click()
    expect(page.locator("#titre-resultats")).to_have_text("4 offres")  # all those open in Évry-Courcouronnes
    page.go_back()
    page.go_back()

    # « Prescrire »: the confirmation, the barrier aimed at already chosen, a message to the CAF.
    offers.get_by_role("link", name=f"Prescrire « {CHILDCARE_NAME} »").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Prescrire « {CHILDCARE_NAME} »")
    expect(page.get_by_label("Frein visé")).to_have_value("contraintes_familiales")
    check_page(page, "offres-prescrire")
    page.get_by_label("Message au prestataire").fill(
        "Mère seule, fils de 2 ans : reprise d'emploi dès la garde trouvée.")
    page.get_by_role("button", name="Envoyer la prescription").click()
    page.wait_for_url(f"{base}/dossiers/{case_id}#offres")
    expect(page.locator(".messages")).to_contain_text("Prescription envoyée à CAF de l'Essonne")
    expect(page.locator("table.prescriptions")).to_contain_text("Ouverte")
    expect(page.locator(".historique")).to_contain_text(f"Prescription envoyée « {CHILDCARE_NAME} »")
    check_page(page, "offres-dossier-prescription-envoyee")
    log_out(page)

    # The CAF's référent finds it in « Demandes reçues » and accepts it without reloading the page.
    log_in(page, base, CAF_REFERENT)
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Demandes reçues").click()
    card = page.locator("article.demande", has_text="Aurélie Xavier")
    expect(card).to_contain_text(CHILDCARE_NAME)
    expect(card).to_contain_text("Vincent Mercier")
    expect(card).to_contain_text("Mère seule, fils de 2 ans")
    expect(page.locator("#compte-attente")).to_have_text("1")
    check_page(page, "demandes-recues")
    page.evaluate("window.__sameDocument = true")
    card.get_by_role("button", name="Accepter la demande de Aurélie Xavier").click()
    expect(card).to_contain_text("Validée")
    expect(page.locator("#annonce")).to_contain_text("Demande acceptée")
    expect(page.locator("#compte-attente")).to_have_text("0")
    assert page.evaluate("window.__sameDocument === true"), "accepting reloaded the page"
    check_page(page, "demandes-acceptee")
    log_out(page)

    # Back on her carnet: the prescription and its acceptance on the timeline.
    log_in(page, base, CD_REFERENT)
    page.goto(f"{base}/dossiers/{case_id}")
    expect(page.locator("table.prescriptions")).to_contain_text("Validée")
    history = page.locator(".historique")
    expect(history).to_contain_text(f"Prescription acceptée « {CHILDCARE_NAME} » — CAF de l'Essonne")
    expect(history).to_contain_text("Nora Fontaine (CAF de l'Essonne)")
    expect(history).to_contain_text(f"Prescription envoyée « {CHILDCARE_NAME} »")
    check_page(page, "offres-dossier-prescription-acceptee")
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Demandes reçues").click()
    page.get_by_role("link", name="Prescriptions envoyées").click()
    expect(page.locator("article.demande", has_text="Aurélie Xavier")).to_contain_text("Validée")
    check_page(page, "prescriptions-envoyees")


def test_mme_x_asks_for_it_herself_on_the_public_page(page, live_server, catalogue):
    base = live_server
    page.goto(f"{base}/demande")
    expect(page.get_by_role("heading", level=1)).to_have_text("Demander une offre")
    check_page(page, "demande-publique")
    page.get_by_label("Votre commune").select_option(label="Évry-Courcouronnes")
    page.get_by_role("button", name="Voir les offres").click()
    expect(page.get_by_role("heading", name=CHILDCARE_NAME)).to_be_visible()
    check_page(page, "demande-publique-offres")

    page.get_by_role("link", name=f"Demander cette offre : {CHILDCARE_NAME}").click()
    expect(page.get_by_role("heading", name="Votre demande")).to_be_visible()
    check_page(page, "demande-publique-formulaire")

    # Without consent nor contact: the errors, and what she wrote kept.
    page.get_by_label("Prénom").fill("Aurélie")
    page.get_by_label("Nom", exact=True).fill("Xavier")
    page.get_by_label("Votre message").fill("Je reprends un emploi en mars, mon fils a 2 ans.")
    page.get_by_role("button", name="Envoyer ma demande").click()
    summary = page.locator(".resume-erreurs")
    expect(summary).to_contain_text("2 erreurs")
    expect(summary).to_contain_text("Indiquez une adresse électronique ou un numéro de téléphone")
    expect(page.get_by_label("Votre message")).to_have_value("Je reprends un emploi en mars, mon fils a 2 ans.")
    check_page(page, "demande-publique-erreurs")

    page.get_by_label("Numéro de téléphone").fill("06 12 34 56 78")
    page.get_by_label("J'accepte que CAF de l'Essonne reçoive ces informations").check()
    page.get_by_role("button", name="Envoyer ma demande").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Demande envoyée")
    expect(page.locator("main")).to_contain_text("transmise à CAF de l'Essonne")
    check_page(page, "demande-publique-envoyee")
    assert page.context.cookies() == [], "the public page left a cookie"

    # The CAF's référent sees her own request in the queue and refuses it with a DORA reason.
    log_in(page, base, CAF_REFERENT)
    page.goto(f"{base}/prescriptions")
    card = page.locator("article.demande", has_text="Aurélie Xavier")
    expect(card).to_contain_text("Demande de la personne elle-même")
    expect(card).to_contain_text("06 12 34 56 78")
    card.locator("summary").click()
    card.get_by_label("Motif du refus").select_option(label="La session est complète")
    card.get_by_label("Précisions").fill("Plus de place avant septembre : rappel en juin.")
    check_page(page, "demandes-refus")
    card.get_by_role("button", name="Refuser la demande de Aurélie Xavier").click()
    expect(card).to_contain_text("Refusée")
    expect(card).to_contain_text("La session est complète")
    check_page(page, "demandes-refusee")
