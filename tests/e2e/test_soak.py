"""The seeded fault soak (scripts/soak.py) on a short budget, and its failure report.

README "Soak" says how to run a long one. The soak runs as an operator would run it, in a
subprocess with its own server; a fixed first seed keeps this test's schedules the same.
"""

import re
import shutil
import sqlite3
import subprocess
import sys

import pytest

from helpers.server import ROOT

pytestmark = pytest.mark.server

KNOWN = ()  # tolerated known bugs (scripts/soak.py --tolerate): none


def soak(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/soak.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_short_soak_runs_every_schedule_clean():
    result = soak("--seconds", "22", "--from-seed", "1", *KNOWN)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    summary = re.search(r"^(\d+) schedules ran clean in ([\d.]+) s$", result.stdout, re.M)
    assert summary, output[-2000:]
    ran = int(summary.group(1))
    assert ran >= 1
    clean = re.findall(r"^schedule seed=(\d+): .*: clean$", result.stdout, re.M)
    assert [int(seed) for seed in clean] == list(range(1, 1 + ran))


def test_a_failing_schedule_prints_its_seed_and_how_to_replay_it(migrated_sqlite, tmp_path):
    """Books broken before the soak starts: its first check fails and says how to replay."""
    path = tmp_path / "broken.db"
    shutil.copy(migrated_sqlite, path)
    with sqlite3.connect(path) as db:  # a balance no entry accounts for
        db.execute(
            "INSERT INTO accounts (kind, owner_id, balance_paise) "
            "VALUES ('astrologer_earnings', NULL, 5)"
        )
    result = soak("--seed", "7", "--steps", "3", "--database-url", f"sqlite:///{path}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED schedule seed=7" in result.stdout
    assert "replay: python scripts/soak.py --seed 7" in result.stdout
    assert "[balance_matches_entries]" in result.stdout
    assert "ran clean" not in result.stdout
