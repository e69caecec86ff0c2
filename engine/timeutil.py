"""ISO 8601 durations as BPMN timers use them (calendar-aware months and years)."""
from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.errors import InvalidInput


def add_iso_duration(start: datetime, duration: str) -> datetime:
    """``start`` + an ISO 8601 duration such as ``P15D``, ``P1M`` or ``PT2H``."""
    try:
        parsed = TimerEventDefinition.parse_iso_duration(duration)
        return start + TimerEventDefinition.get_timedelta_from_start(parsed, start)
    except Exception as exc:  # noqa: BLE001 - Spiff raises several types on bad input
        raise InvalidInput(f"{duration!r} is not an ISO 8601 duration (for example P15D or PT2H)") from exc
