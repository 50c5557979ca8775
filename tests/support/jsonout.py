"""The one strict JSON reader the tests use on ``--json`` output."""

from __future__ import annotations

import json


def strict_json(text: str):
    """json.loads that refuses NaN/Infinity, which Python's own reader would accept."""

    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)
