"""IntradayAccount / IntradayQuery validation and the stored form both backends share."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphfraud.errors import InputDataError
from graphfraud.scoring.intraday.base import (
    MAX_ENTRIES,
    MAX_NUMBER,
    MAX_PAYLOAD_BYTES,
    IntradayAccount,
    IntradayQuery,
    decode_account,
    encode_account,
    index_entries,
)

SECRET = "priya.secret@example.com"


def make(**fields: Any) -> IntradayAccount:
    base: dict[str, Any] = {"user_id": "u1", "created_at": 1.7e9}
    return IntradayAccount(**(base | fields))


def test_normalises_to_what_a_store_gives_back() -> None:
    acc = make(
        created_at=1_700_000_000,
        identifiers={"device": ["d1", "d2", "d1"], "ip": ()},
        blocks={"email_stem": ("a@x.com",)},
        numbers={"phone": [5, 5, 7]},
        payload={"reasons": ("A", "B"), "score": 0.5},
    )
    assert acc.created_at == 1_700_000_000.0
    assert isinstance(acc.created_at, float)
    assert acc.identifiers == {"device": ("d1", "d2")}  # deduplicated, empty kinds dropped
    assert acc.numbers == {"phone": (5, 7)}
    assert acc.payload == {"reasons": ["A", "B"], "score": 0.5}  # as JSON decodes it
    assert decode_account(encode_account(acc)) == acc


def test_numpy_numbers_are_taken_as_python_numbers() -> None:
    acc = make(created_at=np.float64(1.5e9), numbers={"phone": np.array([5, 7], dtype=np.int64)})
    assert acc.numbers == {"phone": (5, 7)}
    assert type(acc.numbers["phone"][0]) is int
    assert type(acc.created_at) is float
    query = IntradayQuery(windows={"phone": (np.int64(1), np.int64(9))}, signed_up=(np.int64(0), 1))
    assert query.windows == {"phone": (1, 9)}
    assert query.signed_up == (0.0, 1.0)


def test_the_payload_is_a_private_copy() -> None:
    inner = {"x": 1}
    acc = make(payload={"inner": inner})
    inner["x"] = 2
    assert acc.payload == {"inner": {"x": 1}}


def test_index_entries_name_each_value_block_and_number() -> None:
    acc = make(
        identifiers={"email": ("a:b@x.com",)},
        blocks={"email_stem": ("ab@x.com",)},
        numbers={"phone": (919876543210,)},
    )
    assert index_entries(acc) == [
        "v:email:a:b@x.com",
        "b:email_stem:ab@x.com",
        "n:phone:919876543210",
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user_id": ""}, "user_id must be a non-empty string"),
        ({"user_id": "u" * 257}, "user_id is longer than 256"),
        ({"user_id": 7}, "user_id must be a non-empty string"),
        ({"created_at": float("nan")}, "created_at must be finite"),
        ({"created_at": "2026-01-01"}, "created_at must be epoch seconds"),
        ({"created_at": True}, "created_at must be epoch seconds"),
        ({"identifiers": {"e:mail": (SECRET,)}}, "identifiers names are"),
        ({"identifiers": {"e mail": (SECRET,)}}, "identifiers names are"),
        ({"identifiers": {"": (SECRET,)}}, "identifiers names are"),
        ({"identifiers": {"email": SECRET}}, "must be a sequence, not a str"),
        ({"identifiers": {"device": 5}}, "must be a sequence, not a int"),
        ({"identifiers": {SECRET: ("d1",)}}, "identifiers names are"),
        ({"numbers": {"phone": 919876543210}}, "must be a sequence, not a int"),
        ({"numbers": {"phone": (np.bool_(True),)}}, "must be integers"),
        ({"identifiers": {"email": (SECRET, "")}}, "values must be a non-empty string"),
        ({"identifiers": {"email": (SECRET, 5)}}, "values must be a non-empty string"),
        ({"identifiers": {"email": ("x" * 513,)}}, "longer than 512"),
        ({"identifiers": {"email": ("\ud800" + SECRET,)}}, "lone surrogate"),
        ({"identifiers": [("email", SECRET)]}, "must be a mapping"),
        ({"blocks": {"stem": (SECRET,) * 1, "b:c": ("k",)}}, "blocks names are"),
        ({"numbers": {"phone": (True,)}}, "must be integers"),
        ({"numbers": {"phone": ("919876543210",)}}, "must be integers"),
        ({"numbers": {"phone": (MAX_NUMBER + 1,)}}, "within ±2**53"),
        ({"payload": {"s": float("nan")}}, "finite"),
        ({"payload": {"s": float("inf")}}, "finite"),
        ({"payload": {1: SECRET}}, "payload keys must be strings"),
        ({"payload": {"k": {SECRET}}}, "holds a set"),
        ({"payload": {"k": 2**64}}, "64 bits"),
        ({"payload": {"k": "\udfff"}}, "lone surrogate"),
        ({"payload": {"k": "x" * MAX_PAYLOAD_BYTES}}, f"over {MAX_PAYLOAD_BYTES} bytes"),
        ({"payload": [SECRET]}, "payload must be a mapping"),
        ({"identifiers": {"d": tuple(f"d{i}" for i in range(MAX_ENTRIES + 1))}}, "index entries"),
    ],
)
def test_refuses_what_a_store_could_not_hold_exactly(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputDataError, match="intraday account") as info:
        make(**fields)
    assert message in str(info.value)
    assert SECRET not in str(info.value)  # errors name the field, never the value


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"[]",
        b'{"u": "a"}',
        b'{"u": "a", "c": "x", "i": {}, "b": {}, "n": {}, "p": {}}',
        b'{"u": "a", "c": 1, "i": 5, "b": {}, "n": {}, "p": {}}',
    ],
)
def test_a_document_of_another_shape_is_unreadable(doc: bytes) -> None:
    with pytest.raises(InputDataError, match="stored intraday account is unreadable"):
        decode_account(doc)


def test_refuses_a_payload_nested_too_deep() -> None:
    deep: Any = "x"
    for _ in range(20):
        deep = [deep]
    with pytest.raises(InputDataError, match="nested deeper"):
        make(payload={"d": deep})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"limit": 0}, "limit must be within"),
        ({"limit": 10_001}, "limit must be within"),
        ({"limit": 2.5}, "limit must be an integer"),
        ({"windows": {"phone": (10, 5)}}, "lo > hi"),
        ({"windows": {"phone": (1, 2, 3)}}, "must be (lo, hi)"),
        ({"windows": {"phone": (1.5, 2)}}, "must be integers"),
        ({"signed_up": (5.0, 1.0)}, "lo ≤ hi"),
        ({"signed_up": (float("nan"), 1.0)}, "finite"),
        ({"signed_up": ("a", "b")}, "epoch seconds"),
        ({"ids": "alice"}, "not a string"),
        ({"exclude": ""}, "exclude must be a non-empty string"),
        ({"values": {"device": tuple(f"d{i}" for i in range(1025))}}, "at most 1024 keys"),
    ],
)
def test_a_bad_query_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputDataError) as info:
        IntradayQuery(**fields)
    assert message in str(info.value)


_names = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)
_strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _strings,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_strings, children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    user_id=_strings,
    created_at=st.floats(allow_nan=False, allow_infinity=False),
    identifiers=st.dictionaries(_names, st.lists(_strings, max_size=4), max_size=3),
    numbers=st.dictionaries(
        _names, st.lists(st.integers(-MAX_NUMBER, MAX_NUMBER), max_size=3), max_size=2
    ),
    payload=st.dictionaries(_strings, _json, max_size=4),
)
def test_any_valid_account_round_trips_exactly(
    user_id: str,
    created_at: float,
    identifiers: dict[str, list[str]],
    numbers: dict[str, list[int]],
    payload: dict[str, Any],
) -> None:
    acc = IntradayAccount(
        user_id,
        created_at,
        identifiers={k: tuple(v) for k, v in identifiers.items()},
        blocks={k: tuple(v) for k, v in identifiers.items()},
        numbers={k: tuple(v) for k, v in numbers.items()},
        payload=payload,
    )
    assert decode_account(encode_account(acc)) == acc
