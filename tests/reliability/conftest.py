"""The reliability suite's ledger: every test records what it tried and how it ended.

A test asks for the ``ledger`` fixture and calls ``ledger.record(...)`` once per
thing it threw at the app (a bad image, a hostile model file, an injected fault)
*after* asserting the outcome, so a row is written only for what really held.
``python -m benchmarks.reliability`` runs this folder with
``CONVNET_STUDIO_LEDGER`` pointing at a JSON-lines file and turns it into the
table in RELIABILITY.md; under plain ``make test`` the rows go nowhere and the
assertions are all that counts.

Row kinds (``kind``) and their outcomes:

- ``bad_input``   one odd or bad file through a path (``via``: classify, drop,
                  training); outcome ``survived`` (correct result or a clear
                  message naming the file, the good files unaffected).
- ``hostile_model`` one hostile weights/bundle file; outcome ``refused``;
                  ``executed`` is True if its payload ran (must never be).
- ``fault``       one injected fault; outcome ``survived``; ``lost`` is how much
                  saved work was lost or damaged (checkpoints, models, files: 0
                  expected); ``value`` optionally counts finished epochs that
                  could not be saved because the fault hit their save.
- ``stall_ms``    the longest GUI stall measured during the stress test (``value``).
- ``cancel_ms``   one cancel latency (``value``); the table reports the p95.
- ``capped``      one hostile file through one entry point in a child process
                  under a memory cap (2 GiB above the warmed-up process) and a
                  time cap (test_capped_entry_points); ``via`` is "SET: ENTRY"
                  (e.g. "bundle: list_bundles", "gui: drop"), outcome ``held``,
                  ``value`` the peak memory above the process's baseline in MB,
                  ``seconds`` how long it took.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

LEDGER_ENV = "CONVNET_STUDIO_LEDGER"
_lock = threading.Lock()


class Ledger:
    def __init__(self, path: Path | None, test: str) -> None:
        self.path = path
        self.test = test

    def record(self, kind: str, name: str, outcome: str = "", *, via: str = "", executed: bool = False,
               lost: int = 0, value: float | None = None, seconds: float | None = None) -> None:
        row = {"kind": kind, "name": name, "outcome": outcome, "via": via, "executed": executed, "lost": lost,
               "value": value, "seconds": seconds, "test": self.test}
        if self.path is None:
            return
        with _lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


@pytest.fixture
def ledger(request) -> Ledger:
    path = os.environ.get(LEDGER_ENV)
    return Ledger(Path(path) if path else None, request.node.nodeid)
