"""The BPMN MIWG reference models: each either deploys or is refused with a clear problem, never a crash.

The corpus is judged on BPMN validity only (safe XML, XSD, SpiffWorkflow's semantics):
no lint rules, and every form key counts as known.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn_parsing import parse_pathway
from engine.errors import DeployError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn-miwg-reference"
FILES = sorted(CORPUS.glob("*.bpmn")) if CORPUS.is_dir() else []


class EveryForm:
    """A form_keys container that knows every key."""

    def __contains__(self, key: object) -> bool:
        return True


@pytest.mark.skipif(not FILES, reason=f"BPMN MIWG corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_deploys_or_is_refused_clearly(path: Path):
    try:
        parsed = parse_pathway(path.read_bytes(), form_keys=EveryForm(), rules=[])
    except DeployError as exc:
        assert exc.problems and all(p.message for p in exc.problems)
        print(f"{path.name}: refused: " + "; ".join(f"[{p.rule}] {p.message}" for p in exc.problems))
    else:
        print(f"{path.name}: deploys as {parsed.key!r} ({len(parsed.user_tasks)} user tasks)")
