"""A task's JSON Schema as HTML fields, the POSTed fields back as JSON, and French error messages.

The schemas of ``forms/`` use a small part of JSON Schema, and so does this module:
strings (``format`` date or email; a ``maxLength`` over 200 makes a text area),
integers and numbers, booleans (Oui / Non), one value among ``oneOf`` of
``const`` + ``title`` (radio buttons up to five choices, a list beyond), arrays
of such values (check boxes), objects (a fieldset), arrays of objects (a
fieldset per row) and local ``$ref``. The engine validates again when the task
completes; validating here first only gives each error its field and its
French wording.

Field names are the JSON path joined with dots: ``freins.mobilite.valeur``,
``objectifs.0.libelle``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator
from werkzeug.datastructures import MultiDict

TEXTAREA_OVER = 200
RADIO_UP_TO = 5
MAX_ROWS = 50
ROWS_PREFIX = "_lignes:"
ADD_ROW = "ajouter:"
MISSING = object()

TRUE, FALSE = "oui", "non"


@dataclass
class Field:
    kind: str  # text, textarea, email, date, integer, number, boolean, choice, multichoice, group, list
    name: str
    label: str
    full_label: str
    hint: str | None = None
    required: bool = False
    value: Any = ""  # a string; a list of strings for multichoice
    errors: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    widget: str = ""  # radio or select, for a choice
    children: list[Field] = field(default_factory=list)  # a group's fields
    rows: list[list[Field]] = field(default_factory=list)  # a list's rows of fields
    item_label: str = ""
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def id(self) -> str:
        return "champ-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)

    @property
    def rows_field(self) -> str:
        return ROWS_PREFIX + self.name

    @property
    def add_row_action(self) -> str:
        return ADD_ROW + self.name

    @property
    def inline(self) -> bool:
        """Few short options (Oui / Non / Non abordé) read better on one line."""
        return self.kind == "boolean" or (len(self.options) <= 3 and all(len(t) <= 15 for _, t in self.options))

    @property
    def invalid(self) -> bool:
        return bool(self.errors)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()
        for row in self.rows:
            for child in row:
                yield from child.walk()


# ---------------------------------------------------------------- schema reading

def resolve(node: dict, root: dict) -> dict:
    """``node`` with a local ``$ref`` replaced by its target (sibling keywords win, as in 2020-12)."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
    merged = dict(resolve(target, root)) if isinstance(target, dict) else {}
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _choices(node: dict) -> list[tuple[str, str]] | None:
    options = node.get("oneOf") or node.get("anyOf")
    if isinstance(options, list) and options and all(isinstance(o, dict) and "const" in o for o in options):
        return [(str(o["const"]), str(o.get("title") or o["const"])) for o in options]
    if isinstance(node.get("enum"), list):
        return [(str(v), str(v)) for v in node["enum"]]
    return None


def kind_of(node: dict, root: dict) -> str:
    node = resolve(node, root)
    kind = node.get("type")
    if _choices(node) is not None and kind in (None, "string", "integer"):
        return "choice"
    if kind == "object" or (kind is None and "properties" in node):
        return "group"
    if kind == "array":
        items = resolve(node.get("items") or {}, root)
        return "multichoice" if _choices(items) is not None else "list"
    if kind == "boolean":
        return "boolean"
    if kind in ("integer", "number"):
        return kind
    if node.get("format") in ("date", "email"):
        return node["format"]
    if (node.get("maxLength") or 0) > TEXTAREA_OVER:
        return "textarea"
    return "text"


def _properties(node: dict) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in (node.get("properties") or {}).items() if isinstance(v, dict)]


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


# ---------------------------------------------------------------- building fields

def build(root: dict, values: MultiDict, errors: dict[str, list[str]] | None = None,
          add_row: str | None = None) -> list[Field]:
    """The fields of the form ``root``, filled with ``values`` and carrying ``errors``."""
    errors = errors or {}
    return [_build(resolve(node, root), root, key, key in (root.get("required") or []), values, errors, add_row, "")
            for key, node in _properties(root)]


def _build(node: dict, root: dict, name: str, required: bool, values: MultiDict, errors: dict, add_row: str | None,
           parent_label: str) -> Field:
    kind = kind_of(node, root)
    label = str(node.get("title") or name.rsplit(".", 1)[-1])
    out = Field(kind=kind, name=name, label=label, hint=node.get("description"), required=required,
                full_label=f"{parent_label} › {label}" if parent_label else label, errors=list(errors.get(name, [])))
    if kind == "group":
        required_keys = node.get("required") or []
        out.children = [_build(resolve(child, root), root, _join(name, key), key in required_keys, values, errors,
                               add_row, out.full_label) for key, child in _properties(node)]
    elif kind == "list":
        item = resolve(node.get("items") or {}, root)
        out.item_label = str(item.get("title") or label)
        count = row_count(node, name, values) + (1 if add_row == name else 0)
        count = min(count, node.get("maxItems") or MAX_ROWS, MAX_ROWS)
        required_keys = item.get("required") or []
        for index in range(count):
            row_label = f"{out.full_label} › {out.item_label} {index + 1}"
            out.rows.append([_build(resolve(child, root), root, _join(_join(name, index), key), key in required_keys,
                                    values, errors, add_row, row_label) for key, child in _properties(item)])
    elif kind == "multichoice":
        out.options = _choices(resolve(node.get("items") or {}, root)) or []
        out.value = values.getlist(name)
    else:
        out.value = values.get(name, "")
        if kind == "choice":
            out.options = _choices(node) or []
            out.widget = "radio" if len(out.options) <= RADIO_UP_TO else "select"
        elif kind == "boolean":
            out.options = [(TRUE, "Oui"), (FALSE, "Non")]
        out.max_length = node.get("maxLength")
        out.minimum, out.maximum = node.get("minimum"), node.get("maximum")
        if kind == "textarea" and out.max_length and not out.hint:
            out.hint = f"{out.max_length:,} caractères au maximum.".replace(",", "\u202f")
    return out


def row_count(node: dict, name: str, values: MultiDict) -> int:
    """Rows shown for a list: as many as sent (or as the data has), at least minItems and one."""
    sent = values.get(ROWS_PREFIX + name, "")
    if sent.isdigit():
        count = int(sent)
    else:
        prefix = name + "."
        indexes = {int(k[len(prefix):].split(".", 1)[0]) for k in values
                   if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()}
        count = max(indexes) + 1 if indexes else 0
    return max(1, min(count, MAX_ROWS), node.get("minItems") or 0)


def fields_with_errors(fields: list[Field]) -> list[Field]:
    return [f for top in fields for f in top.walk() if f.errors]


def first_input_id(f: Field) -> str:
    """Where an error summary's link should land: the field, or the first field of a group."""
    if f.kind == "group" and f.children:
        return first_input_id(f.children[0])
    if f.kind == "list" and f.rows and f.rows[0]:
        return first_input_id(f.rows[0][0])
    return f.id


# ---------------------------------------------------------------- data <-> form values

def values_from_data(root: dict, data: dict | None) -> MultiDict:
    """Form values showing existing data (the task's current values)."""
    values: MultiDict = MultiDict()
    _flatten(root, root, data or {}, "", values)
    return values


def _flatten(node: dict, root: dict, value: Any, name: str, values: MultiDict) -> None:
    node = resolve(node, root)
    kind = kind_of(node, root) if name else "group"
    if kind == "group" and isinstance(value, dict):
        for key, child in _properties(node):
            if key in value:
                _flatten(child, root, value[key], _join(name, key), values)
    elif kind == "list" and isinstance(value, list):
        values[ROWS_PREFIX + name] = str(len(value))
        item = resolve(node.get("items") or {}, root)
        for index, row in enumerate(value):
            if isinstance(row, dict):
                _flatten(item, root, row, _join(name, index), values)
    elif kind == "multichoice" and isinstance(value, list):
        for item in value:
            values.add(name, str(item))
    elif kind == "boolean" and isinstance(value, bool):
        values[name] = TRUE if value else FALSE
    elif value is not None and not isinstance(value, (dict, list)):
        values[name] = str(value)


def parse(root: dict, form: MultiDict) -> tuple[dict, dict[str, list[str]]]:
    """The JSON object the form's fields say, and the fields that could not be read (a word for a number)."""
    problems: dict[str, list[str]] = {}
    data = _parse_group(root, root, "", form, problems, required=True)
    return (data if isinstance(data, dict) else {}), problems


def _parse_group(node: dict, root: dict, name: str, form: MultiDict, problems: dict, required: bool):
    required_keys = node.get("required") or []
    out = {}
    for key, child in _properties(node):
        value = _parse(resolve(child, root), root, _join(name, key), form, problems, key in required_keys)
        if value is not MISSING:
            out[key] = value
    return out if out or required else MISSING


def _parse(node: dict, root: dict, name: str, form: MultiDict, problems: dict, required: bool):
    kind = kind_of(node, root)
    if kind == "group":
        return _parse_group(node, root, name, form, problems, required)
    if kind == "list":
        item = resolve(node.get("items") or {}, root)
        rows = []
        for index in range(row_count(node, name, form)):
            row = _parse_group(item, root, _join(name, index), form, problems, required=False)
            if row is not MISSING:
                rows.append(row)
        return rows if rows or required else MISSING
    if kind == "multichoice":
        chosen = [v for v in form.getlist(name) if v]
        return _typed_list(chosen, resolve(node.get("items") or {}, root)) if chosen else MISSING
    raw = form.get(name, "")
    text = raw.replace("\r\n", "\n").strip()
    if text == "":
        return MISSING
    if kind == "boolean":
        return {TRUE: True, FALSE: False}.get(text, text)
    if kind == "integer" or (kind == "choice" and node.get("type") == "integer"):
        if re.fullmatch(r"[+-]?\d{1,15}", text):
            return int(text)
        problems[name] = ["Saisissez un nombre entier, en chiffres."]
        return MISSING
    if kind == "number":
        try:
            return float(text.replace(",", ".").replace("\u202f", "").replace(" ", ""))
        except ValueError:
            problems[name] = ["Saisissez un nombre, en chiffres."]
            return MISSING
    if kind == "date":
        return _iso_date(text)
    return text


def _typed_list(chosen: list[str], item: dict) -> list:
    if item.get("type") == "integer":
        return [int(v) if re.fullmatch(r"[+-]?\d{1,15}", v) else v for v in chosen]
    return chosen


def _iso_date(text: str) -> str:
    """2026-01-31 stays; 31/01/2026 (typed where the browser has no date picker) becomes it."""
    found = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if found:
        day, month, year = (int(g) for g in found.groups())
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            return text
    return text


# ---------------------------------------------------------------- validation in French

def validate(root: dict, data: dict) -> dict[str, list[str]]:
    """Every error of ``data`` against ``root``, by field name ("" for the form as a whole)."""
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    found: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            names = [".".join([*path, key]) for key in error.validator_value if key not in error.instance]
        else:
            names = [".".join(path)]
        for name in names:
            message = french_message(error)
            if message not in found.setdefault(name, []):
                found[name].append(message)
    return found


def merge_errors(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    """Errors by field; a field that could not be read keeps only that error."""
    merged: dict[str, list[str]] = {}
    for source in sources:
        for name, messages in source.items():
            merged[name] = list(messages)
    return merged


_TYPES = {"integer": "Saisissez un nombre entier.", "number": "Saisissez un nombre.", "string": "Saisissez un texte.",
          "boolean": "Répondez par oui ou par non.", "array": "Choisissez une ou plusieurs valeurs.",
          "object": "Remplissez ce groupe de champs."}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def french_message(error) -> str:
    kind, value = error.validator, error.validator_value
    if kind == "required":
        return "Ce champ est obligatoire."
    if kind == "type":
        return _TYPES.get(value if isinstance(value, str) else "", "Cette valeur n'a pas le type attendu.")
    if kind == "format":
        return {"date": "Saisissez une date valide, par exemple 31/01/2026.",
                "email": "Saisissez une adresse électronique valide, par exemple prenom.nom@exemple.fr."}.get(
            value, "Le format de cette valeur n'est pas valide.")
    if kind == "minLength":
        return "Ce champ ne peut pas être vide." if value == 1 else f"Saisissez au moins {_plural(value, 'caractère')}."
    if kind == "maxLength":
        length = len(error.instance) if isinstance(error.instance, str) else 0
        return f"Saisissez au plus {_plural(value, 'caractère')} (vous en avez saisi {length})."
    if kind == "minimum":
        return f"Saisissez un nombre supérieur ou égal à {value}."
    if kind == "maximum":
        return f"Saisissez un nombre inférieur ou égal à {value}."
    if kind == "exclusiveMinimum":
        return f"Saisissez un nombre strictement supérieur à {value}."
    if kind == "exclusiveMaximum":
        return f"Saisissez un nombre strictement inférieur à {value}."
    if kind in ("oneOf", "anyOf", "enum", "const"):
        return "Choisissez une des valeurs proposées."
    if kind == "minItems":
        return "Renseignez au moins un élément." if value == 1 else f"Renseignez au moins {value} éléments."
    if kind == "maxItems":
        return f"Renseignez au plus {_plural(value, 'élément')}."
    if kind == "uniqueItems":
        return "Chaque valeur ne peut être choisie qu'une fois."
    if kind in ("additionalProperties", "unevaluatedProperties"):
        return "Ce formulaire contient un champ qu'il ne prévoit pas."
    if kind == "pattern":
        return "Le format de cette valeur n'est pas valide."
    return "Cette valeur n'est pas valide."


# ---------------------------------------------------------------- reading data back

def describe(root: dict, data: dict) -> list[dict]:
    """Data as the form's labels and titles say it: [{label, text, children}], in the form's order."""
    return _describe_group(root, root, data if isinstance(data, dict) else {})


def _describe_group(node: dict, root: dict, data: dict) -> list[dict]:
    out = []
    for key, child in _properties(node):
        if key not in data:
            continue
        child = resolve(child, root)
        out.append(_describe(child, root, data[key], str(child.get("title") or key)))
    return out


def _as_table(children: list[dict]) -> dict | None:
    """Groups of plain values side by side (the seven barriers: identified? situation) read best as a table."""
    if len(children) < 2 or not all(c["children"] and not any(g["children"] for g in c["children"]) for c in children):
        return None
    columns: list[str] = []
    for child in children:
        columns += [g["label"] for g in child["children"] if g["label"] not in columns]
    rows = [(child["label"], [next((g["text"] for g in child["children"] if g["label"] == column), "")
                              for column in columns]) for child in children]
    return {"columns": columns, "rows": rows}


def _describe(node: dict, root: dict, value: Any, label: str) -> dict:
    kind = kind_of(node, root)
    if kind == "group" and isinstance(value, dict):
        children = _describe_group(node, root, value)
        return {"label": label, "text": "", "children": children, "table": _as_table(children)}
    if kind == "list" and isinstance(value, list):
        item = resolve(node.get("items") or {}, root)
        item_label = str(item.get("title") or label)
        rows = [_describe(item, root, row, f"{item_label} {i + 1}") for i, row in enumerate(value)]
        return {"label": label, "text": "", "children": rows}
    if kind == "multichoice" and isinstance(value, list):
        titles = dict(_choices(resolve(node.get("items") or {}, root)) or [])
        return {"label": label, "text": ", ".join(titles.get(str(v), str(v)) for v in value) or "aucun",
                "children": []}
    if kind == "choice":
        return {"label": label, "text": dict(_choices(node) or []).get(str(value), str(value)), "children": []}
    if kind == "boolean" and isinstance(value, bool):
        return {"label": label, "text": "Oui" if value else "Non", "children": []}
    if kind == "date" and isinstance(value, str):
        try:
            parsed = date.fromisoformat(value)
            return {"label": label, "text": parsed.strftime("%d/%m/%Y"), "children": []}
        except ValueError:
            pass
    return {"label": label, "text": "" if value is None else str(value), "children": []}
