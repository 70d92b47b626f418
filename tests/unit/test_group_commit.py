"""The group commit's shared fsync: nobody returns before an fsync that began after their
commit, and commits made while one runs share the next."""

import os
import threading

from consult import metrics
from consult.group_commit import WalSync
from helpers.server import wait_until


class SlowFsync:
    """An fsync whose first call holds until released, recording the descriptors it got."""

    def __init__(self):
        self.calls: list[int] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, fd):
        self.calls.append(fd)
        if len(self.calls) == 1:
            self.first_started.set()
            assert self.release.wait(5)


def wal_of(tmp_path):
    (tmp_path / "consult.db-wal").write_bytes(b"")
    return str(tmp_path / "consult.db")


def counted():
    return (
        metrics.WAL_FSYNCS._value.get(),
        metrics.WAL_SYNCED_COMMITS._value.get(),
    )


def test_commits_made_during_an_fsync_wait_for_the_next_and_share_it(tmp_path):
    fsync = SlowFsync()
    sync = WalSync(wal_of(tmp_path), fsync=fsync)
    fsyncs_before, commits_before = counted()
    first = threading.Thread(target=sync.wait)
    first.start()
    assert fsync.first_started.wait(5)
    returned = []
    later = [threading.Thread(target=lambda: (sync.wait(), returned.append(1))) for _ in range(5)]
    for thread in later:
        thread.start()
    wait_until(lambda: sync._issued == 6, timeout=5, interval=0.001, message="five commits")

    # The fsync under way began before their commits: it does not count for them.
    assert returned == [] and len(fsync.calls) == 1
    fsync.release.set()
    for thread in [first, *later]:
        thread.join(5)
    assert returned == [1] * 5
    assert len(fsync.calls) == 2  # one for the first commit, one shared by the five
    fsyncs_after, commits_after = counted()
    assert (fsyncs_after - fsyncs_before, commits_after - commits_before) == (2, 6)


def test_a_lone_commit_gets_its_own_fsync_every_time(tmp_path):
    calls = []
    sync = WalSync(wal_of(tmp_path), fsync=calls.append)
    for _ in range(3):
        sync.wait()
    assert len(calls) == 3


def test_a_replaced_wal_is_opened_again(tmp_path):
    calls = []
    sync = WalSync(wal_of(tmp_path), fsync=lambda fd: calls.append(os.fstat(fd).st_ino))
    sync.wait()
    wal = tmp_path / "consult.db-wal"
    wal.rename(tmp_path / "old-wal")  # kept, so the new file cannot reuse its inode
    wal.write_bytes(b"new")
    sync.wait()
    assert calls[1] == wal.stat().st_ino != calls[0]


def test_no_wal_means_nothing_to_fsync(tmp_path):
    """The last connection to close checkpoints the WAL into the database and deletes it."""
    calls = []
    sync = WalSync(wal_of(tmp_path), fsync=calls.append)
    sync.wait()
    (tmp_path / "consult.db-wal").unlink()
    sync.wait()  # returns, with nothing to fsync
    (tmp_path / "consult.db-wal").write_bytes(b"again")
    sync.wait()
    assert len(calls) == 2
