"""The one piece of telemetry on the app's thread: remember the OpenTelemetry context a call was
made in, so its span (made later, on the recorder's thread) gets the app's current span as parent.
"""

from __future__ import annotations

import sys
from typing import Any


def capture_parent() -> Any:
    """The caller's OpenTelemetry context, or None when the app never imported OpenTelemetry
    (then there is no current span to be a child of). A dict lookup and a ContextVar read."""
    context = sys.modules.get("opentelemetry.context")
    return None if context is None else context.get_current()
