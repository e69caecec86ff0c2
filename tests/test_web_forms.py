"""web/forms.py on the real forms of forms/: fields, parsing back to JSON, French errors, HTML (no database)."""
from __future__ import annotations

import json
import re

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from werkzeug.datastructures import MultiDict

from engine.forms import validate_form_data
from engine.paths import FORMS_DIR, PROJECT_ROOT
from web import forms

SCHEMAS = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(FORMS_DIR.glob("*.json"))}

FREINS = ("mobilite", "contraintes_familiales", "sante", "maitrise_langue", "logement", "difficulte_financiere",
          "difficulte_administrative")
DIAGNOSTIC = {
    "date_diagnostic": "2026-01-12",
    "situation_professionnelle": "recherche_emploi",
    "niveau_formation": "NV4",
    "rqth": False,
    "freins": {**{k: {"valeur": "NON"} for k in FREINS},
               "contraintes_familiales": {"valeur": "OUI", "situation": "Deux enfants, pas de mode de garde."}},
    "besoins": ["trouver_un_emploi", "se_former"],
    "synthese": "Cherche un emploi dans la logistique ;\npermis B en cours.",
    "consentement_partage": True,
}
CONTRAT = {"type_contrat": "CE", "date_signature": "2026-02-01", "heures_activite_hebdomadaires": 15,
           "objectifs": [{"libelle": "Obtenir le permis B", "theme": "mobilite", "echeance": "2026-06-30"},
                         {"libelle": "Trouver une place en crèche"}]}


def env() -> Environment:
    return Environment(loader=FileSystemLoader(PROJECT_ROOT / "web" / "templates"), autoescape=select_autoescape())


def render(fields: list[forms.Field]) -> str:
    template = env().from_string('{% import "_champs.html" as c %}{% for f in fields %}{{ c.field(f) }}{% endfor %}')
    return template.render(fields=fields)


def leaves(fields):
    return [f for top in fields for f in top.walk() if f.kind not in ("group", "list")]


@pytest.mark.parametrize("key", sorted(SCHEMAS))
def test_every_form_renders_labelled_fields_with_unique_ids(key):
    schema = SCHEMAS[key]
    fields = forms.build(schema, MultiDict())
    html = render(fields)
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), f"duplicate ids in {key}"
    for target in re.findall(r'<label for="([^"]+)"', html):
        assert target in ids, f"{key}: label for a missing field {target}"
    for field in leaves(fields):
        assert str(escape(field.label)) in html
        assert f'name="{field.name}"' in html
    assert [f.name for f in fields] == list(schema["properties"])


def test_diagnostic_fields_by_kind():
    fields = {f.name: f for f in leaves(forms.build(SCHEMAS["diagnostic-socio-professionnel"], MultiDict()))}
    assert fields["date_diagnostic"].kind == "date" and fields["date_diagnostic"].required
    assert fields["situation_professionnelle"].kind == "choice"
    assert fields["situation_professionnelle"].widget == "select"  # 23 choices
    assert fields["freins.mobilite.valeur"].widget == "radio"  # $ref resolved: Oui, Non, Non abordé
    assert fields["freins.mobilite.valeur"].options == [("OUI", "Oui"), ("NON", "Non"), ("NON_ABORDEE", "Non abordé")]
    assert fields["freins.mobilite.valeur"].required
    assert fields["freins.mobilite.situation"].kind == "textarea"
    assert fields["besoins"].kind == "multichoice" and ("se_former", "Se former") in fields["besoins"].options
    assert fields["rqth"].kind == "boolean" and not fields["rqth"].required
    assert fields["synthese"].kind == "textarea" and "4\u202f000 caractères au maximum." == fields["synthese"].hint
    group = next(f for f in forms.build(SCHEMAS["diagnostic-socio-professionnel"], MultiDict()) if f.name == "freins")
    assert group.kind == "group" and group.children[0].label == "Mobilité"
    assert fields["freins.sante.valeur"].full_label == "Freins périphériques › Santé › Frein identifié ?"


@pytest.mark.parametrize("key,data", [
    ("diagnostic-socio-professionnel", DIAGNOSTIC),
    ("contrat-engagement", CONTRAT),
    ("rendez-vous-tripartite", {"date_rendez_vous": "2026-02-10", "presence_personne": True,
                                "presence_referent_origine": True, "presence_referent_accueil": False}),
    ("sortie", {"exit_reason": "relais-autre-structure", "exit_date": "2026-03-01", "commentaire": "Relais RSA"}),
    ("revue-parcours", {"date_revue": "2026-07-01", "decision": "reorientation", "orientation_proposee": "pro",
                        "freins_leves": ["mobilite"]}),
])
def test_data_goes_to_the_form_and_back_unchanged(key, data):
    schema = SCHEMAS[key]
    validate_form_data(schema, data)  # the example is valid for the engine
    values = forms.values_from_data(schema, data)
    html = render(forms.build(schema, values))
    parsed, unreadable = forms.parse(schema, values)
    assert unreadable == {} and parsed == data
    assert forms.validate(schema, parsed) == {}
    if key == "contrat-engagement":
        assert '>Obtenir le permis B</textarea>' in html and 'name="_lignes:objectifs" value="2"' in html


def test_parse_reads_strings_numbers_dates_and_drops_empty_fields():
    schema = SCHEMAS["contrat-engagement"]
    form = MultiDict({"type_contrat": "CER", "date_signature": "01/02/2026", "date_fin": "",
                      "heures_activite_hebdomadaires": " 12 ", "_lignes:objectifs": "3",
                      "objectifs.0.libelle": "  Permis  ", "objectifs.1.libelle": "", "objectifs.1.theme": "",
                      "objectifs.2.libelle": "Crèche", "csrf_token": "x"})
    data, unreadable = forms.parse(schema, form)
    assert unreadable == {}
    assert data == {"type_contrat": "CER", "date_signature": "2026-02-01", "heures_activite_hebdomadaires": 12,
                    "objectifs": [{"libelle": "Permis"}, {"libelle": "Crèche"}]}


def test_a_word_for_a_number_is_reported_and_kept():
    schema = SCHEMAS["contrat-engagement"]
    form = MultiDict({"heures_activite_hebdomadaires": "quinze"})
    data, unreadable = forms.parse(schema, form)
    errors = forms.merge_errors(forms.validate(schema, data), unreadable)
    assert errors["heures_activite_hebdomadaires"] == ["Saisissez un nombre entier, en chiffres."]
    assert errors["objectifs"] == ["Renseignez au moins un élément."]  # a required list, all rows empty
    field = next(f for f in forms.build(schema, form, errors) if f.name == "heures_activite_hebdomadaires")
    assert field.value == "quinze" and field.errors


def test_errors_in_french_on_the_right_fields():
    diagnostic = SCHEMAS["diagnostic-socio-professionnel"]
    data, _ = forms.parse(diagnostic, MultiDict({"date_diagnostic": "31/02/2026", "freins.sante.valeur": "PEUT-ETRE",
                                                 "synthese": "x" * 4001}))
    errors = forms.validate(diagnostic, data)
    assert errors["date_diagnostic"] == ["Saisissez une date valide, par exemple 31/01/2026."]
    assert errors["freins.sante.valeur"] == ["Choisissez une des valeurs proposées."]
    assert errors["freins.mobilite.valeur"] == ["Ce champ est obligatoire."]  # a required group shows its fields
    assert errors["synthese"] == ["Saisissez au plus 4000 caractères (vous en avez saisi 4001)."]
    assert errors["consentement_partage"] == ["Ce champ est obligatoire."]

    review = SCHEMAS["revue-parcours"]  # if decision = reorientation then orientation_proposee is required
    errors = forms.validate(review, {"date_revue": "2026-07-01", "decision": "reorientation"})
    assert errors == {"orientation_proposee": ["Ce champ est obligatoire."]}

    designation = SCHEMAS["designation-referent"]
    errors = forms.validate(designation, {"referent_email": "vincent.mercier"})
    assert errors["referent_email"] == ["Saisissez une adresse électronique valide, par exemple prenom.nom@exemple.fr."]


def test_describe_says_the_data_with_the_form_titles():
    items = forms.describe(SCHEMAS["diagnostic-socio-professionnel"], DIAGNOSTIC)
    by_label = {item["label"]: item for item in items}
    assert by_label["Situation professionnelle"]["text"] == "En recherche d'emploi"
    assert by_label["Date du diagnostic"]["text"] == "12/01/2026"
    assert by_label["Besoins d'accompagnement vers l'emploi"]["text"] == "Trouver un emploi, Se former"
    assert by_label["Reconnaissance de la qualité de travailleur handicapé (RQTH)"]["text"] == "Non"
    table = by_label["Freins périphériques"]["table"]
    assert table["columns"] == ["Frein identifié ?", "Situation"]
    assert table["rows"][1] == ("Contraintes familiales (dont garde d'enfants)", ["Oui", "Deux enfants, pas de mode de garde."])
    assert table["rows"][0] == ("Mobilité", ["Non", ""])
    family = next(c for c in by_label["Freins périphériques"]["children"]
                  if c["label"] == "Contraintes familiales (dont garde d'enfants)")
    assert [(c["label"], c["text"]) for c in family["children"]] == [
        ("Frein identifié ?", "Oui"), ("Situation", "Deux enfants, pas de mode de garde.")]


def test_rendering_shows_errors_and_checked_values():
    schema = SCHEMAS["diagnostic-socio-professionnel"]
    values = MultiDict([("besoins", "se_former"), ("rqth", "oui"), ("freins.logement.valeur", "NON")])
    data, _ = forms.parse(schema, values)
    html = render(forms.build(schema, values, forms.validate(schema, data)))
    assert re.search(r'value="se_former" checked', html)
    assert re.search(r'id="champ-rqth" name="rqth"\s+value="oui" checked', html)
    assert 'id="champ-freins-mobilite-valeur-erreur"' in html
    assert html.count('aria-invalid="true"') > 0


def test_list_rows_can_be_added_without_validating():
    """« Ajouter une ligne » shows the form again with one more row, the values kept."""
    values = MultiDict({"_lignes:objectifs": "1", "objectifs.0.libelle": "Permis B"})
    fields = forms.build(SCHEMAS["contrat-engagement"], values, add_row="objectifs")
    [objectifs] = [f for f in fields if f.name == "objectifs"]
    assert [row[0].name for row in objectifs.rows] == ["objectifs.0.libelle", "objectifs.1.libelle"]
    assert objectifs.rows[0][0].value == "Permis B" and objectifs.rows[1][0].value == ""
