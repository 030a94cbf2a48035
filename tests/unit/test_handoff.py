from peerweb.spike.handoff import Action, Handoff, LoadPolicy, Mode, Rate, Thresholds

CAP = 1_000_000.0


def drive(policy: LoadPolicy, rate: float, start: float, seconds: float, step: float = 0.1):
    """Feed ``rate`` bytes/s of egress for ``seconds``; return the modes seen."""
    modes = []
    t = start
    while t < start + seconds - 1e-9:
        t += step
        policy.sent(int(rate * step), t)
        modes.append(policy.update(t))
    return modes, t


def test_rate_converges_to_the_offered_load():
    rate = Rate(tau=1.0)
    for i in range(1, 101):
        rate.add(10_000, i * 0.1)
    assert 90_000 < rate.read(10.0) < 110_000
    assert rate.read(20.0) < 2_000  # decays once nothing is sent


def test_a_sustained_overload_hands_off_and_calm_takes_it_back():
    policy = LoadPolicy(Thresholds(capacity=CAP, enter_after=1.0, leave_after=3.0))
    modes, t = drive(policy, 2 * CAP, 0.0, 4.0)
    assert modes[0] is Mode.NORMAL and modes[-1] is Mode.HANDOFF
    modes, t = drive(policy, 0.1 * CAP, t, 2.0)  # calm, but not for long enough yet
    assert set(modes) == {Mode.HANDOFF}
    modes, t = drive(policy, 0.1 * CAP, t, 6.0)
    assert modes[-1] is Mode.NORMAL and policy.changes == 2


def test_a_short_spike_does_not_flip_and_the_middle_band_does_not_flap():
    policy = LoadPolicy(Thresholds(capacity=CAP, enter_after=1.0, leave_after=3.0))
    modes, t = drive(policy, 3 * CAP, 0.0, 0.3)
    modes, t = drive(policy, 0.0, t, 3.0)
    assert policy.changes == 0 and modes[-1] is Mode.NORMAL
    drive(policy, 2 * CAP, t, 4.0)
    assert policy.mode is Mode.HANDOFF
    # Between the leave and enter levels: stays handing off, however long.
    modes, _ = drive(policy, 0.6 * CAP, t + 4.0, 20.0)
    assert set(modes[-50:]) == {Mode.HANDOFF} and policy.changes == 1


def test_too_many_requests_in_flight_or_a_slow_upstream_is_overload_too():
    policy = LoadPolicy(Thresholds(capacity=CAP, max_in_flight=4, enter_after=0.0))
    for _ in range(5):
        policy.started()
    assert policy.update(1.0) is Mode.HANDOFF
    slow = LoadPolicy(Thresholds(capacity=CAP, slow_upstream=0.5, enter_after=0.0))
    for i in range(20):
        slow.started()
        slow.sent(100, float(i))
        slow.finished(3.0, False, float(i))
    assert slow.update(20.0) is Mode.HANDOFF
    assert slow.snapshot(20.0)["mode"] == "handing off"


def test_static_requests_wait_for_a_pending_hand_off_and_count_as_load():
    policy = LoadPolicy(Thresholds(capacity=CAP, max_in_flight=4, enter_after=1.0))
    handoff = Handoff(policy, lambda path: path.endswith(".png"), "s" * 52, [])
    for _ in range(5):
        policy.started()
    # Overloaded, but not for a second yet: a static request may wait (HOLD); a dynamic one,
    # or a caller that cannot wait, goes upstream.
    assert handoff.decide("GET", "/a.png", "", 0.0, can_hold=True).action is Action.HOLD
    assert handoff.decide("GET", "/a.png", "", 0.1).action is Action.PASS
    assert handoff.decide("GET", "/api", "", 0.2, can_hold=True).action is Action.PASS
    assert handoff.decide("POST", "/a.png", "", 0.3, can_hold=True).action is Action.PASS
    # Held requests are load: with nothing in flight upstream, the overload still holds.
    for _ in range(5):
        policy.finished(0.01, False, 0.4)
    policy.held = 5
    assert policy.overloaded(0.5) and not policy.calm(0.5)
    # Handing off, but no mirror known yet: still wait; once one is known, redirect.
    assert policy.update(1.5) is Mode.HANDOFF
    assert handoff.decide("GET", "/a.png", "", 1.6, can_hold=True).action is Action.HOLD
    handoff.mirrors.append("http://m:8080/s/" + "s" * 52)
    decision = handoff.decide("GET", "/a.png", "", 1.7, can_hold=True)
    assert decision.action is Action.REDIRECT and decision.location.endswith("/a.png")
    # The verifying worker's own requests are never held or redirected.
    assert handoff.decide("GET", "/a.png", "", 1.8, answer_here=True,
                          can_hold=True).action is Action.PASS


def test_a_crowd_still_being_handed_off_is_not_calm():
    """Handing off is what removes the load: without counting the requests handed off the
    origin looked calm 5 s into every hand-off, took the crowd back and lost it again."""
    policy = LoadPolicy(Thresholds(capacity=CAP, enter_after=0.5, leave_after=3.0))
    t = 0.0
    for _ in range(40):  # 100 KB responses at 20/s: 2x capacity, answered here
        t += 0.05
        policy.passed += 1
        policy.sent(100_000, t)
        policy.update(t)
    assert policy.mode is Mode.HANDOFF
    for _ in range(200):  # the same 20 requests/s, now all handed off: nothing sent
        t += 0.05
        policy.redirected(t)
        policy.update(t)
    assert policy.mode is Mode.HANDOFF and policy.changes == 1
    assert policy.taken_back(t) > policy.limits.leave_share * CAP
    for _ in range(200):  # the crowd is gone
        t += 0.05
        policy.update(t)
    assert policy.mode is Mode.NORMAL and policy.changes == 2
