"""paddock.routing on its own: the choice among providers and the health state machine.

The clock is a plain number the tests move, so every cooldown is exact.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot import Settings, SettingsError
from hh_api import HappyHorse, Mode, PriceTable, ProviderConfig
from paddock.orders import OrderRefused, Picture
from paddock.refused_keys import RefusedKeys
from paddock.routing import Health, ProviderState, Route, Router
from paddock.store import Store

NAMES = ("joypix", "wavespeed", "pixeldojo", "hiapi")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(prices: PriceTable | None = None) -> HappyHorse:
    configs = {name: ProviderConfig(name, api_key="k") for name in NAMES}
    return HappyHorse(configs, prices=prices or PriceTable())


def picture(width: int = 800, height: int = 800) -> Picture:
    return Picture(option="image1", filename="a.png", url="https://cdn.example/a.png",
                   content_type="image/png", size=100_000, width=width, height=height)


# -- choice ---------------------------------------------------------------------------


def test_at_1080p_wavespeed_is_cheapest_and_the_others_follow_in_price_order() -> None:
    router = Router(client(), Health(clock=Clock()), NAMES)
    plan = router.plan(Mode.TEXT, "a horse", resolution="1080p", duration=5)
    assert [(r.provider, r.credits) for r in plan] == [
        ("wavespeed", 95), ("joypix", 120), ("hiapi", 120)]  # PixelDojo has no text mode
    assert all(r.request["resolution"] == "1080p" for r in plan)


@pytest.mark.parametrize(
    ("mode", "pictures", "options", "expected"),
    [
        (Mode.TEXT, [], {"seed": 5}, ["joypix", "wavespeed"]),  # HiAPI takes no seed
        (Mode.TEXT, [], {"aspect_ratio": "21:9"}, ["hiapi"]),
        (Mode.REFERENCE, [picture()], {"negative_prompt": "blur"}, ["pixeldojo"]),
        (Mode.IMAGE, [picture()], {}, ["joypix", "wavespeed"]),
        (Mode.REFERENCE, [picture(390, 390)], {}, ["joypix", "wavespeed", "pixeldojo"]),
    ],
    ids=["seed", "hiapi-ratio", "negative-prompt", "image-mode", "hiapi-min-side-400"],
)
def test_only_providers_that_offer_every_option_given_are_candidates(
    mode, pictures, options, expected
) -> None:
    router = Router(client(), Health(clock=Clock()), NAMES)
    plan = router.plan(mode, "[Image 1] walks" if pictures else "a walk", pictures, **options)
    assert sorted(r.provider for r in plan) == sorted(expected)


def test_no_provider_that_can_make_it_is_a_clear_refusal() -> None:
    router = Router(client(), Health(clock=Clock()), NAMES)
    with pytest.raises(OrderRefused, match="No provider this bot uses can make this video"):
        router.plan(Mode.TEXT, "a walk", seed=5, aspect_ratio="21:9")


def test_ties_go_to_the_shorter_expected_render_then_the_better_success_rate() -> None:
    hh = client()
    health = Health(clock=Clock())
    router = Router(hh, health, NAMES)
    plan = router.plan(Mode.TEXT, "a horse", resolution="720p", duration=5)
    assert {r.credits for r in plan} == {70}
    assert [r.provider for r in plan] == ["joypix", "wavespeed", "hiapi"]  # nothing known yet

    health.render_failed("joypix")
    assert [r.provider for r in router.rank(plan)] == ["wavespeed", "hiapi", "joypix"]

    for _ in range(5):  # HiAPI is seen finishing such renders in about 40 s
        hh.render_times.record(("hiapi", "text", "720p", 5), 38.0, 42.0)
    assert router.rank(plan)[0].provider == "hiapi"


def route(provider: str, credits: int) -> Route:
    return Route(provider, credits, {"prompt": "x", "mode": "text", "resolution": "720p",
                                     "duration": 5})


@settings(max_examples=200, deadline=None)
@given(
    credits=st.lists(st.integers(0, 500), min_size=4, max_size=4),
    cooling=st.sets(st.sampled_from(NAMES)),
    tried=st.sets(st.sampled_from(NAMES)),
)
def test_the_first_usable_route_is_the_cheapest_provider_neither_tried_nor_cooling(
    credits, cooling, tried
) -> None:
    health = Health(clock=Clock())
    for name in cooling:
        health.submit_failed(name)
    router = Router(client(), health, NAMES)
    routes = [route(name, price) for name, price in zip(NAMES, credits, strict=True)]
    chosen = router.first_usable(routes, tried=tried)
    left = [r for r in routes if r.provider not in cooling | tried]
    if not left:
        assert chosen is None
    else:
        assert chosen is not None and chosen.credits == min(r.credits for r in left)
        assert chosen.provider not in cooling | tried


def test_prices_come_from_the_price_table() -> None:
    prices = PriceTable({("hiapi", "1080p"): Decimal("10")})
    router = Router(client(prices), Health(clock=Clock()), NAMES)
    plan = router.plan(Mode.TEXT, "a horse", resolution="1080p", duration=5)
    assert (plan[0].provider, plan[0].credits) == ("hiapi", 50)


# -- health ---------------------------------------------------------------------------


def test_a_failure_cools_for_a_minute_then_one_job_probes() -> None:
    clock = Clock()
    health = Health(clock=clock)
    assert health.submit_failed("joypix") == 60
    assert health.state("joypix") is ProviderState.COOLING and not health.admit("joypix")
    clock.now += 59.9
    assert not health.usable("joypix")
    clock.now += 0.1
    assert health.state("joypix") is ProviderState.PROBING
    assert health.admit("joypix")  # the probe
    assert not health.admit("joypix")  # everyone else waits for its outcome
    health.submit_succeeded("joypix")
    assert health.state("joypix") is ProviderState.OK and health.admit("joypix")


def test_retry_after_lengthens_a_cooldown_and_repeats_double_it() -> None:
    clock = Clock()
    health = Health(clock=clock, cooldown=60, max_cooldown=900)
    assert health.submit_failed("hiapi", retry_after=300) == 300
    clock.now += 300
    assert health.admit("hiapi")
    assert health.submit_failed("hiapi") == 120  # the probe failed: the second in a row
    assert health.submit_failed("hiapi") == 120  # sent before: the same outage
    clock.now += 20
    assert health.submit_failed("hiapi", retry_after=200) == 200  # ... asking for longer
    for _ in range(5):
        clock.now += health.cooling_for("hiapi") or 0
        health.submit_failed("hiapi")
    assert health.cooling_for("hiapi") == 900  # capped
    assert health.cooldowns()["hiapi"] == 7


def test_a_refused_key_keeps_a_provider_out() -> None:
    clock = Clock()
    health = Health(clock=clock)
    health.key_refused("wavespeed", "wavespeed refused the API key (HTTP 401)")
    clock.now += 10_000
    assert health.state("wavespeed") is ProviderState.KEY_REFUSED
    assert not health.admit("wavespeed")
    assert health.report("wavespeed").refused == "wavespeed refused the API key (HTTP 401)"


class HealthMachine(RuleBasedStateMachine):
    """Any sequence of outcomes and waits keeps the promises of the module docstring."""

    @initialize()
    def start(self) -> None:
        self.clock = Clock()
        self.health = Health(clock=self.clock, cooldown=60, max_cooldown=900,
                             probe_timeout=300)
        self.until: float | None = None
        self.streak = 0
        self.probe_at: float | None = None
        self.refused = False

    @rule(seconds=st.floats(0, 1000))
    def wait(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(retry_after=st.none() | st.floats(0, 5000))
    def submit_failed(self, retry_after: float | None) -> None:
        cooling = self.until is not None and self.clock.now < self.until
        seconds = self.health.submit_failed("p", retry_after)
        if retry_after is not None:
            assert seconds >= min(retry_after, 900) - 1e-6  # (float: until - now)
        if cooling:  # sent before the cooldown began: the same outage, not a repeat
            assert self.until is not None
            assert seconds >= self.until - self.clock.now - 1e-6
            self.until = self.clock.now + seconds
            return
        self.streak += 1
        assert 60 <= seconds <= 900
        assert seconds >= min(60 * 2 ** (self.streak - 1), 900)  # doubles on each repeat
        self.until = self.clock.now + seconds
        self.probe_at = None

    @rule()
    def submit_succeeded(self) -> None:
        self.health.submit_succeeded("p")
        self.streak = 0
        self.until = None
        self.probe_at = None

    @precondition(lambda self: not self.refused)
    @rule()
    def admit(self) -> None:
        admitted = self.health.admit("p")
        if self.until is None:
            assert admitted
        elif self.clock.now < self.until:
            assert not admitted  # never an attempt at a cooling provider
        elif self.probe_at is not None and self.clock.now - self.probe_at < 300:
            assert not admitted  # one probe at a time
        else:
            assert admitted
            self.probe_at = self.clock.now

    @rule()
    def key_refused(self) -> None:
        self.health.key_refused("p", "refused")
        self.refused = True

    @invariant()
    def a_refused_key_is_never_usable(self) -> None:
        if self.refused:
            assert not self.health.usable("p")
            assert self.health.state("p") is ProviderState.KEY_REFUSED

    @invariant()
    def success_rate_is_a_fraction(self) -> None:
        rate = self.health.success_rate("p")
        assert rate is None or 0 <= rate <= 1


HealthMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                           deadline=None)
TestHealth = HealthMachine.TestCase


# -- refused keys, across restarts ----------------------------------------------------


async def test_a_refused_key_is_remembered_until_the_key_changes(tmp_path) -> None:
    store = await Store.open(tmp_path / "paddock.db")
    try:
        keys = RefusedKeys(store)
        old = ProviderConfig("hiapi", api_key="old-key-never-stored")
        await keys.remember("hiapi", old.api_key, "hiapi refused the API key (HTTP 401)")
        [kept] = await keys.still_refused({"hiapi": old})
        assert (kept.provider, kept.reason) == ("hiapi", "hiapi refused the API key (HTTP 401)")

        def stored(db) -> list[tuple]:
            return db.execute("SELECT * FROM refused_keys").fetchall()

        assert "old-key-never-stored" not in repr(await store.read(stored))
        new = ProviderConfig("hiapi", api_key="a-new-key")
        assert await keys.still_refused({"hiapi": new}) == []
        assert await store.read(stored) == []  # dropped: the old key is gone for good
        assert await keys.still_refused({"hiapi": old}) == []
    finally:
        await store.close()


# -- HH_PROVIDER=auto ------------------------------------------------------------------


def test_hh_provider_auto_needs_a_key_and_routes_among_the_keyed_providers() -> None:
    with pytest.raises(SettingsError, match="HH_PROVIDER is auto, but no provider has a key"):
        Settings.from_env({"DISCORD_TOKEN": "t", "HH_PROVIDER": "auto"})
    settings = Settings.from_env({"DISCORD_TOKEN": "t", "HH_PROVIDER": "AUTO",
                                  "HIAPI_API_KEY": "h", "JOYPIX_API_KEY": "j"})
    assert settings.default_provider == "auto"
    assert settings.routable_providers == ["joypix", "hiapi"]
    assert "demo" not in settings.providers
