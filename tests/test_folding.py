"""engine.folding: the same folded search in Python, on PostgreSQL and on SQLite."""
from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select

from engine.folding import contains_folded, fold, glob_pattern

NAMES = ["Hélène Dupré", "HÉLÈNE MARTIN", "Helene Petit", "Œuvre de l'Île", "Chloé", "Zoë 50% *réel*", "Noël_Ç"]


def test_fold_lowers_and_drops_accents():
    assert fold("Crèche Œuvre Ça") == "creche oeuvre ca"
    assert fold("ÉLODIE") == "elodie"


def test_a_glob_pattern_keeps_wildcards_typed_as_characters():
    assert glob_pattern("a*b?[c") == "*[aàÀâÂäÄáÁãÃåÅ][*]b[?][[][cçÇ]*"


@pytest.mark.parametrize("search, expected", [
    ("helene", ["Hélène Dupré", "HÉLÈNE MARTIN", "Helene Petit"]),
    ("HÉLÈNE", ["Hélène Dupré", "HÉLÈNE MARTIN", "Helene Petit"]),
    ("dupre", ["Hélène Dupré"]),
    ("ile", ["Œuvre de l'Île"]),
    ("chloe", ["Chloé"]),
    ("zoe", ["Zoë 50% *réel*"]),
    ("50%", ["Zoë 50% *réel*"]),
    ("*reel*", ["Zoë 50% *réel*"]),
    ("%", ["Zoë 50% *réel*"]),
    ("*", ["Zoë 50% *réel*"]),
    ("l_c", ["Noël_Ç"]),
    ("_", ["Noël_Ç"]),
    ("?", []),
])
def test_contains_ignores_case_and_accents_on_each_database(db_engine, search, expected):
    table = Table("folding_probe", MetaData(), Column("name", String(80)))
    table.create(db_engine)
    try:
        with db_engine.begin() as connection:
            connection.execute(insert(table), [{"name": n} for n in NAMES])
            found = connection.scalars(select(table.c.name).where(
                contains_folded(table.c.name, search, db_engine.dialect.name))).all()
        assert sorted(found) == sorted(expected)
    finally:
        table.drop(db_engine)
