"""User-task forms: one JSON Schema (2020-12) per form key, in ``forms/<key>.json``."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.errors import InvalidInput, Problem

MAX_FORM_BYTES = 256 * 1024


def load_forms_dir(directory: Path) -> dict[str, dict]:
    """Read every ``<key>.json`` of a folder; a broken file is an error, not a skip."""
    forms: dict[str, dict] = {}
    for path in sorted(directory.glob("*.json")):
        forms[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return forms


def check_form_schemas(forms: Mapping[str, Any]) -> list[Problem]:
    """Problems with uploaded form schemas (not JSON objects, invalid JSON Schema)."""
    problems = []
    for key, schema in forms.items():
        if not isinstance(schema, dict):
            problems.append(Problem("form-schema", f"form {key!r} is not a JSON object", code="form-not-object",
                                    params={"form": key}))
            continue
        if len(json.dumps(schema)) > MAX_FORM_BYTES:
            problems.append(Problem("form-schema", f"form {key!r} is larger than {MAX_FORM_BYTES} bytes",
                                    code="form-too-large", params={"form": key, "limit": MAX_FORM_BYTES}))
            continue
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            problems.append(Problem("form-schema", f"form {key!r} is not a valid JSON Schema: {exc.message}",
                                    code="form-invalid-schema", params={"form": key, "error": exc.message}))
    return problems


def validate_form_data(schema: dict | None, data: Any) -> None:
    """Raise :class:`InvalidInput` listing every field error (path and message)."""
    if not isinstance(data, dict):
        raise InvalidInput("form data must be a JSON object", [{"field": "", "message": "objet attendu"}])
    if schema is None:
        return
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidInput(
            "the form has errors",
            [{"field": "/".join(str(p) for p in error.absolute_path), "message": error.message} for error in errors],
        )
