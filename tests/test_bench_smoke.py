"""The engine benchmark runs end to end on small data, so CI notices when it breaks."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engine_benchmark_quick_run_on_sqlite(tmp_path):
    figures_file = tmp_path / "figures.json"
    command = [sys.executable, str(ROOT / "bench" / "engine.py"), "--quick", "--db", "sqlite", "--cases", "10",
               "--json", str(figures_file)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for operation in ("start_case", "complete_task", "fire_timer"):
        line = (rf"^sqlite\s+{operation}\s+engine p50 +[\d.]+ ms p95 +[\d.]+ ms"
                rf" \| floor p50 +[\d.]+ ms .*\| ratio [\d.]+x")
        assert re.search(line, result.stdout, re.MULTILINE), result.stdout
    assert "Saved state at mid-pathway" in result.stdout
    figures = json.loads(figures_file.read_text(encoding="utf-8"))
    operations = figures["latency"]["sqlite"]["operations"]
    assert operations["complete_task"]["engine"]["n"] == 10 * 10
    assert operations["start_case"]["floor"]["n"] == operations["fire_timer"]["full"]["n"] == 10
    sizes = figures["latency"]["sqlite"]["state_bytes_mid_pathway"]
    assert 0 < sizes["engine"] < sizes["full"]  # the engine stores no spec


def test_http_benchmark_one_client_on_sqlite(tmp_path):
    """gunicorn on a fresh SQLite file, one client: starts, completions, and the peer's figure beside them."""
    figures_file = tmp_path / "http.json"
    command = [sys.executable, str(ROOT / "bench" / "http_load.py"), "--db", "sqlite", "--workers", "1",
               "--clients", "1", "--duration", "5", "--cases-per-client", "10", "--max-requests", "200",
               "--json", str(figures_file)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert re.search(r"^one client: median completion [\d.]+ ms, spiff-arena's backend 46.9 ms", result.stdout,
                     re.MULTILINE), result.stdout
    figures = json.loads(figures_file.read_text(encoding="utf-8"))
    assert figures["db"] == "sqlite" and figures["errors"] == 0
    assert figures["phases"]["case_start"]["ops"] == 10 and figures["phases"]["task_complete"]["ops"] == 40
    assert not Path(figures["database"]).exists()  # the file and its folder are removed at the end


def test_web_pages_benchmark_on_sqlite(tmp_path):
    figures_file = tmp_path / "pages.json"
    command = [sys.executable, str(ROOT / "bench" / "web_pages.py"), "--cases", "3", "--requests", "3",
               "--json", str(figures_file)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    figures = json.loads(figures_file.read_text(encoding="utf-8"))
    assert set(figures["pages"]) == {"inbox", "structure_queue", "case_page", "task_page"}
    for name, figure in figures["pages"].items():
        assert figure["p50_ms"] > 0 and figure["statements"] > 0, name
        assert re.search(rf"^{name}\s+p50 +[\d.]+ ms", result.stdout, re.MULTILINE), result.stdout
