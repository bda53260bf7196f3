"""``jobdock.realtime.LiveChannel``'s confirmation rule, without a server: only a successful
"Subscribed to PostgreSQL" makes a channel with database bindings live; an error is never
taken for a subscription."""

from __future__ import annotations

from types import SimpleNamespace

from realtime import RealtimeSubscribeStates

from jobdock.realtime import Listener, LiveChannel


def channel(postgres_changes: bool = True) -> tuple[LiveChannel, list[tuple[bool, str | None]]]:
    calls: list[tuple[bool, str | None]] = []

    async def connect() -> object:
        raise AssertionError("not connected in these tests")

    listener = Listener(lambda _: None, lambda live, why: calls.append((live, why)),
                        postgres_changes=postgres_changes)  # fmt: skip
    return LiveChannel(connect, "t", listener), calls  # type: ignore[arg-type]


def system(status: str, message: str = "") -> SimpleNamespace:
    return SimpleNamespace(extension="postgres_changes", status=status, message=message)


def test_the_join_reply_alone_does_not_make_database_bindings_live() -> None:
    live, calls = channel()
    live._on_state(RealtimeSubscribeStates.SUBSCRIBED, None)
    assert not live.live
    assert calls == []
    live._on_system(system("ok", "Subscribed to PostgreSQL"))
    assert live.live
    assert calls == [(True, None)]
    assert live.confirmations == 1


def test_a_system_error_is_not_a_subscription() -> None:
    live, calls = channel()
    live._on_state(RealtimeSubscribeStates.SUBSCRIBED, None)
    live._on_system(system("error", "Unable to subscribe to changes with given parameters"))
    assert not live.live
    assert calls == [
        (False, "Realtime refused the subscription: Unable to subscribe to changes with given"
                " parameters"),
    ]  # fmt: skip
    assert live.confirmations == 0


def test_a_channel_error_is_a_refusal_before_and_a_loss_after_confirmation() -> None:
    live, calls = channel()
    live._on_state(RealtimeSubscribeStates.CHANNEL_ERROR, None)
    assert calls[-1] == (False, "Realtime refused the subscription")
    live._on_system(system("ok"))
    live._on_state(RealtimeSubscribeStates.CHANNEL_ERROR, None)
    assert calls[-1] == (False, "Realtime reported channel_error")
    assert not live.live


def test_without_database_bindings_the_join_reply_confirms() -> None:
    live, calls = channel(postgres_changes=False)
    live._on_state(RealtimeSubscribeStates.SUBSCRIBED, None)
    assert live.live
    assert calls == [(True, None)]
