"""Text folded for search: lower case without accents, the same in Python and in SQL on both databases.

« Hélène » is found by typing « helene », « HÉLÈNE » or « Hélène ». PostgreSQL folds the column
with ``translate()`` (no extension needed); SQLite's ``lower()`` knows only ASCII letters, so
there a folded word becomes a GLOB pattern whose letters are classes of their accented forms.
"""
from __future__ import annotations

import unicodedata

from sqlalchemy import ColumnElement, func

ACCENTED = "àâäáãåéèêëíìîïóòôöõúùûüçñÿ"
PLAIN = "aaaaaaeeeeiiiiooooouuuucny"
_VARIANTS = {plain: "" for plain in set(PLAIN)}
for _accented, _plain in zip(ACCENTED, PLAIN):
    _VARIANTS[_plain] += _accented + _accented.upper()
del _accented, _plain
_GLOB_SPECIAL = {"*": "[*]", "?": "[?]", "[": "[[]"}


def fold(text: str) -> str:
    """Lower case without accents: 'Crèche Œuvre' -> 'creche oeuvre'."""
    text = text.lower().replace("œ", "oe").replace("æ", "ae")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def folded_sql(column: str) -> str:
    """PostgreSQL's :func:`fold` of a column, as SQL text (for a generated column's definition)."""
    pairs = ACCENTED + ACCENTED.upper()
    return (f"replace(replace(translate(lower(coalesce({column}, '')), '{pairs}', '{PLAIN * 2}'), "
            f"'œ', 'oe'), 'æ', 'ae')")


def glob_pattern(folded: str) -> str:
    """'creche' -> '*cr[eéèêëÉÈÊË]ch[eéèêëÉÈÊË]*': folded text as a GLOB pattern over lowered text."""
    return "*" + "".join(f"[{c}{_VARIANTS[c]}]" if c in _VARIANTS else _GLOB_SPECIAL.get(c, c) for c in folded) + "*"


def contains_folded(column, search: str, dialect: str) -> ColumnElement[bool]:
    """``column`` contains ``search``, ignoring case and accents (``%``, ``_``, ``*``... typed are plain)."""
    folded = fold(search)
    if dialect == "postgresql":
        pairs = ACCENTED + ACCENTED.upper()
        text = func.replace(func.replace(func.translate(func.lower(column), pairs, PLAIN * 2), "œ", "oe"), "æ", "ae")
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return text.like(f"%{escaped}%", escape="\\")
    return func.lower(column).op("GLOB")(glob_pattern(folded))
