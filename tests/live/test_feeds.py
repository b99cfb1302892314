"""Serve's side of live video: one subscription per watched camera stream, each viewer with its own
bounded queue, and the whole path (worker relay → bus → serve → viewer) over the in-process bus and NATS."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from safecity.core.bus import Bus
from safecity.core.bus.memory import MemoryBus
from safecity.live import protocol
from safecity.live.feed import Feed, LiveFeeds, Viewer
from safecity.live.relay import LiveChannel, LiveRelay
from tests.live.live_support import decode, feed_h264, kinds


def messages_of(frames: int, *, want: bool = True) -> list[bytes]:
    sent: list[bytes] = []
    channel = LiveChannel("cam-1", "main", lambda m: sent.append(m) or True)
    if want:
        channel.want(start=True)
    feed_h264(channel.feed, frames)
    return sent


def drain(viewer: Viewer) -> list[bytes]:
    out = []
    while (message := viewer.take()) is not None:
        out.append(message)
    return out


def test_a_stalled_viewer_drops_its_own_backlog_and_restarts_at_a_key_frame_while_others_get_all() -> None:
    feed = Feed("cam-1", "main")
    stalled, reading = Viewer("cam-1", "main", max_messages=10), Viewer("cam-1", "main")
    feed.join(stalled)
    feed.join(reading)
    received: list[bytes] = []
    for message in messages_of(45):  # key-frames at 0, 20 and 40
        feed.on_message(feed.subject, message)
        received += drain(reading)  # this one keeps up; the other never reads
    assert len(decode(received)) == 45
    assert stalled.dropped > 0 and len(stalled.queue) <= 10
    queued = list(stalled.queue)
    first_fragment = next(m for m in queued if m[0] == protocol.FRAGMENT)
    assert protocol.header(first_fragment).key  # it restarts where it can decode


def test_a_replay_for_another_serves_viewer_is_not_sent_twice() -> None:
    feed = Feed("cam-1", "main")
    viewer = Viewer("cam-1", "main")
    feed.join(viewer)
    sent: list[bytes] = []
    channel = LiveChannel("cam-1", "main", lambda m: sent.append(m) or True)
    channel.want(start=True)
    feed_h264(channel.feed, 25)
    channel.want(start=True)  # another serve's new viewer: the same init and frames, flagged replay
    for message in sent:
        feed.on_message(feed.subject, message)
    got = drain(viewer)
    assert kinds(got).count(protocol.INIT) == 1
    assert len(decode(got)) == 25


def test_a_viewer_joining_a_followed_feed_starts_from_its_mirror() -> None:
    feed = Feed("cam-1", "main")
    for message in messages_of(25):
        feed.on_message(feed.subject, message)
    late = Viewer("cam-1", "main")
    feed.join(late)
    got = drain(late)
    assert kinds(got)[0] == protocol.INIT and protocol.header(got[1]).key
    assert len(decode(got)) == 5  # the frames since the last key-frame, at once


async def relay_to_viewer(worker_bus: Bus, serve_bus: Bus) -> None:
    """A worker's relay and a serve's feeds on two buses (or one): a viewer gets playable video."""
    relay = LiveRelay(worker_bus, want_ttl_s=1.5)
    await relay.start()
    feeds = LiveFeeds(serve_bus, want_every_s=0.3, linger_s=0.5)
    try:
        relay.hold("cam-1")
        camera = threading.Thread(target=feed_h264, args=(relay.tap("cam-1"), 30))
        camera.start()  # the camera's own thread, as in the worker
        await asyncio.to_thread(camera.join)
        viewer = await feeds.watch("cam-1", "main")
        got: list[bytes] = []
        async with asyncio.timeout(10):
            while len(decode_safe(got)) < 10:
                await viewer.wake.wait()
                got += drain(viewer)
        assert len(decode(got)) == 10  # the frames since the last key-frame, sent as a replay
        camera = threading.Thread(target=feed_h264, args=(relay.tap("cam-1"), 20), kwargs={"start": 30})
        camera.start()
        await asyncio.to_thread(camera.join)
        async with asyncio.timeout(10):
            while len(decode_safe(got)) < 30:
                await viewer.wake.wait()
                got += drain(viewer)
        await feeds.leave(viewer)
        channel = relay.channels[("cam-1", "main")]
        async with asyncio.timeout(10):
            while channel.watched or feeds.feeds:  # the serve lets go, then the worker stops sending
                await asyncio.sleep(0.2)
    finally:
        await feeds.close()
        await relay.stop()


def decode_safe(messages: list[bytes]) -> list[object]:
    try:
        return list(decode(messages))
    except (AssertionError, Exception):
        return []


async def test_relay_and_feeds_in_one_process_over_the_in_process_bus() -> None:
    bus = MemoryBus()
    await bus.start()
    try:
        await relay_to_viewer(bus, bus)
    finally:
        await bus.close()


@pytest.mark.city
async def test_relay_and_feeds_in_two_processes_over_nats(nats_url: str) -> None:
    import nats

    from safecity.core.bus.nats import NatsBus

    # Live video never touches the stream; the buses make one on start, removed again below.
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    worker, serve = NatsBus(nats_url, stream=stream), NatsBus(nats_url, stream=stream)
    await worker.start()
    await serve.start()
    try:
        await relay_to_viewer(worker, serve)
    finally:
        await worker.close()
        await serve.close()
        connection = await nats.connect(nats_url)
        try:
            await connection.jetstream().delete_stream(stream)
        finally:
            await connection.close()


async def test_transient_messages_reach_exact_and_wildcard_listeners_until_they_close() -> None:
    bus = MemoryBus()
    await bus.start()
    got: list[tuple[str, str]] = []
    exact = await bus.listen_transient("video.cam-1.main", lambda s, d: got.append(("exact", s)))
    star = await bus.listen_transient("video.*.main", lambda s, d: got.append(("star", s)))
    rest = await bus.listen_transient("video.>", lambda s, d: got.append(("rest", s)))
    await bus.send_transient("video.cam-1.main", b"x")
    await bus.send_transient("video.cam-2.sub", b"x")
    await exact.close()
    await star.close()
    await bus.send_transient("video.cam-1.main", b"x")
    await rest.close()
    await bus.send_transient("video.cam-1.main", b"x")
    await bus.close()
    assert got == [
        ("exact", "video.cam-1.main"),
        ("star", "video.cam-1.main"),
        ("rest", "video.cam-1.main"),
        ("rest", "video.cam-2.sub"),
        ("rest", "video.cam-1.main"),
    ]


def test_a_camera_that_moved_to_another_worker_starts_its_viewers_afresh() -> None:
    feed = Feed("cam-1", "main")
    viewer = Viewer("cam-1", "main")
    feed.join(viewer)
    for message in messages_of(25):  # the first worker's channel
        feed.on_message(feed.subject, message)
    drain(viewer)
    for message in messages_of(25):  # the camera's new holder: same track, a timeline of its own
        feed.on_message(feed.subject, message)
    got = drain(viewer)
    assert kinds(got)[0] == protocol.INIT  # the page rebuilds its player rather than append out of time
    assert len(decode(got)) == 25
