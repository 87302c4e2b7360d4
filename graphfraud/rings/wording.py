"""A ring's features in words: one wording for the CLI's run summary and the analyst page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Thresholds above which a feature is worth a sentence (below them it explains nothing).
SHARED_DEVICE_SHOWN = 0.5
BURST_SHOWN = 0.6
DENSITY_SHOWN = 0.5


def _num(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return None if number != number else number


def ring_in_words(row: Mapping[str, Any], *, all_features: bool = False) -> list[str]:
    """Short sentences on what makes this ring look like one actor, strongest evidence first.
    `all_features` also words the features that are below their showing threshold (the page's
    side panel shows every feature; the CLI's summary only the telling ones)."""
    words: list[str] = []
    kinds = row.get("top_link_kinds")
    if isinstance(kinds, str) and kinds:
        words.append("linked mostly by " + kinds.replace(",", ", "))
    fraud = _num(row, "n_labelled_fraud")
    labelled = _num(row, "n_labelled")
    if fraud:
        words.append(
            f"{int(fraud)} confirmed fraud" + (f" of {int(labelled)} labelled" if labelled else "")
        )
    elif all_features and labelled:
        words.append(f"{int(labelled)} labelled, none as fraud")
    device = _num(row, "shared_device_ratio")
    if device is not None and (device >= SHARED_DEVICE_SHOWN or all_features):
        words.append(f"{device:.0%} share a device")
    burst = _num(row, "creation_burst")
    if burst is not None and (burst >= BURST_SHOWN or all_features):
        words.append(f"{burst:.0%} signed up within 48 h")
    if all_features:
        span = _num(row, "creation_span_hours")
        if span is not None:
            words.append(
                f"sign-ups spread over {span / 24:.1f} days"
                if span >= 48
                else f"sign-ups spread over {span:.0f} h"
            )
        density = _num(row, "density")
        if density is not None:
            words.append(f"{density:.0%} of member pairs linked directly")
        ident = _num(row, "identifier_similarity")
        if ident is not None:
            words.append(f"{ident:.0%} tied by what they state (email, phone, UPI)")
        weight = _num(row, "mean_link_weight")
        if weight is not None:
            words.append(f"mean link strength {weight:.2f}")
    else:
        density = _num(row, "density")
        if density is not None and density >= DENSITY_SHOWN and (_num(row, "size") or 0) >= 3:
            words.append(f"{density:.0%} of member pairs linked directly")
    grew = row.get("grew_from")
    if isinstance(grew, str) and grew:
        words.append(f"grew from emerging ring {grew}")
    return words
