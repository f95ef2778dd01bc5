"""Keys never show: not in logs, errors, reprs or the command line's output."""

from __future__ import annotations

import logging

import pytest

from hh_api import (
    AuthenticationError,
    HappyHorse,
    PollPolicy,
    ProviderConfig,
    Secret,
    VideoRequest,
    load_providers,
)

KEY = "sk-live-7f3a9c1e5b2d4f60"


async def test_no_flow_reveals_the_key(start_emulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    emulator = await start_emulator("hiapi", api_key=KEY)
    emulator.fault(503, on="status")
    configs = load_providers({"HIAPI_API_KEY": KEY, "HIAPI_BASE_URL": emulator.base_url})
    texts = [repr(configs), str(configs["hiapi"])]
    async with HappyHorse(configs) as client:
        texts.append(repr(client))
        task = await client.submit("hiapi", VideoRequest("a horse"))
        state = await client.wait("hiapi", task.task_id,
                                  poll=PollPolicy(initial=0.001, maximum=0.001))
        texts.append(repr(state))
        emulator.api_key = "rotated"
        with pytest.raises(AuthenticationError) as refused:
            await client.status("hiapi", task.task_id)
        texts += [str(refused.value), repr(refused.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records  # the flow did log
    assert all(KEY not in text for text in texts)
    # ...while the key did reach the provider, where it belongs.
    assert emulator.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_secret_hides_itself() -> None:
    secret = Secret(KEY)
    assert KEY not in f"{secret} {secret!r} {[secret]} {ProviderConfig('joypix', api_key=KEY)}"
    assert secret.reveal() == KEY
