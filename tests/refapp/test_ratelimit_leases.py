"""Leased rate-limit counting: never more than the limit per window, however the leases fall."""

import pytest

from refapp import ratelimit


class SharedCounter:
    """Stands for the shared counter (what INCRBY does in Redis), to drive several processes."""

    def __init__(self):
        self.values: dict[str, int] = {}
        self.calls = 0

    def take(self, key: str, n: int, ttl: int) -> int:
        self.calls += 1
        self.values[key] = self.values.get(key, 0) + n
        return self.values[key]


def test_one_process_admits_exactly_the_limit_with_one_counter_call_per_lease():
    shared = SharedCounter()
    admitted = sum(ratelimit.hit_leased("api", "key:1", limit=3000, take=shared.take) for _ in range(3100))
    assert admitted == 3000
    assert ratelimit.lease_size(3000) == 10
    assert shared.calls == 300 + 100  # 300 leases, then every refused request asks again


def test_several_processes_never_admit_more_than_the_limit(monkeypatch):
    shared = SharedCounter()
    processes = [{}, {}, {}]  # each process's own leftover leases
    admitted = 0
    for i in range(4000):
        monkeypatch.setattr(ratelimit, "_leases", processes[i % 3])
        admitted += ratelimit.hit_leased("api", "key:2", limit=3000, take=shared.take)
    # At most one lease per process is left unspent when the counter reaches the limit.
    assert 3000 - 3 * ratelimit.lease_size(3000) <= admitted <= 3000


def test_a_partial_lease_near_the_limit():
    shared = SharedCounter()
    key, _, _ = ratelimit.counter("api", "key:3", limit=3000)
    shared.values[key] = 2995  # other processes took almost everything
    admitted = sum(ratelimit.hit_leased("api", "key:3", limit=3000, take=shared.take) for _ in range(20))
    assert admitted == 5


def test_real_redis_counts_leases(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    admitted = sum(ratelimit.hit_leased("api", "key:redis-test", limit=600) for _ in range(650))
    assert admitted == 600
    key, _, _ = ratelimit.counter("api", "key:redis-test", limit=600)
    assert int(ratelimit._redis().get(key)) >= 600


def test_small_limits_count_every_request(settings):
    shared = SharedCounter()
    assert ratelimit.lease_size(5) == 1
    assert [ratelimit.hit_leased("api", "key:4", limit=5, take=shared.take) for _ in range(6)] == [
        True
    ] * 5 + [False]
