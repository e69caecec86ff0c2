"""The designer's pages in a real browser (Debian's chromium through Playwright, see tests/browser_support.py).

The SPIE team's designer opens « Passage de relais » in the bpmn-js modeler, shortens the 15-day timer to
10 days in the side panel, takes the structure type off the pilot's lane, sees « Vérifier » mark the lane
on the diagram and list the problem, fixes the lane from the list, deploys version 2 and reads the change
list: only the timer changed. axe-core checks each page and a screenshot of each is kept.
"""
from __future__ import annotations

import re

from lxml import etree
from sqlalchemy import select

from api.extensions import db
from engine.lint import SPIFF_NS
from engine.models import PathwayVersion
from tests.api_support import DEMO_PASSWORD, DESIGNER
from tests.browser_support import browser, check_page, expect, live_server, log_in, page, skip_without_browser  # noqa: F401

pytestmark = skip_without_browser

PATHWAY = "Passage de relais"


def test_designer_edits_checks_fixes_and_deploys_a_pathway(page, live_server, seeded):
    base = live_server
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique professionnelle").fill(DESIGNER)
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Parcours").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Parcours")
    section = page.locator("section", has=page.get_by_role("heading", name=PATHWAY, exact=False))
    expect(section.get_by_role("row")).to_have_count(2)  # header and version 1
    check_page(page, "parcours")

    section.get_by_role("link", name=f"Voir la version 1 de {PATHWAY}").click()
    expect(page.locator("#schema[data-pret='oui']")).to_have_count(1, timeout=15000)
    expect(page.locator("#schema-etat")).to_have_text("Schéma affiché.")
    check_page(page, "parcours-version")

    page.get_by_role("link", name="Ouvrir dans le modeleur").click()
    expect(page.locator("#modeleur[data-pret='oui']")).to_have_count(1, timeout=15000)
    panel = page.locator(".panneau")
    check_page(page, "modeleur")

    # The 15-day timer, picked on the diagram: 10 days instead.
    page.locator('.djs-element[data-element-id="delai-15-jours"]').click()
    expect(panel.get_by_role("heading", level=3)).to_have_text("Événement de bordure « 15 jours »")
    expect(panel.get_by_label("Type de minuterie")).to_have_value("timeDuration")
    value = panel.get_by_label("Valeur", exact=True)
    expect(value).to_have_value("P15D")
    value.fill("P10D")
    value.press("Tab")

    # The pilot's lane, picked with the keyboard in the element list: its structure type taken off.
    element = page.get_by_label("Élément", exact=True)
    element.focus()
    element.select_option("lane-pilote")
    expect(panel.get_by_role("heading", level=3)).to_have_text("Couloir « Département (pilote SPIE) »")
    preferred = panel.get_by_label("Typologie préférée")
    expect(preferred).to_have_value("departement")
    preferred.select_option("")

    page.get_by_role("button", name="Vérifier").click()
    problems = page.locator("#problemes")
    expect(problems).to_contain_text(
        "Erreur : Couloir sans typologie de structure connue — Couloir « Département (pilote SPIE) »")
    expect(page.locator("#verification-resume")).to_have_text("1 erreur : à corriger avant de déployer.")
    expect(problems.locator("p.discret")).to_contain_text(
        "Le couloir « Département (pilote SPIE) » ne correspond à aucune typologie de structure connue")
    expect(problems.locator("p.discret[lang]")).to_have_count(0)
    expect(page.locator('.djs-element.marqueur-erreur[data-element-id="lane-pilote"]')).to_have_count(1)
    expect(page.locator(".djs-overlay .bulle-probleme")).to_have_text("Couloir sans typologie de structure connue")
    check_page(page, "modeleur-verification")

    # From the list to the lane's properties: fixed, checked again.
    element.select_option("")
    problems.get_by_role("button").click()
    expect(panel.get_by_role("heading", level=3)).to_be_focused()
    expect(element).to_have_value("lane-pilote")
    panel.get_by_label("Typologie préférée").select_option("departement")
    page.get_by_role("button", name="Vérifier").click()
    expect(page.locator("#verification-resume")).to_have_text("Aucun problème : le parcours peut être déployé.")
    expect(page.locator(".marqueur-erreur")).to_have_count(0)
    expect(page.locator(".bulle-probleme")).to_have_count(0)

    page.get_by_role("button", name="Déployer").click()
    page.wait_for_url(f"{base}/parcours/passage-de-relais/versions/1/differences/2")
    expect(page.locator(".messages")).to_contain_text(f"Version 2 de « {PATHWAY} » déployée.")
    changes = page.locator(".changements li")
    expect(changes).to_have_count(1)  # the modeler's export changes nothing else
    expect(changes).to_have_text("Minuterie modifiée : P15D → P10D sur « 15 jours » (événement de bordure)")
    check_page(page, "parcours-differences")

    with seeded.app_context():
        version = db.session.scalar(select(PathwayVersion).where(PathwayVersion.key == "passage-de-relais",
                                                                 PathwayVersion.version == 2))
        assert version.deployed_by == DESIGNER
        assert 'spie:structureType="departement"' in version.bpmn_xml
        assert '"P10D"' in version.bpmn_xml and '"P15D"' not in version.bpmn_xml.split("delai-30-jours")[0]


def test_every_pathway_survives_the_modeler_round_trip(page, live_server, seeded):
    """Loaded in bpmn-js and deployed unchanged, each pathway keeps what the engine reads from it:
    no change in the change list, the same deploy metadata (user tasks, lanes, exits, hand-offs) and
    the same SpiffWorkflow extensions (message variables, decision ids)."""
    base = live_server
    with seeded.app_context():
        keys = list(db.session.scalars(select(PathwayVersion.key).order_by(PathwayVersion.key)))
    log_in(page, base, DESIGNER, landing="/parcours")
    for key in keys:
        page.goto(f"{base}/parcours/{key}/modeler")
        expect(page.locator("#modeleur[data-pret='oui']")).to_have_count(1, timeout=15000)
        expect(page.locator("#modeleur-etat")).to_have_text(
            "Schéma chargé. Choisissez un élément sur le schéma ou dans la liste « Élément ».")
        page.get_by_role("button", name="Déployer").click()
        page.wait_for_url(f"{base}/parcours/{key}/versions/1/differences/2")
        expect(page.locator("main")).to_contain_text("Aucun changement d'élément")
    with seeded.app_context():
        for key in keys:
            first, second = db.session.scalars(select(PathwayVersion).where(PathwayVersion.key == key)
                                               .order_by(PathwayVersion.version)).all()
            assert second.bpmn_xml != first.bpmn_xml, key  # really the modeler's export
            assert without_lines(second.meta) == without_lines(first.meta), key
            assert spiff_extensions(second.bpmn_xml) == spiff_extensions(first.bpmn_xml), key


def without_lines(meta: dict) -> dict:
    tasks = {task_id: {k: v for k, v in info.items() if k != "line"} for task_id, info in meta["user_tasks"].items()}
    return {**meta, "user_tasks": tasks}


def spiff_extensions(xml: str) -> list[tuple[str, str]]:
    root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    return sorted((etree.QName(e).localname, (e.text or "").strip()) for e in root.iter(f"{{{SPIFF_NS}}}*"))


def test_the_modeler_works_under_the_content_security_policy(browser, live_server, seeded):
    """The other tests bypass the CSP to inject axe-core; this one keeps it: no inline script, no refused load."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        refused = []
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)
        log_in(page, live_server, DESIGNER, landing="/parcours")
        page.goto(f"{live_server}/parcours/jeune-sortant-mission-locale/modeler")
        expect(page.locator("#modeleur[data-pret='oui']")).to_have_count(1, timeout=15000)
        page.get_by_label("Élément", exact=True).select_option("butee-26-ans")
        expect(page.get_by_label("Valeur calculée par une expression (variable du dossier)")).to_be_checked()
        expect(page.get_by_label("Expression", exact=True)).to_have_value("date_butee_26_ans")
        page.get_by_role("button", name="Vérifier").click()
        expect(page.locator("#verification-resume")).to_have_text(
            "1 avertissement : le déploiement reste possible.")
        expect(page.locator("#problemes")).to_contain_text(
            "Avertissement : Minuterie calculée à l'exécution : non vérifiable au déploiement — "
            "Événement de bordure « 26 ans »")
        expect(page.locator('.djs-element.marqueur-avertissement[data-element-id="butee-26-ans"]')).to_have_count(1)

        # A lane added from the panel has neither name nor structure type: « Vérifier » says so.
        page.get_by_label("Élément", exact=True).select_option("lane-pilote")
        page.get_by_role("button", name="Ajouter un couloir en dessous").click()
        heading = page.locator(".panneau h3")
        expect(heading).to_be_focused()
        expect(heading).to_have_text(re.compile(r"^Couloir Lane_\w+$"))
        new_lane = heading.inner_text().split(" ")[1]
        page.get_by_role("button", name="Vérifier").click()
        expect(page.locator("#verification-resume")).to_have_text(
            "1 erreur et 1 avertissement : à corriger avant de déployer.")
        expect(page.locator(f'.djs-element.marqueur-erreur[data-element-id="{new_lane}"]')).to_have_count(1)
        assert refused == []
    finally:
        context.close()
