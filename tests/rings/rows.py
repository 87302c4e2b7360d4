"""Link rows for the ring tests, as the link stage writes them."""

from __future__ import annotations


def link_row(
    a: str, b: str, kind: str, w: float, va: str = "", vb: str = "", support: int = 2
) -> dict:
    """One link row (user_a < user_b, values swapped with them); `vb` defaults to `va`."""
    first, second = (a, va or None), (b, vb or va or None)
    (ua, xa), (ub, xb) = sorted([first, second], key=lambda t: t[0])
    return {
        "user_a": ua,
        "user_b": ub,
        "kind": kind,
        "value_a": xa,
        "value_b": xb,
        "support": support,
        "weight": w,
    }
