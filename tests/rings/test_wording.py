"""A ring's features in words: the telling ones for the CLI summary, all of them for the page."""

from __future__ import annotations

from graphfraud.rings.wording import ring_in_words

FARM = {
    "size": 150,
    "top_link_kinds": "device,ip,phone_similar",
    "n_labelled": 6,
    "n_labelled_fraud": 6,
    "shared_device_ratio": 1.0,
    "creation_burst": 0.93,
    "creation_span_hours": 17.4,
    "density": 1.0,
    "identifier_similarity": 0.4,
    "mean_link_weight": 0.2,
    "grew_from": None,
}


def test_summary_words_only_what_tells() -> None:
    assert ring_in_words(FARM) == [
        "linked mostly by device, ip, phone_similar",
        "6 confirmed fraud of 6 labelled",
        "100% share a device",
        "93% signed up within 48 h",
        "100% of member pairs linked directly",
    ]
    family = {**FARM, "n_labelled_fraud": 0, "shared_device_ratio": 0.2, "creation_burst": 0.1}
    assert ring_in_words(family) == [
        "linked mostly by device, ip, phone_similar",
        "100% of member pairs linked directly",
    ]


def test_page_words_every_feature_and_skips_missing_ones() -> None:
    words = ring_in_words({**FARM, "grew_from": "E-7"}, all_features=True)
    assert "sign-ups spread over 17 h" in words
    assert "40% tied by what they state (email, phone, UPI)" in words
    assert "mean link strength 0.20" in words
    assert words[-1] == "grew from emerging ring E-7"
    assert ring_in_words({"creation_burst": float("nan")}, all_features=True) == []
    assert ring_in_words({"creation_span_hours": 96.0}, all_features=True) == [
        "sign-ups spread over 4.0 days"
    ]
