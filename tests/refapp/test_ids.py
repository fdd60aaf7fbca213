import re
from collections import Counter

from refapp.ids import new_public_id, new_public_ids


def test_public_ids_have_the_prefix_and_sixteen_base36_characters():
    ids = {new_public_id("evt") for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(re.fullmatch(r"evt_[0-9a-z]{16}", public_id) for public_id in ids)
    # Every character of the alphabet turns up at every position (no digit is stuck at zero).
    for position in (4, 11, 19):
        counts = Counter(public_id[position] for public_id in ids)
        # 36 characters, each near 1/36 of the draws (555 expected; far outside chance otherwise).
        assert len(counts) == 36
        assert all(400 < n < 720 for n in counts.values()), counts
    assert re.fullmatch(r"com_[0-9a-z]{8}", new_public_id("com", length=8))


def test_a_public_id_draws_again_when_too_many_bytes_were_dropped(monkeypatch):
    import secrets

    draws = [bytes([255] * 20 + [0, 1, 2, 3]), bytes(range(36, 44)), bytes(range(10, 30))]
    monkeypatch.setattr(secrets, "token_bytes", lambda n: draws.pop(0)[:n])
    # 4 bytes kept from the first draw (255 is dropped), 8 from the second, 4 from the third.
    assert new_public_id("evt") == "evt_0123" + "01234567" + "abcd"


def test_public_ids_in_bulk_have_the_same_shape_and_every_character_everywhere():
    ids = new_public_ids("com", 20_000)
    assert len(ids) == len(set(ids)) == 20_000
    assert all(re.fullmatch(r"com_[0-9a-z]{16}", public_id) for public_id in ids)
    for position in (4, 11, 19):
        counts = Counter(public_id[position] for public_id in ids)
        # 36 characters, each near 1/36 of the draws (555 expected; far outside chance otherwise).
        assert len(counts) == 36
        assert all(400 < n < 720 for n in counts.values()), counts
    assert new_public_ids("aff", 0) == []
    assert [len(i) for i in new_public_ids("ref", 3, length=8)] == [12, 12, 12]
