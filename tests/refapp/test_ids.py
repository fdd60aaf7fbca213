import re
from collections import Counter

from refapp.ids import new_public_id


def test_public_ids_have_the_prefix_and_sixteen_base36_characters():
    ids = {new_public_id("evt") for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(re.fullmatch(r"evt_[0-9a-z]{16}", public_id) for public_id in ids)
    # Every character of the alphabet turns up at every position (no digit is stuck at zero).
    for position in (4, 19):
        assert len(Counter(public_id[position] for public_id in ids)) == 36
    assert re.fullmatch(r"com_[0-9a-z]{8}", new_public_id("com", length=8))
