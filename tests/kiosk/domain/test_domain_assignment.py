"""Natural label order and the assignment rule: exact size first, then the next size up."""

import random

import pytest

from kiosk.domain.assignment import Candidate, choose_locker, natural_key
from kiosk.domain.sizes import Size


def test_natural_key_orders_numbers_by_value_not_by_text():
    labels = ["B-1", "A-10", "A-2", "A-1", "A-100", "B-02", "AA-1"]
    shuffled = random.Random(7).sample(labels, len(labels))
    assert sorted(shuffled, key=natural_key) == [
        "A-1",
        "A-2",
        "A-10",
        "A-100",
        "AA-1",
        "B-1",
        "B-02",
    ]


def test_natural_key_ignores_case():
    assert natural_key("a-2") == natural_key("A-2")
    assert natural_key("a-2") < natural_key("A-10") < natural_key("b-1")


def test_natural_key_is_plain_text_that_sorts_like_the_natural_order():
    # The ledger sorts on this key in SQL, so Python's str order must already be natural.
    keys = [natural_key(x) for x in ("A-9", "A-10", "A-11", "B-1")]
    assert all(isinstance(k, str) for k in keys)
    assert keys == sorted(keys)


def _c(label: str, size: str) -> Candidate:
    return Candidate(label, Size(size))


def test_exact_size_first_even_when_a_bigger_one_has_a_lower_label():
    free = [_c("A-1", "L"), _c("A-2", "M"), _c("Z-9", "S")]
    assert choose_locker(Size.S, free) == _c("Z-9", "S")


def test_within_a_size_natural_label_order_wins():
    free = [_c("A-10", "S"), _c("B-1", "S"), _c("A-2", "S")]
    assert choose_locker(Size.S, free).label == "A-2"


def test_no_exact_size_takes_the_next_size_up_not_the_largest():
    free = [_c("A-1", "L"), _c("C-3", "M"), _c("C-2", "M")]
    assert choose_locker(Size.S, free).label == "C-2"
    assert choose_locker(Size.M, free).label == "C-2"


def test_never_a_smaller_locker():
    assert choose_locker(Size.L, [_c("A-1", "S"), _c("A-2", "M")]) is None
    assert choose_locker(Size.M, [_c("A-1", "S")]) is None


@pytest.mark.parametrize("parcel", list(Size))
def test_nothing_free_gives_none(parcel):
    assert choose_locker(parcel, []) is None
