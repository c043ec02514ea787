"""Progress: throttled, Fooocus's 15-100 % band, and the stop switch."""

from __future__ import annotations

import pytest

from worker.interrupts import InterruptSwitch, JobInterrupted
from worker.progress import ProgressThrottle, percent


def test_throttle_lets_first_and_last_steps_through_and_spaces_the_rest() -> None:
    now = [0.0]
    throttle = ProgressThrottle(1.0, clock=lambda: now[0])
    allowed = []
    for step in range(1, 11):
        now[0] += 0.5
        allowed.append(throttle.allow(step, 10))
    assert allowed == [True, False, True, False, True, False, True, False, True, True]


def test_percent_spans_images_and_steps() -> None:
    assert percent(0, 2, 0, 10) == 15
    assert percent(0, 2, 10, 10) == 57
    assert percent(1, 2, 10, 10) == 100


def test_a_stop_hits_only_a_running_job() -> None:
    switch = InterruptSwitch()
    assert not switch.trip("stopped")  # idle: nothing to stop, and nothing left armed
    switch.arm("a")
    switch.check()
    assert not switch.trip("cancelled", job_id="b")
    switch.check()
    assert switch.trip("stopped")
    with pytest.raises(JobInterrupted, match="stopped"):
        switch.check()
    switch.arm("c")
    switch.check()


def test_a_cancel_stops_its_job_now_or_as_soon_as_it_is_armed_and_no_other() -> None:
    switch = InterruptSwitch()
    switch.cancel("later", "cancelled")  # before the job is dequeued
    assert switch.cancelled("later") == "cancelled" and switch.cancelled("other") is None
    switch.arm("other")
    switch.cancel("later", "cancelled")
    switch.check()  # another job runs on
    switch.arm("later")
    with pytest.raises(JobInterrupted, match="cancelled"):
        switch.check()  # at its first step
    switch.arm("running")
    switch.check()
    switch.cancel("running", "cancelled")  # while it runs
    with pytest.raises(JobInterrupted, match="cancelled"):
        switch.check()
