"""Where the project's data folders are."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FORMS_DIR = PROJECT_ROOT / "forms"
BPMN_DIR = PROJECT_ROOT / "bpmn"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
