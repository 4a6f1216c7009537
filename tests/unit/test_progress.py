"""The progress reporter: one summary line off a terminal, a throttled single redrawn line on one."""

from __future__ import annotations

import io

import pytest

from streams.tools.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_only_the_summary_is_printed() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("record", stream=out, clock=clock) as progress:
        for n in range(1, 501):
            clock.now += 0.01
            progress.update(n)
        assert out.getvalue() == ""
        clock.now = 105.0  # exactly 5 s after entering, free of the float sum's rounding
    assert out.getvalue() == "record: 500 items in 5.0 s (100/s)\n"
    assert "\r" not in out.getvalue()


def test_summary_is_printed_even_when_the_work_fails() -> None:
    out, clock = io.StringIO(), Clock()
    with pytest.raises(KeyboardInterrupt), Progress("produce", total=10, stream=out, clock=clock) as progress:
        progress.update(3)
        clock.now += 2.0
        raise KeyboardInterrupt
    assert out.getvalue() == "produce: 3 items in 2.0 s (1.5/s)\n"


def test_on_a_terminal_one_line_is_redrawn_with_percentage_and_rate() -> None:
    out, clock = FakeTTY(), Clock()
    with Progress("produce", total=200, stream=out, clock=clock) as progress:
        clock.now += 1.0
        progress.update(50)
        clock.now += 1.0
        progress.update(100)
    frames = out.getvalue().split("\r")
    assert frames[0] == ""
    assert frames[1] == "produce: 50/200 (25.0%) items, 50.0/s"
    assert frames[2] == "produce: 100/200 (50.0%) items, 50.0/s"
    assert frames[3].rstrip(" \n") == "produce: 100 items in 2.0 s (50.0/s)"
    assert out.getvalue().count("\n") == 1 and out.getvalue().endswith("\n")


def test_redraws_are_throttled_to_about_ten_a_second() -> None:
    out, clock = FakeTTY(), Clock()
    with Progress("replay", stream=out, clock=clock) as progress:
        for n in range(1, 1001):  # 1000 updates over 1 s of the fake clock
            clock.now += 0.001
            progress.update(n)
        redraws = out.getvalue().count("\r")
    assert 9 <= redraws <= 11
    assert "replay: 1 items" in out.getvalue()  # the first update is drawn at once


def test_without_a_total_there_is_no_percentage() -> None:
    out, clock = FakeTTY(), Clock()
    with Progress("record", stream=out, clock=clock) as progress:
        clock.now += 0.5
        progress.update(7)
    assert "\rrecord: 7 items, 14.0/s" in out.getvalue()
    assert "%" not in out.getvalue()


def test_a_shorter_line_covers_the_longer_one_before_it() -> None:
    out, clock = FakeTTY(), Clock()
    with Progress("p", stream=out, clock=clock) as progress:
        clock.now += 1.0
        progress.update(123456)
        clock.now += 1000.0
        progress.update(123457)
    long_frame, short_frame = out.getvalue().split("\r")[1:3]
    assert len(short_frame) >= len(long_frame)


def test_stderr_is_the_default_stream(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("x") as progress:
        progress.update(2)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("x: 2 items in ")
