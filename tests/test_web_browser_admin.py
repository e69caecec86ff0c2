"""The administrators' pages in a real browser (Debian's chromium driven by Playwright).

The administrator logs in, lands on the home page with links to the three sections, creates a
référent for the MDS Centre (first with errors shown beside the fields, then with a generated
password shown once), finds them in the list, browses the directory, a structure's page, the
import page with a refused file and the export, and the journal. The designer's and the pilot's
home pages and the error pages (403, 404) are checked too. axe-core runs on every page (no
serious or critical violation) and each page leaves a screenshot in test-artifacts/screenshots/.
"""
from __future__ import annotations

import re

from tests.api_support import ADMIN, DESIGNER, PILOT
from tests.browser_support import browser, check_page, expect, live_server, log_in, page, skip_without_browser  # noqa: F401

pytestmark = skip_without_browser

MDS_CENTRE = "Département de l'Essonne — MDS Centre"


def test_admin_creates_a_referent_and_browses_the_directory_and_the_journal(page, live_server, tmp_path):
    base = live_server
    log_in(page, base, ADMIN, landing="/")
    header = page.locator("header")
    for text in ("Camille Martin", "Administrateur", "Mission SPIE"):
        expect(header).to_contain_text(text)
    expect(page.get_by_role("heading", level=1)).to_have_text("Bienvenue, Camille Martin")
    expect(page.locator(".accueil-sections")).to_contain_text("Créer les comptes des professionnels")
    check_page(page, "admin-accueil")

    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Utilisateurs").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text("70 comptes")
    check_page(page, "admin-utilisateurs")

    # A new référent: errors beside the fields first, the values kept.
    page.get_by_role("link", name="Créer un compte").click()
    check_page(page, "admin-utilisateur-nouveau")
    page.get_by_label("Adresse électronique professionnelle").fill("lea.morel")
    page.get_by_label("Structure").select_option(label=MDS_CENTRE)
    page.get_by_role("button", name="Créer le compte").click()
    expect(page.locator(".resume-erreurs")).to_contain_text("Le formulaire contient 2 erreurs")
    expect(page.locator("#champ-name-erreur")).to_contain_text("Indiquez le prénom et le nom.")
    expect(page.locator("#champ-email-erreur")).to_contain_text("adresse électronique valide")
    expect(page.get_by_label("Adresse électronique professionnelle")).to_have_value("lea.morel")
    expect(page.get_by_label("Adresse électronique professionnelle")).to_have_attribute("aria-invalid", "true")
    check_page(page, "admin-utilisateur-erreurs")

    page.get_by_label("Prénom et nom").fill("Léa Morel")
    page.get_by_label("Adresse électronique professionnelle").fill("lea.morel@example.org")
    page.get_by_label("Rôle").select_option(label="Référent de parcours")
    page.get_by_role("button", name="Créer le compte").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Léa Morel")
    expect(page.locator("#nouveau-mot-de-passe")).to_have_text(re.compile(r"^[a-z2-9]{4}(-[a-z2-9]{4}){3}$"))
    expect(page.locator(".messages")).to_contain_text("Compte de Léa Morel créé.")
    check_page(page, "admin-utilisateur-cree")

    page.get_by_role("link", name="Utilisateurs", exact=True).first.click()
    page.get_by_label("Rechercher").fill("morel")
    page.get_by_label("Structure").select_option(label=MDS_CENTRE)
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("table.comptes tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Léa Morel")
    expect(rows.first).to_contain_text("Référent de parcours")
    expect(rows.first).to_contain_text("Actif")
    check_page(page, "admin-utilisateurs-filtres")

    rows.first.get_by_role("link", name="Léa Morel").click()
    page.get_by_role("button", name="Désactiver le compte").click()
    expect(page.locator(".messages")).to_contain_text("Compte de Léa Morel désactivé")
    expect(page.get_by_role("button", name="Réactiver le compte")).to_be_visible()
    check_page(page, "admin-utilisateur")

    # The directory: the list, « Communes sans structure », a structure's page with the new référent.
    page.get_by_role("link", name="Annuaire", exact=True).click()
    expect(page.get_by_role("heading", name="Communes sans structure")).to_be_visible()
    check_page(page, "admin-annuaire")
    page.get_by_label("Type").select_option(label="Département")
    page.get_by_role("button", name="Filtrer").click()
    expect(page.locator("table.structures tbody tr")).to_have_count(5)
    page.get_by_role("link", name=MDS_CENTRE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(MDS_CENTRE)
    expect(page.locator("main")).to_contain_text("Léa Morel")
    expect(page.locator("main")).to_contain_text("Évry-Courcouronnes")
    check_page(page, "admin-structure")

    page.get_by_role("link", name="Annuaire", exact=True).first.click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Exporter l'annuaire (CSV)").click()
    assert re.fullmatch(r"annuaire-structures-\d{4}-\d{2}-\d{2}\.csv", download.value.suggested_filename)
    page.get_by_role("link", name="Importer un fichier CSV").click()
    check_page(page, "admin-import")
    refused = tmp_path / "annuaire.csv"
    refused.write_text("type,name,communes\nccas,CCAS de Massy,91377 99999\n", encoding="utf-8")
    page.get_by_label("Fichier CSV").set_input_files(str(refused))
    page.get_by_role("button", name="Importer").click()
    errors = page.locator(".resume-erreurs")
    expect(errors).to_contain_text("rien n'a été importé")
    expect(errors).to_contain_text("Ligne 2 (colonne communes) : Code(s) INSEE inconnu(s) de l'annuaire : 99999.")
    check_page(page, "admin-import-erreurs")

    # The journal: the administrators' changes, then a refused filter.
    page.get_by_role("link", name="Journal des accès").click()
    check_page(page, "admin-journal")
    page.get_by_role("link", name="Actions d'administration").click()
    table = page.locator("table.journal")
    expect(table).to_contain_text("Compte créé")
    expect(table).to_contain_text("Compte désactivé")
    check_page(page, "admin-journal-administration")
    page.get_by_label("Professionnel").fill("personne@example.org")
    page.get_by_role("button", name="Filtrer").click()
    expect(page.locator("#filtre-utilisateur-erreur")).to_contain_text("Aucun compte n'a cette adresse électronique.")
    check_page(page, "admin-journal-erreurs")


def test_other_roles_home_pages_and_the_error_pages(page, live_server):
    base = live_server
    log_in(page, base, DESIGNER, landing="/")
    expect(page.locator("header")).to_contain_text("Concepteur de parcours")
    expect(page.locator("header")).to_contain_text("Mission SPIE")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bienvenue, Nadia Bernard")
    check_page(page, "accueil-concepteur")

    response = page.goto(f"{base}/admin/utilisateurs")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    expect(page.locator("main")).to_contain_text("Ces pages sont réservées aux administrateurs.")
    check_page(page, "erreur-403")
    response = page.goto(f"{base}/dossiers/999999")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page introuvable")
    check_page(page, "erreur-404")

    page.get_by_role("button", name="Se déconnecter").click()
    log_in(page, base, PILOT)
    page.goto(f"{base}/")
    expect(page.locator("header")).to_contain_text("Pilote SPIE")
    expect(page.locator(".accueil-sections")).to_contain_text("Tâches")
    check_page(page, "accueil-pilote")
