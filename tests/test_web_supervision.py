"""The supervision pages through Flask's test client: « Tâches en retard » (scope, filters, CSV, reassignment)
and « Indicateurs ».

The scenario (tests.test_web_support): the Mission Locale référent prepares Inès Martin's exit, so the
MDS Centre (Département) must accept the hand-off and designate a référent within 15 days; the same
référent also starts « Entrée et diagnostic » for her, whose diagnostic (30 days) is the ML's own task.
"""
from __future__ import annotations

import csv
import io
import json
import re

from markupsafe import escape
from sqlalchemy import select, update

from api.extensions import db
from engine import cases, supervision
from engine.access import AccessLog
from engine.db import transaction
from engine.directory import Structure, user_by_email
from engine.models import HumanTask
from tests.api_support import (ADMIN, CD_REFERENT, CD_SUPERVISOR, DESIGNER, ML_REFERENT, ML_SUPERVISOR, PILOT,
                               login)
from tests.helpers import database_work
from tests.test_web_support import (
    advance_time,
    csrf_token,
    post,
    sign_in,
    start_entry_diagnostic,
    start_ml_exit,
    text,
    user_id,
)

MDS_CENTRE = "Département de l'Essonne — MDS Centre"
MDS_CENTRE_HTML = str(escape(MDS_CENTRE))  # as the pages write it: l&#39;Essonne
ML_CENTRE = "Mission Locale Centre Essonne"
CD_COLLEAGUE = "referent2.mds-centre@example.org"  # Chloé Dupont


def rows_of(body: str) -> set[int]:
    return {int(i) for i in re.findall(r'<tr id="retard-(\d+)"', body)}


def row_html(body: str, task_id: int) -> str:
    found = re.search(rf'<tr id="retard-{task_id}">(.*?)</tr>', body, re.S)
    assert found, f"no row for task {task_id}"
    return found.group(1)


def structure_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Structure.id).where(Structure.name == name))


def task_row(app, task_id: int) -> HumanTask:
    with app.app_context():
        task = db.session.get(HumanTask, task_id)
        db.session.expunge(task)
        return task


def access_actions(app, action: str) -> list[tuple[int | None, str, str | None]]:
    with app.app_context():
        rows = db.session.scalars(select(AccessLog).where(AccessLog.action == action).order_by(AccessLog.id))
        return [(row.case_id, row.outcome, row.detail) for row in rows]


def two_overdue_cases(app) -> dict:
    """The hand-off (MDS Centre, due at 15 days) and the ML's diagnostic (due at 30 days), both overdue."""
    ids = start_ml_exit(app)
    ids["diagnostic_id"] = start_entry_diagnostic(app)["diagnostic_id"]
    advance_time(app, "P2M")
    return ids


# ---------------------------------------------------------------- who sees what

def test_a_supervisor_sees_the_overdue_tasks_of_their_structure_only(client, seeded):
    ids = two_overdue_cases(seeded)
    sign_in(client, CD_SUPERVISOR)
    page = client.get("/supervision")
    body = text(page)
    assert page.status_code == 200 and "<h1>Tâches en retard</h1>" in body
    assert rows_of(body) == {ids["designate_id"]}
    row = row_html(body, ids["designate_id"])
    # The MDS Centre holds the task, so engine.access lets its supervisor open the case: full name, links.
    assert "Inès Martin" in row and f'href="/dossiers/{ids["case_id"]}"' in row
    assert "Accepter le relais et désigner le référent" in row and "Jeune sortant de Mission Locale" in row
    assert "Niveau 2 · pilote SPIE" in row and "À prendre" in row
    assert MDS_CENTRE_HTML not in row and 'id="filtre-structure"' not in body  # one structure: no column, no filter
    late = re.search(r"(\d+) jours", row)
    assert late and int(late.group(1)) >= 40
    assert "1 tâche en retard" in body

    sign_in(client, ML_SUPERVISOR)
    ml = text(client.get("/supervision"))
    assert rows_of(ml) == {ids["diagnostic_id"]}
    assert "Inès Martin" in row_html(ml, ids["diagnostic_id"])


def test_the_pilot_sees_the_territory_with_initials(client, seeded):
    ids = start_ml_exit(seeded)
    advance_time(seeded, "P16D")
    sign_in(client, PILOT)
    body = text(client.get("/supervision"))
    assert ids["designate_id"] in rows_of(body)
    row = row_html(body, ids["designate_id"])
    # Nothing puts the pilot's structure on this case yet: initials, no link to the case, no reassignment.
    assert "I. M." in row and "Inès Martin" not in row and "/dossiers/" not in row
    assert MDS_CENTRE_HTML in row and "Niveau 1 · encadrant" in row and "Par l'encadrement de la structure" in row
    assert 'id="filtre-structure"' in body and f">{ML_CENTRE}</option>" in body

    # Two weeks later the pilot is alerted (an escalation task of its own on the case): the name shows.
    advance_time(seeded, "P15D")
    diagnostic = start_entry_diagnostic(seeded)["diagnostic_id"]
    advance_time(seeded, "P3M")
    body = text(client.get("/supervision"))
    assert {ids["designate_id"], diagnostic} <= rows_of(body)
    assert "Inès Martin" in row_html(body, ids["designate_id"])
    assert "I. M." in row_html(body, diagnostic) and "Inès Martin" not in row_html(body, diagnostic)


def test_tasks_of_a_sensitive_structure_are_hidden_from_the_pilot(client, seeded):
    ids = start_ml_exit(seeded)
    advance_time(seeded, "P16D")
    with seeded.app_context(), transaction(db.session):
        db.session.execute(update(Structure).where(Structure.name == MDS_CENTRE).values(sensitive=True))
    sign_in(client, PILOT)
    body = text(client.get("/supervision"))
    assert ids["designate_id"] not in rows_of(body) and f">{MDS_CENTRE_HTML}</option>" not in body
    assert MDS_CENTRE_HTML not in text(client.get("/supervision/tableaux"))
    sign_in(client, CD_SUPERVISOR)  # its own supervisor still sees it
    assert ids["designate_id"] in rows_of(text(client.get("/supervision")))


def test_only_supervisors_reach_the_supervision_pages(client, seeded):
    ids = start_ml_exit(seeded)
    assert client.get("/supervision").status_code == 302  # to the login page
    for email in (CD_REFERENT, ADMIN, DESIGNER):
        sign_in(client, email)
        for path in ("/supervision", "/supervision/tableaux", "/supervision/export.csv"):
            refused = client.get(path)
            assert refused.status_code == 403, (email, path)
            assert "réservé aux encadrants" in text(refused)
        token = csrf_token(client, "/taches" if email == CD_REFERENT else "/")
        refused = client.post(f"/supervision/taches/{ids['designate_id']}/attribuer",
                              data={"csrf_token": token, "referent": user_id(seeded, CD_REFERENT), "version": 1})
        assert refused.status_code == 403, email
        assert "/supervision" not in text(client.get("/", follow_redirects=True))  # not in the navigation
    assert task_row(seeded, ids["designate_id"]).state == "open"
    sign_in(client, CD_SUPERVISOR)
    nav = text(client.get("/taches"))
    assert 'href="/supervision">Tâches en retard</a>' in nav and 'href="/supervision/tableaux">Indicateurs</a>' in nav


# ---------------------------------------------------------------- filters

def test_filters_structure_pathway_age_level_and_hand_offs(client, seeded):
    ids = two_overdue_cases(seeded)
    both = {ids["designate_id"], ids["diagnostic_id"]}
    sign_in(client, PILOT)
    assert rows_of(text(client.get("/supervision"))) == both

    def board(query: str) -> set[int]:
        response = client.get(f"/supervision?{query}")
        assert response.status_code == 200, text(response)
        return rows_of(text(response))

    assert board(f"structure={structure_id(seeded, ML_CENTRE)}") == {ids["diagnostic_id"]}
    assert board(f"structure={structure_id(seeded, MDS_CENTRE)}") == {ids["designate_id"]}
    assert board("parcours=entree-diagnostic") == {ids["diagnostic_id"]}
    assert board("parcours=jeune-sortant-mission-locale") == {ids["designate_id"]}
    assert board("parcours=brsa-oriente-social") == set()
    # Due at 15 and 30 days, seen 59 days in: 44 and 29 days late.
    assert board("age=29") == both and board("age=30") == {ids["designate_id"]} and board("age=45") == set()
    # The pilot was alerted about the hand-off (level 2), the ML's supervisors about the diagnostic (level 1).
    assert board("escalade=2") == {ids["designate_id"]} and board("escalade=1") == {ids["diagnostic_id"]}
    assert board("escalade=0") == set()
    assert board("relais=oui") == {ids["designate_id"]}
    assert board("relais=oui&parcours=entree-diagnostic") == set()
    page = text(client.get("/supervision?parcours=entree-diagnostic&age=3&relais=oui"))
    assert "Aucune tâche en retard ne correspond à ces filtres." in page
    assert '<option value="entree-diagnostic" selected>' in page and 'value="3"' in page and "checked" in page

    # Refused values: a French message beside the field, the other values kept, no board.
    refused = client.get("/supervision?age=douze&parcours=entree-diagnostic&escalade=7&structure=999999")
    body = text(refused)
    assert refused.status_code == 400 and rows_of(body) == set()
    assert "Indiquez un nombre entier de jours, entre 0 et 3660." in body and 'value="douze"' in body
    assert "Choisissez un niveau d&#39;escalade de la liste." in body
    assert "Choisissez une structure de la liste." in body
    assert '<option value="entree-diagnostic" selected>' in body and 'aria-invalid="true"' in body
    assert client.get("/supervision?parcours=inconnu").status_code == 400
    assert client.get("/supervision/export.csv?age=-1").status_code == 400


def test_the_api_board_takes_the_same_filters(client, seeded):
    ids = two_overdue_cases(seeded)
    pilot = login(client, PILOT)

    def api(query: str, total: int = 1) -> set[int]:
        response = client.get(f"/api/v1/supervision/overdue?{query}", headers=pilot)
        assert response.status_code == 200, response.json
        assert response.headers["X-Total-Count"] == str(total)
        return {row["task_id"] for row in response.json}

    assert api("hand_offs=true") == {ids["designate_id"]}
    assert api("min_age_days=30") == {ids["designate_id"]}
    assert api("escalation_level=1") == {ids["diagnostic_id"]}
    assert api("per_page=1&page=2", total=2) == {ids["diagnostic_id"]}  # sorted by due date
    assert client.get("/api/v1/supervision/overdue?escalation_level=9", headers=pilot).status_code == 422


def test_hand_offs_are_the_receiving_side_of_the_hand_off_pathway(seeded):
    """The designation by the receiving structure and its escalations; not the meeting nor the sender's exit."""
    with seeded.app_context():
        found = supervision.hand_off_tasks(db.session)
    assert {bpmn_id for bpmn_id, _ in found} == {"designer-referent", "relancer-designation", "debloquer-relais"}


def test_a_page_of_the_board_is_two_queries_whatever_its_length(seeded):
    start_ml_exit(seeded)
    start_ml_exit(seeded)
    start_entry_diagnostic(seeded)
    advance_time(seeded, "P2M")
    with seeded.app_context():
        pilot = user_by_email(db.session, PILOT)
        now = seeded.extensions["spie"].clock.now(db.session)
        with database_work(db.engine) as seen:
            rows = supervision.overdue_page(db.session, pilot, now)
    assert len(rows) == 3 and [r.due_at for r in rows] == sorted(r.due_at for r in rows)
    assert len(seen["statements"]) == 2, seen["statements"]  # the board, then which of its cases the pilot may open


# ---------------------------------------------------------------- CSV export

def test_csv_export_of_the_filtered_board_for_excel(client, seeded):
    ids = two_overdue_cases(seeded)
    sign_in(client, PILOT)
    response = client.get("/supervision/export.csv?parcours=jeune-sortant-mission-locale")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="taches-en-retard-2026-03-')
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode("utf-8"))  # the BOM: Excel then reads UTF-8
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == ["Tâche", "Parcours", "Structure", "Personne", "Échéance", "Retard (jours)",
                        "Niveau d'escalade", "Attribuée à", "N° de tâche", "N° de dossier"]
    assert len(lines) == 2
    [name, pathway, structure, person, due, late, level, assignee, task_id, case_id] = lines[1]
    assert (name, pathway, structure) == ("Accepter le relais et désigner le référent",
                                          "Jeune sortant de Mission Locale", MDS_CENTRE)
    # The pilot holds an escalation on this case by now, so engine.access shows the name.
    assert person == "Inès Martin" and re.fullmatch(r"\d\d/01/2026", due) and int(late) >= 40
    assert level == "Niveau 2 · pilote SPIE" and assignee == ""
    assert (int(task_id), int(case_id)) == (ids["designate_id"], ids["case_id"])
    assert access_actions(seeded, "supervision.export") == [
        (None, "allowed", "rows=1; parcours=jeune-sortant-mission-locale")]

    everything = client.get("/supervision/export.csv").get_data().decode("utf-8-sig")
    assert len(everything.strip().split("\r\n")) == 3 and "I. M." in everything

    sign_in(client, CD_SUPERVISOR)
    own = client.get("/supervision/export.csv").get_data().decode("utf-8-sig")
    assert "Entrée et diagnostic" not in own and "Accepter le relais" in own


# ---------------------------------------------------------------- reassignment

def test_reassign_to_a_referent_of_the_structure(client, seeded):
    ids = start_ml_exit(seeded)
    advance_time(seeded, "P16D")
    task = ids["designate_id"]
    sign_in(client, CD_SUPERVISOR)
    body = text(client.get("/supervision"))
    row = row_html(body, task)
    # The choices: the MDS Centre's active référents, nobody else.
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', row)
    assert {name for _, name in options} == {"Vincent Mercier", "Chloé Dupont"}
    version = task_row(seeded, task).version
    assert f'name="version" value="{version}"' in row

    done = post(client, f"/supervision/taches/{task}/attribuer",
                {"referent": user_id(seeded, CD_REFERENT), "version": version, "suivant": "/supervision?relais=oui"},
                token_from="/supervision")
    assert done.status_code == 303 and done.headers["Location"] == "/supervision?relais=oui"
    after = task_row(seeded, task)
    assert (after.state, after.assignee) == ("claimed", CD_REFERENT)
    page = text(client.get("/supervision"))
    assert "Tâche « Accepter le relais et désigner le référent » attribuée à Vincent Mercier." in page
    assert "Prise par Vincent Mercier" in row_html(page, task)
    assert access_actions(seeded, "task.assign") == [(ids["case_id"], "allowed", str(task))]

    # htmx: the row comes back, announced; the version sent is the one the page showed.
    swapped = post(client, f"/supervision/taches/{task}/attribuer",
                   {"referent": user_id(seeded, CD_COLLEAGUE), "version": after.version},
                   token_from="/supervision", headers={"HX-Request": "true"})
    html = text(swapped)
    assert swapped.status_code == 200 and html.lstrip().startswith(f'<tr id="retard-{task}">')
    assert "Prise par Chloé Dupont" in html and 'hx-swap-oob="true">Tâche « Accepter' in html
    assert task_row(seeded, task).assignee == CD_COLLEAGUE


def test_reassign_refusals_leave_the_task_as_it_was(client, seeded):
    ids = start_ml_exit(seeded)
    advance_time(seeded, "P16D")
    task = ids["designate_id"]
    version = task_row(seeded, task).version
    sign_in(client, CD_SUPERVISOR)

    def attempt(data: dict, **kwargs):
        return post(client, f"/supervision/taches/{task}/attribuer", data, token_from="/supervision", **kwargs)

    # A référent of another structure, a supervisor for a référent task, nobody, nonsense.
    for referent in (user_id(seeded, ML_REFERENT), user_id(seeded, CD_SUPERVISOR)):
        refused = attempt({"referent": referent, "version": version})
        assert refused.status_code == 303
        assert "Choisissez un référent actif de la structure de la tâche." in text(client.get("/supervision"))
    for referent in ("", "abc", "99999999999999999999999"):
        attempt({"referent": referent, "version": version})
        assert "Choisissez dans la liste la personne" in text(client.get("/supervision"))
    htmx = attempt({"referent": user_id(seeded, ML_REFERENT), "version": version}, headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and 'class="message-erreur"' in text(htmx)
    assert (task_row(seeded, task).state, task_row(seeded, task).assignee) == ("open", None)

    # Stale: a page shown before someone else claimed the task.
    with seeded.app_context(), transaction(db.session):
        cases.claim_task(db.session, seeded.extensions["spie"], task, user=CD_COLLEAGUE)
    stale = attempt({"referent": user_id(seeded, CD_REFERENT), "version": version})
    assert stale.status_code == 303
    assert "Quelqu&#39;un d&#39;autre vient de modifier" in text(client.get("/supervision"))
    assert task_row(seeded, task).assignee == CD_COLLEAGUE

    # No CSRF token, or another session's: refused before anything is done.
    for token in (None, "a" * 43):
        data = {"referent": user_id(seeded, CD_REFERENT), "version": task_row(seeded, task).version}
        if token:
            data["csrf_token"] = token
        refused = client.post(f"/supervision/taches/{task}/attribuer", data=data)
        assert refused.status_code == 400 and "Le formulaire a expiré" in text(refused)
    assert task_row(seeded, task).assignee == CD_COLLEAGUE

    # The ML's supervisor sees the case (its référent is on the care team) but not this task's structure;
    # the pilot has the row on its board but may not even open the case.
    for email, status in ((ML_SUPERVISOR, 403), (PILOT, 404)):
        sign_in(client, email)
        assert attempt({"referent": user_id(seeded, CD_REFERENT), "version": version}).status_code == status
    assert task_row(seeded, task).assignee == CD_COLLEAGUE
    assert (ids["case_id"], "denied", str(task)) in access_actions(seeded, "task.assign")


# ---------------------------------------------------------------- indicators

def test_indicators_count_open_and_overdue_tasks_by_structure_and_pathway(client, seeded):
    start_ml_exit(seeded)
    advance_time(seeded, "P16D")
    start_entry_diagnostic(seeded)
    sign_in(client, CD_SUPERVISOR)
    body = text(client.get("/supervision/tableaux"))
    assert "<h1>Indicateurs</h1>" in body and "chart.umd.min.js" in body and "supervision.js" in body
    # The MDS Centre holds the designation (overdue) and its supervisors' reminder (no due date).
    assert re.search(rf"<th scope=\"row\">{re.escape(MDS_CENTRE_HTML)}</th><td>2</td><td>1</td>", body)
    assert ML_CENTRE not in body
    charts = {key: json.loads(value.replace("&#34;", '"').replace("&#39;", "'"))
              for key, value in re.findall(r'id="graphique-(\w+)" role="img"[^>]*data-graphique=\'([^\']+)\'', body,
                                           re.S)}
    assert charts["structures"] == {"libelles": [MDS_CENTRE], "ouvertes": [2], "retard": [1]}
    assert charts["parcours"] == {"libelles": ["Jeune sortant de Mission Locale"], "ouvertes": [2], "retard": [1]}

    sign_in(client, PILOT)
    territory = text(client.get("/supervision/tableaux"))
    assert re.search(rf"<th scope=\"row\">{re.escape(ML_CENTRE)}</th><td>1</td><td>0</td>", territory)
    assert re.search(r"<th scope=\"row\">Entrée et diagnostic</th><td>1</td><td>0</td>", territory)
    assert "sur tout le territoire" in territory


def test_a_long_board_is_counted_up_to_the_bound_and_paged_without_a_last_page(client, seeded, monkeypatch):
    two_overdue_cases(seeded)
    caps = []
    original = supervision.count_overdue
    monkeypatch.setattr("engine.supervision.count_overdue",
                        lambda *args, cap=None, **kwargs: caps.append(cap) or original(*args, cap=cap, **kwargs))
    monkeypatch.setattr("web.queries.COUNT_CAP", 1)
    monkeypatch.setattr("web.supervision.PER_PAGE", 1)
    sign_in(client, PILOT)
    body = text(client.get("/supervision"))
    assert caps == [1]  # the count stops after the bound
    assert "1+ tâches en retard" in body and "Tâches en retard (1+)" in body
    assert 'aria-current="page">Page 1</li>' in body and " sur " not in body and "Page suivante" in body

    monkeypatch.setattr("web.queries.COUNT_CAP", 1000)
    body = text(client.get("/supervision"))
    total = int(re.search(r"(\d+) tâches en retard", body).group(1))
    assert total >= 2 and f'aria-current="page">Page 1 sur {total}</li>' in body
    last = text(client.get(f"/supervision?page={total}"))
    assert "Page précédente" in last and "Page suivante" not in last
