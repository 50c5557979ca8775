"""The benchmark suite's functions run on tiny inputs and produce well-formed tables (no timing checks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import common, core_paths, folder, gpu, memory, runtimes
from benchmarks.__main__ import main as suite_main
from tests.support.photos import write_mixed_photos, write_photos

pytestmark = pytest.mark.slow

SMALL = (((640, 480), 2), ((1280, 960), 1), ((480, 640), 1))


def _table_rows(markdown: str) -> list[list[str]]:
    """Every table row's cells; asserts each table's rows have its header's width."""
    tables: list[list[list[str]]] = []
    previous_was_row = False
    for line in markdown.splitlines():
        is_row = line.startswith("|") and line.endswith("|")
        if is_row:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not previous_was_row:
                tables.append([])
            tables[-1].append(cells)
        previous_was_row = is_row
    assert tables, f"no table in:\n{markdown}"
    for table in tables:
        assert set(table[1]) <= {"---"} and all(len(row) == len(table[0]) for row in table), table
    return [row for table in tables for row in table[2:]]


def _ratios(markdown: str) -> list[float]:
    return [float(x) for x in re.findall(r"\*\*(\d+\.\d+)x\*\*", markdown)]


@pytest.fixture
def bench_md(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Kept heading\n\n<!-- bench:x -->\nold\n<!-- /bench:x -->\n\ntail text\n")
    monkeypatch.setattr(common, "BENCHMARKS_MD", path)
    return path


def test_write_section_replaces_only_its_block(bench_md: Path) -> None:
    common.write_section("x", "| a |\n|---|\n| 1 |")
    common.write_section("new", "fresh")
    text = bench_md.read_text()
    assert "old" not in text and "| 1 |" in text and "## Kept heading" in text and "tail text" in text
    assert text.rstrip().endswith("<!-- /bench:new -->")


def test_drop_and_switch_tables(tmp_path: Path) -> None:
    common.write_random_weights("resnet50")
    photo = write_photos(tmp_path, 1, size=(1024, 768))[0]
    backend, drop = core_paths.drop_to_prediction(photo, reps=1)
    assert backend in ("torch", "onnxruntime")
    assert len(_table_rows(drop)) == 3 and len(_ratios(drop)) == 1 and _ratios(drop)[0] > 0
    switch = core_paths.model_switch(reps=1)
    rows = _table_rows(switch)
    assert len(rows) == 3 and all(float(row[1]) > 0 for row in rows)
    assert re.search(r"(meets|MISSES)", switch)


def test_folder_throughput_tuning_and_profile(tmp_path: Path) -> None:
    common.write_random_weights("resnet50")
    paths = write_mixed_photos(tmp_path / "photos", 4, sizes=SMALL, variants=1)
    table, figures = folder.throughput(paths, reps=1)
    assert figures["naive_s"] > 0 and figures["ours_s"] > 0 and len(_table_rows(table)) == 3
    assert "4/4" in table  # top-1 agreement on small photos (no draft below 2x the resize size)
    tuning = folder.tuning(paths[:2], reps=1)
    assert len(_table_rows(tuning)) == 9
    profile = folder.profile(paths)
    assert "forward" in profile and len(_table_rows(profile)) == 10
    assert folder.mix_text(paths)


def test_memory_probe_reports_a_peak() -> None:
    result = memory.measure(6, model="resnet18")
    assert result["photos"] == result["ok"] == 6
    assert result["hwm_kib"] >= result["base_kib"] > 0
    text = memory.report(result, "python -m benchmarks.memory --photos 6", "resnet18")
    assert len(_table_rows(text)) == 1 and "MiB" in text


def test_gpu_section_without_a_gpu_names_its_command() -> None:
    text = gpu.not_measured()
    rows = _table_rows(text)
    assert len(rows) == len(gpu.ROWS) and all("not yet measured" in row[3] for row in rows)
    assert gpu.COMMAND in text


@pytest.mark.skipif(not runtimes.available(), reason="neither onnxruntime nor openvino installed")
def test_runtimes_table() -> None:
    text = runtimes.run(1, compile_too=False)
    rows = _table_rows(text)
    assert rows[0][0].startswith("eager") and all(row[-1] == "yes" for row in rows)


def test_suite_entry_point_runs_and_writes_nothing_when_quick(bench_md: Path) -> None:
    before = bench_md.read_text()
    assert suite_main(["--quick", "--only", "gpu", "runtimes"]) == 0
    assert bench_md.read_text() == before
