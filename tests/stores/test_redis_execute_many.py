"""Cache.execute_many on one Redis and on the cluster: what each command form writes, byte for byte.

On one Redis, large values travel beside the script's JSON (a bytes last argument, a MSETEX's values):
the values read back and the message a subscriber receives must be exactly those given, whatever their
quotes, backslashes and non-ASCII characters."""

from __future__ import annotations

import time
from typing import Any

import orjson

# Quotes, a backslash, JSON-looking text, non-ASCII (2, 3 and 4 bytes in UTF-8), a line separator.
TRICKY = 'say "hi" \\ {"a": [1]} é € 😀 \u2028 end'


async def test_msetex_values_given_as_text_or_bytes_read_back_exactly(redis_cache):
    text_pairs = [("t:ascii", '{"user_id":1,"device":"mobile"}'), ("t:tricky", TRICKY), ("t:empty", "")]
    byte_pairs = [("b:tricky", TRICKY.encode()), ("b:empty", b""), ("b:json", b'{"k":"v\\"w"}')]
    mixed = [("m:text", "plain"), ("m:bytes", b"raw")]
    commands: list[tuple[Any, ...]] = [
        ("MSETEX", 100, *(part for pair in text_pairs for part in pair)),
        ("MSETEX", 200, *(part for pair in byte_pairs for part in pair)),
        ("MSETEX", 300, *(part for pair in mixed for part in pair)),
        ("MSETEX", 400, "ascii:only", "x" * 5000),
    ]
    began = int(time.time())
    await redis_cache.execute_many(commands)
    ended = int(time.time()) + 1

    names = [k for k, _ in text_pairs + byte_pairs + mixed] + ["ascii:only"]
    assert await redis_cache.get_many(names) == [
        b'{"user_id":1,"device":"mobile"}',
        TRICKY.encode(),
        b"",
        TRICKY.encode(),
        b"",
        b'{"k":"v\\"w"}',
        b"plain",
        b"raw",
        b"x" * 5000,
    ]
    # Each key expires its MSETEX's seconds after the write: EXPIRETIME is that absolute moment, so the
    # check holds however long the machine takes before asking (a TTL left would shrink meanwhile).
    keys = ["t:tricky", "b:empty", "m:bytes", "ascii:only"]
    expire_at = await redis_cache.pipeline([("EXPIRETIME", key) for key in keys])
    for key, seconds, at in zip(keys, (100, 200, 300, 400), expire_at, strict=True):
        assert began + seconds <= int(at) <= ended + seconds, (key, at)


async def test_a_published_message_and_other_commands_keep_their_bytes(redis_cache):
    message = orjson.dumps({"events": [{"element": '"quoted" é', "value": TRICKY}]})
    subscription = await redis_cache.open_subscription("chan")
    try:
        began = int(time.time())
        await redis_cache.execute_many(
            [
                ("SET", "blob", TRICKY.encode(), "EX", 50),
                ("HINCRBY", "realtime:{live}:minute:x", "events", 3),
                ("PFADD", "realtime:{live}:uniques:x", 1, 2, 3, 2),
                ("ZADD", "realtime:{live}:users", 1.5, 7, 2.25, 8),
                ("PUBLISH", "chan", message),
            ]
        )
        ended = int(time.time()) + 1
        received = None
        for _ in range(50):  # a PING's reply reads as b"": skip it
            received = await subscription.get(1.0)
            if received:
                break
    finally:
        await subscription.close()
    assert received == message
    assert await redis_cache.get_many(["blob"]) == [TRICKY.encode()]
    [blob_expires] = await redis_cache.pipeline([("EXPIRETIME", "blob")])
    assert began + 50 <= int(blob_expires) <= ended + 50  # EX 50 from the write, however late we ask
    replies = await redis_cache.pipeline(
        [
            ("HGET", "realtime:{live}:minute:x", "events"),
            ("PFCOUNT", "realtime:{live}:uniques:x"),
            ("ZRANGE", "realtime:{live}:users", 0, -1, "WITHSCORES"),
        ]
    )
    assert int(replies[0]) == 3 and replies[1] == 3
    assert [(bytes(m), float(s)) for m, s in replies[2]] == [(b"7", 1.5), (b"8", 2.25)]
