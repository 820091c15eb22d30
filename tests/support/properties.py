"""How many examples a property test tries: as many as it asks for in ``make test``, a tenth
(at least 25) in ``make check``, which sets ``PROPERTY_EXAMPLES=quick`` to stay a quick loop."""

from __future__ import annotations

import os

QUICK = os.environ.get("PROPERTY_EXAMPLES") == "quick"


def examples(wanted: int) -> int:
    return max(25, wanted // 10) if QUICK else wanted
