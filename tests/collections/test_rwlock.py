"""RWLock: shared readers, exclusive writers, writer preference, non-blocking reads, wake-ups."""

from __future__ import annotations

import threading
from collections.abc import Callable

from app.collections.rwlock import RWLock
from tests.support.waiting import wait_until

WAIT = 5.0  # how long a test waits for something that must happen
BRIEF = 0.1  # how long a test waits to see that something does NOT happen


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def writer_waiting(lock: RWLock) -> bool:
    """True once a writer is queued, seen through the public API: a non-blocking read is then refused."""
    if lock.acquire_read(blocking=False):
        lock.release_read()
        return False
    return True


def hold_write(lock: RWLock, acquired: threading.Event, release: threading.Event) -> Callable[[], None]:
    def run() -> None:
        with lock.write():
            acquired.set()
            release.wait(WAIT)

    return run


def test_readers_share_the_lock() -> None:
    lock = RWLock()
    inside = threading.Barrier(3, timeout=WAIT)  # all three readers must be inside at once to pass it

    def reader() -> None:
        with lock.read():
            inside.wait()

    threads = [in_thread(reader) for _ in range(3)]
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert not inside.broken


def test_non_blocking_read_when_free_and_while_a_writer_holds() -> None:
    lock = RWLock()
    assert lock.acquire_read(blocking=False) is True
    assert lock.acquire_read(blocking=False) is True  # a second reader alongside
    lock.release_read()
    lock.release_read()

    acquired, release = threading.Event(), threading.Event()
    writer = in_thread(hold_write(lock, acquired, release))
    assert acquired.wait(WAIT)
    assert lock.acquire_read(blocking=False) is False
    release.set()
    writer.join(WAIT)
    assert lock.acquire_read(blocking=False) is True  # free again
    lock.release_read()


def test_a_writer_excludes_readers() -> None:
    lock = RWLock()
    acquired, release = threading.Event(), threading.Event()
    writer = in_thread(hold_write(lock, acquired, release))
    assert acquired.wait(WAIT)

    read = threading.Event()

    def reader() -> None:
        with lock.read():
            read.set()

    r = in_thread(reader)
    assert not read.wait(BRIEF), "a reader got in while a writer held the lock"
    release.set()
    assert read.wait(WAIT), "the reader was not let in after the writer left"
    writer.join(WAIT)
    r.join(WAIT)


def test_a_writer_excludes_other_writers() -> None:
    lock = RWLock()
    first, release_first = threading.Event(), threading.Event()
    second, release_second = threading.Event(), threading.Event()
    w1 = in_thread(hold_write(lock, first, release_first))
    assert first.wait(WAIT)
    w2 = in_thread(hold_write(lock, second, release_second))
    assert not second.wait(BRIEF), "two writers held the lock at once"
    release_first.set()
    assert second.wait(WAIT)
    release_second.set()
    w1.join(WAIT)
    w2.join(WAIT)


def test_a_writer_waits_for_readers_and_the_last_release_wakes_it() -> None:
    lock = RWLock()
    lock.acquire_read()
    lock.acquire_read()
    acquired, release = threading.Event(), threading.Event()
    writer = in_thread(hold_write(lock, acquired, release))
    assert wait_until(lambda: writer_waiting(lock))
    assert not acquired.wait(BRIEF)
    lock.release_read()
    assert not acquired.wait(BRIEF), "the writer got in while a reader still held the lock"
    lock.release_read()
    assert acquired.wait(WAIT), "releasing the last reader did not wake the waiting writer"
    release.set()
    writer.join(WAIT)


def test_a_waiting_writer_holds_back_new_readers() -> None:
    lock = RWLock()
    order: list[str] = []
    lock.acquire_read()  # an old reader holds the lock
    wrote, release_writer = threading.Event(), threading.Event()

    def writer() -> None:
        with lock.write():
            order.append("writer")
            wrote.set()
            release_writer.wait(WAIT)

    w = in_thread(writer)
    assert wait_until(lambda: writer_waiting(lock))
    assert lock.acquire_read(blocking=False) is False  # refused while the writer only waits

    read = threading.Event()

    def late_reader() -> None:
        with lock.read():
            order.append("reader")
            read.set()

    r = in_thread(late_reader)
    assert not read.wait(BRIEF), "a new reader overtook the waiting writer"
    lock.release_read()  # the old reader leaves: the writer goes first
    assert wrote.wait(WAIT)
    assert not read.wait(BRIEF), "a reader got in while the writer held the lock"
    release_writer.set()
    assert read.wait(WAIT)
    w.join(WAIT)
    r.join(WAIT)
    assert order == ["writer", "reader"]


def test_a_released_writer_lets_every_waiting_reader_in() -> None:
    lock = RWLock()
    acquired, release = threading.Event(), threading.Event()
    writer = in_thread(hold_write(lock, acquired, release))
    assert acquired.wait(WAIT)
    inside = threading.Barrier(4, timeout=WAIT)  # three readers and this thread, all at once

    def reader() -> None:
        with lock.read():
            inside.wait()

    readers = [in_thread(reader) for _ in range(3)]
    release.set()
    inside.wait()
    for t in [writer, *readers]:
        t.join(WAIT)
    assert not any(t.is_alive() for t in [writer, *readers])


def test_no_reader_ever_overlaps_a_writer_under_load() -> None:
    lock = RWLock()
    state = {"readers": 0, "writers": 0}
    guard = threading.Lock()
    errors: list[str] = []

    def reader() -> None:
        for _ in range(500):
            with lock.read():
                with guard:
                    state["readers"] += 1
                    if state["writers"]:
                        errors.append("reader beside a writer")
                with guard:
                    state["readers"] -= 1

    def writer() -> None:
        for _ in range(300):
            with lock.write():
                with guard:
                    state["writers"] += 1
                    if state["writers"] > 1 or state["readers"]:
                        errors.append("writer beside another holder")
                with guard:
                    state["writers"] -= 1

    threads = [in_thread(reader) for _ in range(3)] + [in_thread(writer) for _ in range(2)]
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert errors == []
    assert lock.acquire_read(blocking=False) is True
    lock.release_read()
