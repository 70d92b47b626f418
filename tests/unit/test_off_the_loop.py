"""Password hashes run off the event loop: while one is computed, the other greenlets (every
socket of the process) go on. Checked in a fresh interpreter patched by gevent, as the
server runs."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each hash blocks its OS thread until a greenlet releases it: on the loop's own thread that
# greenlet could never run, and the hash would give up after five seconds.
PROBE = """
from gevent import monkey

monkey.patch_all()
import json

import gevent

from consult import accounts

real_lock = monkey.get_original("_thread", "allocate_lock")  # blocks its OS thread


def waits_for_the_loop(*_args):
    return held.acquire(timeout=5)


def answer(call, *args):
    global held
    held = real_lock()
    held.acquire()
    gevent.spawn_later(0.01, held.release)
    return call(*args)


accounts.generate_password_hash = waits_for_the_loop
accounts.check_password_hash = waits_for_the_loop
stand_ins = [answer(accounts.hash_password, "pw"), answer(accounts._password_matches, "h", "pw")]

from werkzeug.security import check_password_hash, generate_password_hash

accounts.generate_password_hash, accounts.check_password_hash = (
    generate_password_hash, check_password_hash
)
real = accounts.hash_password("a long passphrase")
print(json.dumps({
    "stand_ins": stand_ins,
    "format": real.split("$")[0].split(":")[0],
    "right": accounts._password_matches(real, "a long passphrase"),
    "wrong": accounts._password_matches(real, "another passphrase"),
}))
"""


def test_password_hashes_leave_the_event_loop_free():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    ran = json.loads(out.stdout)
    assert ran["stand_ins"] == [True, True]  # a greenlet ran while each hash was under way
    # The real thing, through the same thread: werkzeug's production format, checked both ways.
    assert (ran["format"], ran["right"], ran["wrong"]) == ("scrypt", True, False)
