"""Writing predictions to CSV or JSON, atomically (``core.io.write_user_file``)."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from core.io import write_user_file

FORMATS = {".csv": "CSV", ".json": "JSON"}
TOP_K = 5


def _csv_text(predictions: list) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["path", "model", "untrained", "ok", "error"]
    for k in range(1, TOP_K + 1):
        header += [f"label_{k}", f"prob_{k}"]
    writer.writerow(header)
    for p in predictions:
        row = [p.path, p.model, int(bool(p.untrained)), int(bool(p.ok)), p.error or ""]
        for k in range(TOP_K):
            top = p.topk[k] if k < len(p.topk) else None
            row += [top.label, f"{top.prob:.6f}"] if top else ["", ""]
        writer.writerow(row)
    return out.getvalue()


def _json_text(predictions: list) -> str:
    results = [p.to_json() for p in predictions]  # the one JSON shape of a prediction: classify --json's
    doc = {"exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "count": len(results), "results": results}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> None:
    """Readers see the old file or the whole new one, never a half-written one.

    ``overwrite``: the save dialog confirmed replacing an existing file; anything but a
    regular file or a new name (a link, a FIFO, a device, a folder) is refused regardless.
    """
    write_user_file(path, text, overwrite=overwrite)


def export_predictions(path: str | os.PathLike[str], predictions: Iterable, *, overwrite: bool = False) -> int:
    """Write ``predictions`` as CSV or JSON (chosen by the suffix); returns the row count."""
    rows = list(predictions)
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"export to .csv or .json, not '{suffix or Path(path).name}'")
    write_atomic(path, _csv_text(rows) if suffix == ".csv" else _json_text(rows), overwrite=overwrite)
    return len(rows)
