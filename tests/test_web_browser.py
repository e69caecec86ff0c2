"""The pages in a real browser: Debian's chromium driven by Playwright, the app served by werkzeug in a thread.

A Département référent logs in, sees the inbox counts, claims the hand-off task without a page
reload (htmx), submits the form with errors, sees them beside the fields with the values kept,
fixes them and completes the task; the carnet shows both référents overlapping and the pathway
diagram with its markers. axe-core checks every page (no serious or critical violation) and a
screenshot of each page goes to test-artifacts/screenshots/.

Needs: ``apt-get install chromium`` and ``npm ci`` (axe-core, htmx, bpmn-js from node_modules); skipped
without them, except under CI (``CI`` set) where their absence is an error. Never ``playwright install``:
no browser download.
"""
from __future__ import annotations

from tests.api_support import CD_REFERENT, CD_SUPERVISOR, ML_REFERENT
from tests.browser_support import browser, check_page, expect, live_server, log_in, page, skip_without_browser  # noqa: F401
from tests.test_web_support import advance_time, start_entry_diagnostic, start_ml_exit

pytestmark = skip_without_browser


def test_referent_claims_fixes_and_completes_a_task(page, live_server, seeded):
    base = live_server
    ids = start_ml_exit(seeded)
    advance_time(seeded, "P16D")  # the Département has let the designation run late

    page.goto(f"{base}/connexion")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    check_page(page, "connexion")

    log_in(page, base, CD_REFERENT)
    header = page.locator("header")
    expect(header).to_contain_text("Vincent Mercier")
    expect(header).to_contain_text("Référent de parcours")
    expect(header).to_contain_text("MDS Centre")
    expect(page.locator("#compte-mes-taches")).to_have_text("0")
    expect(page.locator("#compte-structure")).to_have_text("1")
    expect(page.locator("#compte-en-retard")).to_have_text("1")
    expect(page.locator("main")).to_contain_text("Aucune tâche à votre nom")
    check_page(page, "taches-mes-taches")

    page.get_by_role("link", name="File de ma structure").click()
    row = page.locator(f"#tache-{ids['designate_id']}")
    expect(row).to_contain_text("Accepter le relais et désigner le référent")
    expect(row).to_contain_text("Inès Martin")
    check_page(page, "taches-structure")

    # Claim with the keyboard, without reloading the page: htmx swaps the row and the counts, focus stays put.
    page.evaluate("window.__sameDocument = true")
    row.get_by_role("button", name="Prendre").focus()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("Prise par vous")
    expect(page.locator(f"#action-{ids['designate_id']}")).to_be_focused()
    expect(page.locator("#annonce")).to_contain_text("Tâche prise")
    expect(row.get_by_role("button", name="Libérer")).to_be_visible()
    expect(page.locator("#compte-mes-taches")).to_have_text("1")
    assert page.evaluate("window.__sameDocument === true"), "the claim reloaded the page"

    page.get_by_role("link", name="En retard").click()
    expect(row).to_contain_text("en retard de 1 jour")
    expect(row).to_contain_text("Escalade 1")
    check_page(page, "taches-en-retard")

    page.get_by_role("link", name="Mes tâches").click()
    expect(row).to_contain_text("Prise par vous")
    page.get_by_role("link", name="Accepter le relais et désigner le référent").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accepter le relais et désigner le référent")
    check_page(page, "tache")

    # An invalid form: errors beside the fields, in a summary, and the values kept.
    page.get_by_label("Courriel du référent").fill("vincent.mercier")
    page.get_by_label("Commentaire").fill("Relais accepté par la MDS Centre.")
    page.get_by_role("button", name="Valider").click()
    summary = page.locator(".resume-erreurs")
    expect(summary).to_contain_text("Le formulaire contient 2 erreurs")
    expect(page.locator("#champ-referent_email-erreur")).to_contain_text("adresse électronique valide")
    expect(page.locator("#champ-date_designation-erreur")).to_contain_text("Ce champ est obligatoire")
    expect(page.get_by_label("Courriel du référent")).to_have_value("vincent.mercier")
    expect(page.get_by_label("Commentaire")).to_have_value("Relais accepté par la MDS Centre.")
    expect(page.get_by_label("Courriel du référent")).to_have_attribute("aria-invalid", "true")
    check_page(page, "tache-erreurs")

    # Fixed: the task completes and the carnet opens.
    page.get_by_label("Courriel du référent").fill(CD_REFERENT)
    page.get_by_label("Date de désignation").fill("2026-01-21")
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(f"{base}/dossiers/{ids['case_id']}")
    expect(page.locator(".messages")).to_contain_text("validée")
    team = page.locator("table.groupe-suivi")
    expect(team).to_contain_text("Mission Locale")
    expect(team).to_contain_text("Vincent Mercier")
    expect(page.locator(".relais")).to_contain_text("Passage de relais")
    expect(page.locator("#schema[data-pret='oui']")).to_have_count(1, timeout=15000)
    assert page.locator("#schema .marqueur-en-cours").count() >= 1
    assert page.locator("#schema .marqueur-termine").count() >= 1
    expect(page.locator(".historique")).to_contain_text("Entrée dans le groupe de suivi")
    check_page(page, "dossier")


def test_supervisor_advances_simulated_time(page, live_server, seeded):
    base = live_server
    start_ml_exit(seeded)
    log_in(page, base, CD_SUPERVISOR)
    banner = page.locator(".bandeau-simulation")
    expect(banner).to_contain_text("Mode simulation")
    expect(banner).to_contain_text("5 janvier 2026")
    check_page(page, "simulation")

    banner.get_by_label("Durée").select_option("P15D")
    banner.get_by_role("button", name="Avancer le temps").click()
    expect(page.locator(".messages")).to_contain_text("Temps avancé de 15 jours")
    expect(banner).to_contain_text("20 janvier 2026")
    # 15 days on, the designation is late and escalated to the supervisor, who sees both in the queue.
    page.get_by_role("link", name="File de ma structure").click()
    expect(page.locator("#compte-structure")).to_have_text("2")
    expect(page.locator("table.taches")).to_contain_text("Escalade 1")
    check_page(page, "simulation-apres")

    # An htmx claim the server refuses (here, a stale form) falls back to a plain POST: the page explains.
    first = page.locator("table.taches tbody tr").first
    first.locator("input[name=csrf_token]").evaluate("input => { input.value = 'perime'; }")
    first.get_by_role("button", name="Prendre").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Requête refusée")
    expect(page.locator("main")).to_contain_text("Le formulaire a expiré")
    check_page(page, "erreur-formulaire")


def test_the_diagnostic_form_and_its_summary(page, live_server, seeded):
    """The richest form (groups, radio buttons, a list, check boxes, text areas), then the carnet's summary."""
    base = live_server
    ids = start_entry_diagnostic(seeded)
    log_in(page, base, ML_REFERENT)
    page.goto(f"{base}/taches/{ids['diagnostic_id']}")
    check_page(page, "tache-diagnostic")

    page.get_by_label("Date du diagnostic").fill("2026-01-05")
    page.get_by_label("Situation professionnelle").select_option(label="En recherche d'emploi")
    page.get_by_label("Niveau de formation").select_option("NV4")
    freins = page.get_by_role("group", name="Freins périphériques")
    for name in ("Mobilité", "Santé", "Logement", "Difficultés financières", "Difficultés administratives ou juridiques",
                 "Lecture, écriture, calcul et maîtrise du français"):
        freins.get_by_role("group", name=name, exact=True).get_by_label("Non", exact=True).check()
    page.get_by_label("Se former").check()
    page.get_by_role("button", name="Valider").click()
    expect(page.locator(".resume-erreurs")).to_contain_text("2 erreurs")  # a barrier and the consent are missing
    expect(page.locator(".resume-erreurs")).to_contain_text("Contraintes familiales (dont garde d'enfants)")
    expect(page.get_by_label("Se former")).to_be_checked()
    expect(page.get_by_label("Situation professionnelle")).to_have_value("recherche_emploi")

    family = freins.get_by_role("group", name="Contraintes familiales (dont garde d'enfants)")
    family.get_by_label("Oui", exact=True).check()
    family.get_by_label("Situation").fill("Deux enfants de 2 et 4 ans, pas de mode de garde.")
    page.get_by_role("group", name="Consentement au partage").get_by_label("Oui", exact=True).check()
    page.get_by_role("button", name="Valider").click()
    page.wait_for_url(f"{base}/dossiers/{ids['case_id']}")
    summary = page.locator("section", has=page.get_by_role("heading", name="Diagnostic socio-professionnel"))
    expect(summary).to_contain_text("En recherche d'emploi")
    expect(summary).to_contain_text("Deux enfants de 2 et 4 ans")
    check_page(page, "dossier-diagnostic")
