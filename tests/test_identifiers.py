"""The identifier registry: one declaration per kind, checked when built, failing closed."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from graphfraud.config import DeclaredIdentifier, Settings
from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.identifiers import (
    BUILTIN,
    EMAIL,
    UPI,
    IdentifierRegistry,
    Linkage,
    Mask,
    Source,
    declared_spec,
    registry_for,
    registry_from_manifest,
)
from graphfraud.linking.weights import link_weight, link_weight_expr
from graphfraud.scoring.reasons import FIXED_REASONS, reason_table
from graphfraud.scoring.scores import reason_rules


def test_builtin_kinds_and_their_link_kinds_in_a_fixed_order() -> None:
    assert BUILTIN.names == ("email", "phone", "device", "ip", "upi")
    assert BUILTIN.link_kinds == (
        "email", "email_similar", "phone", "phone_similar", "device", "ip", "upi", "upi_similar",
    )  # fmt: skip
    assert BUILTIN.exact_kind_of("upi_similar") == "upi"
    assert {s.name for s in BUILTIN.of_source(Source.SIGHTINGS)} == {"device", "ip"}


def test_an_incomplete_spec_fails_when_the_registry_is_built() -> None:
    broken = dataclasses.replace(UPI, graph_label="not a label", holds_type="")
    with pytest.raises(ConfigError, match=r"'upi'.*graph_label") as err:
        IdentifierRegistry((EMAIL, broken))
    assert "holds_type" in str(err.value)
    no_reason = dataclasses.replace(
        UPI, links=(dataclasses.replace(UPI.links[0], reason="", reason_text=" "), UPI.links[1])
    )
    with pytest.raises(ConfigError, match="reason code"):
        IdentifierRegistry((EMAIL, no_reason))
    bad_template = dataclasses.replace(
        UPI, links=(dataclasses.replace(UPI.links[0], evidence="held by {value}"), UPI.links[1])
    )
    with pytest.raises(ConfigError, match="evidence may only use"):
        IdentifierRegistry((EMAIL, bad_template))
    with pytest.raises(ConfigError, match="used twice: email"):
        IdentifierRegistry((EMAIL, EMAIL))
    parts = {f.name: getattr(UPI, f.name) for f in dataclasses.fields(UPI) if f.name != "mask"}
    with pytest.raises(TypeError, match="mask"):  # a part left out fails at import, as code
        type(UPI)(**parts)


def test_unknown_kinds_fail_closed() -> None:
    with pytest.raises(ArtifactError, match="unknown link kind 'upi_lookalike'"):
        link_weight("upi_lookalike", 1.0, 2)
    links = pl.DataFrame(
        {"kind": ["email", "made_up"], "similarity": [1.0, 1.0], "support": [2, 2]}
    )
    with pytest.raises(pl.exceptions.InvalidOperationError):
        links.select(link_weight_expr())  # never a silent weight of 0
    with pytest.raises(ArtifactError, match="unknown identifier kind"):
        BUILTIN.spec("pan_hash")


def test_declared_kinds_from_settings() -> None:
    settings = Settings(
        identifiers=[
            DeclaredIdentifier(name="pan_hash"),
            DeclaredIdentifier(name="bank_account_hash", prior=0.9, decay=0.5, mask="full"),
        ]
    )
    registry = settings.identifier_registry()
    pan = registry.spec("pan_hash")
    assert pan.declared
    assert pan.source == Source.USERS
    assert pan.column == "pan_hash"
    assert [r.match for r in pan.links] == [Linkage.EXACT]
    assert pan.links[0].reason == "SHARED_PAN_HASH"
    assert pan.graph_label == "PanHash"
    assert pan.holds_type == "HAS_PAN_HASH"
    assert pan.mask == Mask.HASH
    bank = registry.spec("bank_account_hash")
    assert link_weight("bank_account_hash", 1.0, 8, registry) == pytest.approx(0.9 * 0.5)
    assert bank.mask == Mask.FULL
    assert registry.link_kinds[-2:] == ("pan_hash", "bank_account_hash")
    # the run records its declared kinds; readers rebuild the same registry from the manifest
    manifest = {"identifiers": [d.model_dump(exclude_none=True) for d in settings.identifiers]}
    rebuilt = registry_from_manifest(manifest)
    assert rebuilt.public() == registry.public()
    assert rebuilt.rules == registry.rules
    assert registry_from_manifest({}) is BUILTIN


def test_declared_kinds_may_not_shadow_builtins_or_break_the_grammar() -> None:
    with pytest.raises(ConfigError, match="built-in kind"):
        registry_for([{"name": "email"}])
    with pytest.raises(ConfigError, match="used twice"):
        registry_for([{"name": "pan"}, {"name": "pan"}])
    with pytest.raises(ValueError, match="pattern"):
        DeclaredIdentifier(name="Pan Hash; DROP")
    with pytest.raises(ConfigError, match="reason code"):
        IdentifierRegistry((*BUILTIN.kinds, declared_spec("pan", reason="lower")))


def test_every_reason_has_words_and_one_order() -> None:
    table = reason_table(registry_for([{"name": "pan_hash"}]))
    assert all(r.text.strip() for r in table.values())
    batch_codes = [code for code, _ in reason_rules(registry_for([{"name": "pan_hash"}]))]
    assert set(batch_codes) <= set(table)
    assert {"SHARED_PAN_HASH", "SHARED_UPI", "LOOKALIKE_UPI"} <= set(batch_codes)
    assert {r.code for r in FIXED_REASONS} <= set(table)
    priorities = [table[c].priority for c in batch_codes]
    assert priorities == sorted(priorities)
