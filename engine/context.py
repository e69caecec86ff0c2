"""What every engine command needs besides a database session."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from engine.paths import FORMS_DIR
from engine.clock import Clock, SystemClock, install_spiff_clock
from engine.sandbox import create_script_engine
from engine.spec_cache import SpecCache
from engine.state import StateSerializer
from engine.workflow_cache import WorkflowCache


@dataclass
class EngineContext:
    clock: Clock = field(default_factory=SystemClock)
    forms_dir: Path = FORMS_DIR
    script_engine: PythonScriptEngine = field(default_factory=create_script_engine)
    serializer: StateSerializer = field(default_factory=StateSerializer)
    specs: SpecCache = field(default_factory=SpecCache)
    workflows: WorkflowCache = field(default_factory=WorkflowCache)

    def __post_init__(self) -> None:
        install_spiff_clock()
