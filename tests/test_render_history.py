"""The render_times table: newest renders of each kind kept, loaded back in order."""

from __future__ import annotations

from hh_api import RenderTimes, RenderWindow
from paddock.render_history import KEEP, RenderHistory
from paddock.store import open_store

TEXT_720 = ("joypix", "text", "720p", 5)
TEXT_1080 = ("joypix", "text", "1080p", 5)


async def test_only_the_newest_renders_of_each_kind_are_kept(db_location):
    async with await open_store(db_location) as store:
        history = RenderHistory(store)
        for n in range(KEEP + 5):
            await history.add(TEXT_720, float(n), float(n) + 1)
        await history.add(TEXT_1080, 50.0, 52.0)
        times = RenderTimes(keep=KEEP + 10, least=1, low=0.0, high=1.0)
        assert await history.load_into(times) == KEEP + 1
    assert times.window(TEXT_720) == RenderWindow(5.0, KEEP + 5.0)  # the first 5 dropped
    assert times.window(TEXT_1080) == RenderWindow(50.0, 52.0)
