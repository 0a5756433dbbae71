"""Ferry's Celery app with every periodic job due each second, for ``celery beat`` in tests.

``celery -A tests.scale.fast_beat beat`` sends what ``ferry beat`` sends, only
every second instead of every minute, so a test sees many ticks of two beats
without waiting minutes. The jobs themselves are the real ones.
"""

from __future__ import annotations

from common.settings import get_settings
from worker.celery_app import app, beat_schedule

TICK_SECONDS = 1.0

_schedule = beat_schedule(get_settings())
# Health checks each second would only load the registries these tests measure.
_schedule.pop("health", None)
for _entry in _schedule.values():
    _entry["schedule"] = TICK_SECONDS
    _entry["options"] = {**_entry.get("options", {}), "expires": 30}
app.conf.beat_schedule = _schedule

__all__ = ["app"]
