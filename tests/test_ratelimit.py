"""The rate limiter on its own, across windows (``casereport.api.ratelimit``).

Found by mutation testing (docs/mutation.md): what happens when one window ends and the
next begins, and the message of ``WaitTooLong``. Virtual time only, as in test_client.py.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.test_client import VirtualTime, rl_headers

from casereport.api.ratelimit import MARGIN, RateLimiter, Ticket, WaitTooLong


def test_wait_too_long_says_when_the_budget_returns() -> None:
    error = WaitTooLong(31.005)
    assert str(error) == "rate-limit budget returns in 31.0 s"
    assert error.wait == 31.005


def _spend_a_window(limiter: RateLimiter, vt: VirtualTime) -> list[Ticket]:
    """Probe at 100.0 (limit 3 a second, window ending by 101.0), then spend the rest."""

    async def spend() -> list[Ticket]:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(3, 1, 2, "1"), 200, vt.now)
        tickets = [probe]
        for remaining in (1, 0):
            ticket = await limiter.acquire()
            limiter.done(ticket, rl_headers(3, 1, remaining, "1"), 200, vt.now)
            tickets.append(ticket)
        assert (limiter.budget, limiter.window_end) == (0, 101.0)
        return tickets

    return vt.run(spend())


def test_a_window_whose_requests_may_count_in_the_next_one_starts_with_a_probe() -> None:
    """The bound on a window's end is an upper bound: the three requests sent in it may
    have been counted in the next window. The next window's budget is then nothing, so
    one request goes alone and its answer says what is left."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)
    _spend_a_window(limiter, vt)
    sent: list[tuple[int, float]] = []

    async def scenario() -> None:
        first = await limiter.acquire()  # waits for the window to end
        sent.append((first.seq, vt.now))
        assert limiter.window_end == pytest.approx(102.0)  # the next window, not later
        others = [asyncio.ensure_future(limiter.acquire()) for _ in range(2)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert not any(task.done() for task in others)
        # The server did count the earlier three in this window: none left after the probe.
        vt.now += 0.01
        limiter.done(first, rl_headers(3, 1, 0, "1"), 200, vt.now)
        for task in others:
            ticket = await task
            sent.append((ticket.seq, vt.now))

    vt.run(scenario())
    refill = 101.0 + MARGIN
    assert sent[0] == (4, pytest.approx(refill))
    # Remaining 0 after the probe: the other two wait for the window after (ending by 102.0
    # at the latest, and by the probe's answer at 101.015 + 1).
    assert [seq for seq, _ in sent[1:]] == [5, 6]
    assert all(when == pytest.approx(102.0 + MARGIN) for _, when in sent[1:])


def test_a_request_at_the_very_bound_of_a_spent_window_goes_at_once() -> None:
    """The window's end is an upper bound: at that instant the window has surely ended,
    so the next window starts there (with its probe), not a margin later."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)
    _spend_a_window(limiter, vt)
    vt.now = 101.0

    async def scenario() -> Ticket:
        return await limiter.acquire()

    probe = vt.run(scenario())
    assert (probe.seq, vt.now) == (4, 101.0)
    assert limiter.window_end == pytest.approx(102.0)


def test_after_a_quiet_window_the_whole_limit_is_available_at_once() -> None:
    """A whole window with no request in it: nothing sent earlier can count in the one a
    request is sent in now, so the full limit goes without a probe."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)
    _spend_a_window(limiter, vt)
    vt.now = 102.5  # 101.0 to 102.0 went by with nothing sent

    async def scenario() -> list[float]:
        tickets = [await limiter.acquire() for _ in range(3)]
        assert [t.seq for t in tickets] == [4, 5, 6]
        assert limiter.window_end == pytest.approx(103.0)
        assert limiter.budget == 0
        with pytest.raises(WaitTooLong) as caught:
            await limiter.acquire(max_wait=0.1)
        return [caught.value.wait]

    waits = vt.run(scenario())
    assert waits == [pytest.approx(0.5 + MARGIN)]
    assert vt.now == 102.5  # none of the three waited


def test_a_429_for_a_request_of_an_earlier_window_does_not_hold_back_the_current_one() -> None:
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(10, 1, 9, "1"), 200, vt.now)  # window ends by 101.0
        slow = await limiter.acquire()  # seq 2, answered only in the next window
        vt.now = 101.2
        current = await limiter.acquire()  # the window rolled over: seq 3 starts the new one
        assert current.seq == 3
        # 10, less what may count in the new window: 1 in flight, 2 sent in the last one,
        # and this one.
        assert limiter.budget == 6
        vt.now = 101.3
        limiter.done(slow, rl_headers(10, 1, 0, "1"), 429, vt.now)  # refused back then
        assert limiter.budget == 6
        assert (await limiter.acquire()).seq == 4
        assert vt.now == 101.3  # sent at once

    vt.run(scenario())


def test_after_a_429_on_the_first_request_the_next_window_counts_it_as_spent() -> None:
    """The refused request may have counted in the window that follows (the bound on the
    window's end is an upper bound): the next window allows the limit less that one."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> tuple[list[int], float]:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(3, 1, 0, "1"), 429, vt.now)  # window ends by 101.0
        first = await limiter.acquire()  # waits for it
        second = await limiter.acquire()
        with pytest.raises(WaitTooLong) as caught:
            await limiter.acquire(max_wait=0.5)
        return [first.seq, second.seq], caught.value.wait

    (seqs, wait) = vt.run(scenario())
    assert seqs == [2, 3]
    assert vt.now == pytest.approx(101.0 + MARGIN)
    assert wait == pytest.approx(1.0)  # the third waits for the window after


def test_a_429_empties_the_budget_even_if_earlier_answers_say_otherwise() -> None:
    """A request refused with 429 shows the server has nothing left in this window; an
    answer to an earlier request, counted before it, must not give the budget back."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> float:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(10, 60, 5, "30"), 200, vt.now)
        earlier, refused = await limiter.acquire(), await limiter.acquire()
        limiter.done(refused, rl_headers(10, 60, 0, "30"), 429, vt.now)  # others spent it
        limiter.done(earlier, rl_headers(10, 60, 2, "30"), 200, vt.now)  # counted before
        assert limiter.budget == 0
        with pytest.raises(WaitTooLong) as caught:
            await limiter.acquire(max_wait=1.0)
        return caught.value.wait

    assert vt.run(scenario()) == pytest.approx(31.0 + MARGIN)


def test_a_429_for_the_first_request_of_a_window_empties_it() -> None:
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> float:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(10, 1, 5, "1"), 200, vt.now)  # window ends by 101.0
        vt.now = 101.5
        first = await limiter.acquire()  # a new window: 10 less the one sent in the last
        assert first.seq == 2 and limiter.budget == 8
        limiter.done(first, rl_headers(10, 1, 0, "1"), 429, vt.now)  # others spent it
        assert limiter.budget == 0
        with pytest.raises(WaitTooLong) as caught:
            await limiter.acquire(max_wait=0.1)
        return caught.value.wait

    assert vt.run(scenario()) == pytest.approx(1.0 + MARGIN)


def test_one_request_left_in_a_new_window_goes_without_holding_the_others() -> None:
    """A window that starts with one request left sends it as any other, not as a probe:
    the next request waits for the window to end, not for that one's answer."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)
    sent: dict[int, float] = {}

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(3, 1, 2, "1"), 200, vt.now)  # window ends by 101.0
        second = await limiter.acquire()
        limiter.done(second, rl_headers(3, 1, 1, "1"), 200, vt.now)
        vt.now = 101.5  # a new window: 3, less the 2 sent in the last one

        async def slow(ticket: Ticket) -> None:
            await vt.sleep(2.0)  # its answer comes late, in the window after
            limiter.done(ticket, rl_headers(3, 1, 2, "1"), 200, vt.now)

        alone = await limiter.acquire()
        sent[alone.seq] = vt.now
        answer = asyncio.ensure_future(slow(alone))
        after = await limiter.acquire()
        sent[after.seq] = vt.now
        await answer

    vt.run(scenario())
    assert sent == {3: 101.5, 4: pytest.approx(102.0 + MARGIN)}


def test_a_budget_that_returns_exactly_at_the_deadline_is_waited_for() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(1, 60, 0, "30"), 200, vt.now)  # window ends by 31
        ticket = await limiter.acquire(deadline=31.0 + MARGIN, max_wait=31.0 + MARGIN)
        assert ticket.seq == 2

    vt.run(scenario())
    assert vt.now == 31.0 + MARGIN


def test_a_remaining_equal_to_the_lowest_seen_shows_a_new_window_too() -> None:
    """A request counted in the same window would leave Remaining below the lowest value
    seen before it was sent; the same value shows it was counted in a new window."""
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> float:
        probe = await limiter.acquire()
        vt.now = 0.5
        limiter.done(probe, rl_headers(10, 1, 1, "1"), 200, vt.now)  # window ends by 1.5
        late = await limiter.acquire()  # sent with 1 seen as the lowest
        vt.now = 0.6
        limiter.done(late, rl_headers(10, 1, 1, "1"), 200, vt.now)  # still 1: a new window
        assert (limiter.budget, limiter.window_end) == (1, pytest.approx(1.6))
        last = await limiter.acquire()
        limiter.done(last, rl_headers(10, 1, 0, "1"), 200, vt.now)
        await limiter.acquire()  # waits for the new window's end, not the old one's
        return vt.now

    assert vt.run(scenario()) == pytest.approx(1.6 + MARGIN)


def test_a_new_window_seen_in_remaining_can_be_followed_by_another() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        vt.now = 0.5
        limiter.done(probe, rl_headers(10, 1, 1, "1"), 200, vt.now)  # window ends by 1.5
        late = await limiter.acquire()
        vt.now = 0.6
        limiter.done(late, rl_headers(10, 1, 1, "1"), 200, vt.now)  # a new window, by 1.6
        later = await limiter.acquire()  # sent with 1 seen as the lowest in that window
        vt.now = 0.7
        limiter.done(later, rl_headers(10, 1, 9, "1"), 200, vt.now)  # yet another, by 1.7
        assert (limiter.budget, limiter.window_end) == (9, pytest.approx(1.7))

    vt.run(scenario())


def test_requests_sent_before_a_new_window_was_seen_are_not_taken_for_another() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        vt.now = 0.5
        limiter.done(probe, rl_headers(10, 1, 2, "1"), 200, vt.now)  # window ends by 1.5
        first, second = await limiter.acquire(), await limiter.acquire()  # 2 seen as lowest
        vt.now = 0.6
        limiter.done(first, rl_headers(10, 1, 9, "1"), 200, vt.now)  # a new window
        # Counted after the first in that same window: Remaining fell, no new window.
        limiter.done(second, rl_headers(10, 1, 8, "1"), 200, vt.now)
        assert (limiter.budget, limiter.window_end) == (8, pytest.approx(1.6))

    vt.run(scenario())


@pytest.mark.parametrize(("status", "paced_alone"), [(429, True), (200, False)])
def test_an_answer_without_rate_limit_headers_stops_probing_unless_it_is_a_429(
    status: int, paced_alone: bool
) -> None:
    """An API that sends no rate-limit headers is not paced: after one such answer,
    requests go out together. A 429 without them says nothing of the kind (a proxy's,
    say): the next request still goes alone, as a probe."""
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> list[bool]:
        first = await limiter.acquire()
        limiter.done(first, {"content-type": "application/json"}, status, vt.now)
        waiting = [asyncio.ensure_future(limiter.acquire()) for _ in range(2)]
        for _ in range(5):
            await asyncio.sleep(0)
        granted = [task.done() for task in waiting]
        for task in waiting:
            if not task.done():
                task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        return granted

    granted = vt.run(scenario())
    assert granted == ([True, False] if paced_alone else [True, True])
