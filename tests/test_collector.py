"""The cyclic collector held off while a batch is applied, and given back afterwards."""

from __future__ import annotations

import gc
import threading

import pytest

from connector import collector


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after(collector_on):
    with collector.paused():
        inside = gc.isenabled()
    assert (inside, gc.isenabled()) == (False, True)


def test_the_collector_is_back_on_after_a_batch_that_raised(collector_on):
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the page failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    was = gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_the_collector_resumes_only_when_the_last_of_overlapping_batches_ends(collector_on):
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first_batch() -> None:
        with collector.paused():
            first_in.set()
            release.wait(5)

    def second_batch() -> None:
        first_in.wait(5)
        with collector.paused():
            pass
        seen["after second"] = gc.isenabled()
        second_done.set()

    threads = [threading.Thread(target=first_batch), threading.Thread(target=second_batch)]
    for thread in threads:
        thread.start()
    second_done.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert (seen["after second"], gc.isenabled()) == (False, True)
