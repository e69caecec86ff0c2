"""engine.gc_policy, in a process of its own (it changes the garbage collector for good)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import gc
from engine.gc_policy import YOUNG_GENERATION, tune_for_service
before = gc.get_threshold()
tune_for_service()
after = gc.get_threshold()
assert after == (YOUNG_GENERATION, before[1], before[2]), after
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()  # the libraries imported so far
cycle = []
cycle.append(cycle)
del cycle
assert gc.collect() >= 1  # garbage made after start-up is still collected
print("ok")
"""


def test_service_processes_freeze_start_up_objects_and_collect_less_often():
    out = subprocess.run([sys.executable, "-c", "import api.app\n" + CHECK], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_gunicorn_workers_take_the_policy_from_the_project_config():
    """gunicorn reads gunicorn.conf.py from the folder it starts in and calls post_worker_init in each worker."""
    hook = """
import gc
namespace = {}
exec(open("gunicorn.conf.py", encoding="utf-8").read(), namespace)
namespace["post_worker_init"](None)
from engine.gc_policy import YOUNG_GENERATION
assert gc.get_threshold()[0] == YOUNG_GENERATION and gc.get_freeze_count() > 0
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", hook], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
