"""A serving process settles its heap once start-up is over (consult/process.py): checked
in a fresh interpreter, since freezing this test run's heap would outlive the test."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
from consult import create_app
from consult.process import settle_heap

create_app({"DATABASE_URL": "sqlite://"})
young_before = gc.get_threshold()[:2]
settle_heap()
print(gc.get_freeze_count(), len(gc.get_objects()), gc.get_threshold()[:2] == young_before,
      gc.get_threshold()[2])
"""


def test_start_ups_objects_are_frozen_and_full_collections_spaced_out():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    frozen, tracked, young_kept, full_after = out.stdout.split()
    # The app's modules, classes and metadata: no full collection walks them again.
    assert int(frozen) > 50_000 and int(tracked) < 1_000
    # Full collections ten times rarer than CPython's; the young generations as they were.
    assert (young_kept, int(full_after)) == ("True", 100)
