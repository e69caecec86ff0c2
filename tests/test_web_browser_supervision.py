"""The supervision pages in a real browser (Debian's chromium driven by Playwright, see tests/browser_support.py).

The MDS Centre's supervisor moves the simulated clock on with the banner's control, finds the
overdue hand-off on « Tâches en retard » with its escalation level, gives it to one of the
structure's référents without a page reload (htmx), then reads the « Indicateurs » charts. The
pilot sees the same hand-off, with the person's initials only. axe-core checks every page.
"""
from __future__ import annotations

from tests.api_support import CD_SUPERVISOR, PILOT
from tests.browser_support import browser, check_page, expect, live_server, log_in, page, skip_without_browser  # noqa: F401
from tests.test_web_support import advance_time, start_ml_exit

pytestmark = skip_without_browser

TASK = "Accepter le relais et désigner le référent"


def test_supervisor_finds_the_late_hand_off_and_reassigns_it(page, live_server, seeded):
    base = live_server
    ids = start_ml_exit(seeded)
    log_in(page, base, CD_SUPERVISOR)

    banner = page.locator(".bandeau-simulation")
    banner.get_by_label("Durée").select_option("P1M")
    banner.get_by_role("button", name="Avancer le temps").click()
    expect(page.locator(".messages")).to_contain_text("Temps avancé de 1 mois")
    expect(banner).to_contain_text("5 février 2026")

    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Tâches en retard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tâches en retard")
    row = page.locator(f"#retard-{ids['designate_id']}")
    expect(row).to_contain_text(TASK)
    expect(row).to_contain_text("Inès Martin")
    expect(row).to_contain_text("16 jours")
    expect(row).to_contain_text("Niveau 2 · pilote SPIE")  # the supervisors at 15 days, the pilot at 30
    expect(row).to_contain_text("À prendre")
    check_page(page, "supervision-retards")

    # Only the hand-offs: the filter keeps this one and says so in the page's address.
    page.get_by_label("Passages de relais seulement").check()
    page.get_by_role("button", name="Filtrer").click()
    expect(page).to_have_url(f"{base}/supervision?parcours=&age=&escalade=&relais=oui")
    expect(row).to_contain_text(TASK)
    expect(page.get_by_role("link", name="Exporter en CSV")).to_have_attribute(
        "href", "/supervision/export.csv?relais=oui")

    # Reassign with the keyboard, without reloading the page: htmx swaps the row, the change is announced.
    page.evaluate("window.__sameDocument = true")
    row.get_by_label(f"Attribuer la tâche « {TASK} » à").select_option(label="Chloé Dupont")
    row.get_by_role("button", name="Attribuer").press("Enter")
    expect(row).to_contain_text("Prise par Chloé Dupont")
    expect(row.locator(".message-ok")).to_contain_text(f"Tâche « {TASK} » attribuée à Chloé Dupont.")
    expect(page.locator("#annonce")).to_contain_text("attribuée à Chloé Dupont")
    assert page.evaluate("window.__sameDocument === true"), "the reassignment reloaded the page"
    check_page(page, "supervision-reattribuee")

    # Still there after a reload: the task is Chloé Dupont's now.
    page.reload()
    expect(page.locator(f"#retard-{ids['designate_id']}")).to_contain_text("Prise par Chloé Dupont")

    page.get_by_role("navigation", name="Navigation principale").get_by_role("link", name="Indicateurs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Indicateurs")
    expect(page.locator("canvas[data-trace='oui']")).to_have_count(2)
    by_structure = page.locator("#tableau-structures")
    expect(by_structure).to_contain_text("MDS Centre")
    expect(by_structure.locator("tbody tr")).to_have_count(1)
    canvas = page.locator("#graphique-structures")
    assert canvas.bounding_box()["height"] > 50, "the chart was not drawn"
    check_page(page, "supervision-indicateurs")


def test_the_pilot_sees_the_territory_with_initials(page, live_server, seeded):
    base = live_server
    ids = start_ml_exit(seeded)
    advance_time(seeded, "P16D")
    log_in(page, base, PILOT)
    page.goto(f"{base}/supervision")
    row = page.locator(f"#retard-{ids['designate_id']}")
    expect(row).to_contain_text("I. M.")
    expect(row).not_to_contain_text("Inès")
    expect(row).to_contain_text("Niveau 1 · encadrant")
    expect(row.get_by_role("button", name="Attribuer")).to_have_count(0)
    page.get_by_label("Structure").select_option(label="Département de l'Essonne — MDS Centre")
    page.get_by_role("button", name="Filtrer").click()
    expect(row).to_contain_text(TASK)
    check_page(page, "supervision-pilote")

    page.get_by_label("Retard minimal (en jours)").fill("5")
    page.get_by_role("button", name="Filtrer").click()
    expect(page.locator("main")).to_contain_text("Aucune tâche en retard ne correspond à ces filtres.")
    page.goto(f"{base}/supervision/tableaux")
    expect(page.locator("canvas[data-trace='oui']")).to_have_count(2)
    check_page(page, "supervision-indicateurs-pilote")
