"""versions.read_valid: the whole-response cache hit checked inside Redis (one Lua call), against the
two-step reading it replaces (GET the entry, MGET its tokens, compare)."""

import pytest

from gateway.cache import versions
from gateway.errors import StoreUnavailable
from gateway.stores.redis.cache import RedisCache

BODY = b'{"data":{"funnel":{"overallConversionRate":0.3}}}'


async def test_served_while_every_recorded_token_holds(redis_cache):
    await redis_cache.set_many([("ver:a", b"t1", 100), ("ver:b", b"t2", 100)])
    entry = versions.stamp_pairs({"ver:a": "t1", "ver:b": "t2"}, BODY)
    await redis_cache.set_many([("resp:1", entry, 100)])
    assert await versions.read_valid(redis_cache, "resp:1") == BODY


async def test_an_entry_without_tokens_is_served_as_is(redis_cache):
    await redis_cache.set_many([("resp:1", versions.stamp_pairs({}, BODY), 100)])
    assert await versions.read_valid(redis_cache, "resp:1") == BODY


async def test_a_replaced_token_or_an_evicted_one_is_a_miss(redis_cache):
    await redis_cache.set_many([("ver:a", b"t1", 100), ("ver:b", b"t2", 100)])
    entry = versions.stamp_pairs({"ver:a": "t1", "ver:b": "t2"}, BODY)
    await redis_cache.set_many([("resp:1", entry, 100)])
    await redis_cache.set_many([("ver:b", b"t3", 100)])  # capture replaced it
    assert await versions.read_valid(redis_cache, "resp:1") is None
    await redis_cache.set_many([("ver:b", b"t2", 100)])
    assert await versions.read_valid(redis_cache, "resp:1") == BODY
    await redis_cache.delete(["ver:a"])  # evicted by the memory cap
    assert await versions.read_valid(redis_cache, "resp:1") is None


@pytest.mark.parametrize(
    "blob",
    [
        BODY,  # written before entries were stamped: no mark
        b"\x01no newline at all",
        b"\x01{not json\n" + BODY,
        b'\x01["ver:a"]\n' + BODY,  # a list header (stamp, not stamp_pairs): pairs() sees 1 -> "ver:a"
    ],
)
async def test_what_is_not_a_stamped_response_is_a_miss(redis_cache, blob):
    await redis_cache.set_many([("ver:a", b"t1", 100), ("resp:1", blob, 100)])
    assert await versions.read_valid(redis_cache, "resp:1") is None


async def test_a_payload_with_newlines_and_binary_bytes_comes_back_whole(redis_cache):
    payload = b'{"a":"x\\ny"}\n\x00\xff tail'
    await redis_cache.set_many([("ver:a", b"t1", 100)])
    await redis_cache.set_many([("resp:1", versions.stamp_pairs({"ver:a": "t1"}, payload), 100)])
    assert await versions.read_valid(redis_cache, "resp:1") == payload


async def test_a_missing_entry_is_a_miss(redis_cache):
    assert await versions.read_valid(redis_cache, "resp:none") is None


async def test_an_unreachable_redis_is_store_unavailable():
    cache = RedisCache.connect("redis://127.0.0.1:1/0", timeout_s=0.3)
    try:
        with pytest.raises(StoreUnavailable):
            await versions.read_valid(cache, "resp:none")
    finally:
        await cache.close()


async def test_a_script_the_server_lost_is_loaded_again(redis_cache):
    """read_valid calls EVALSHA directly; after SCRIPT FLUSH (or a Redis restart) the NOSCRIPT answer
    makes it load the script and still answer, on a hit and on a miss."""
    await redis_cache.set_many([("ver:a", b"t1", 100)])
    await redis_cache.set_many([("resp:1", versions.stamp_pairs({"ver:a": "t1"}, BODY), 100)])
    assert await versions.read_valid(redis_cache, "resp:1") == BODY
    await redis_cache._client.script_flush()
    assert await versions.read_valid(redis_cache, "resp:1") == BODY
    await redis_cache._client.script_flush()
    assert await versions.read_valid(redis_cache, "resp:none") is None


async def test_a_dataset_scoped_cache_reads_the_entry_it_wrote(redis_cache):
    # The response cache writes through the scoped cache (``d{dataset}:query:response:…``) and reads with
    # read_valid's script: the script's key must be scoped the same way, or a served dataset never hits.
    from gateway.cache.scoped import DatasetScopedCache

    scoped = DatasetScopedCache(redis_cache, lambda: "3.abc")
    await redis_cache.set_many([("ver:a", b"t1", 100)])
    await scoped.set_many([("query:response:x", versions.stamp_pairs({"ver:a": "t1"}, BODY), 100)])
    assert await redis_cache.get_many(["query:response:x"]) == [None]  # stored under the dataset's key
    assert await versions.read_valid(scoped, "query:response:x") == BODY
    assert (
        await versions.read_valid(DatasetScopedCache(redis_cache, lambda: "4.def"), "query:response:x")
        is None
    )
