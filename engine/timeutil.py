"""ISO 8601 durations as BPMN timers use them (calendar-aware months and years)."""
from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.errors import InvalidInput

# Spiff adds months one at a time; nothing in a pathway needs more than a century.
MAX_MONTHS = 1200


def add_iso_duration(start: datetime, duration: str) -> datetime:
    """``start`` + an ISO 8601 duration such as ``P15D``, ``P1M`` or ``PT2H``."""
    try:
        parsed = TimerEventDefinition.parse_iso_duration(duration)
        if parsed.get("years", 0) * 12 + parsed.get("months", 0) > MAX_MONTHS:
            raise ValueError("duration too long")
        return start + TimerEventDefinition.get_timedelta_from_start(parsed, start)
    except Exception as exc:  # noqa: BLE001 - Spiff raises several types on bad input
        raise InvalidInput(f"{duration!r} is not an ISO 8601 duration of at most 100 years (for example P15D or PT2H)") from exc
