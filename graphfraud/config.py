"""Settings, read from flags (by the CLI) and `GRAPHFRAUD_*` environment variables.

Nested groups use a double underscore: `GRAPHFRAUD_GRAPH__URI=bolt://…`,
`GRAPHFRAUD_LINK__MAX_SHARE=50`. Nothing is instantiated at import time: call `load_settings()`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseModel):
    """How raw identifiers are read and normalised."""

    default_region: str = Field("IN", description="ISO region for phones written without +country")
    max_field_chars: int = Field(
        320, description="longer emails/names/ids are quarantined as absurd"
    )


class LinkSettings(BaseModel):
    """Blocking, comparison and weighting of user-user links."""

    max_share: int = Field(
        50, description="identifiers shared by more users are hubs: recorded, never linked pairwise"
    )
    email_similarity: float = Field(0.8, description="min normalised Levenshtein of local parts")
    phone_max_gap: int = Field(20, description="max numeric gap for sequential phones")
    min_fuzzy_weight: float = Field(
        0.1,
        description="look-alike links weaker than this are dropped (namesakes in crowds): "
        "below the ring threshold they only cost memory; held-out AP/AUC unchanged at 100k",
    )
    window: int = Field(8, description="sorted-neighbourhood window for fuzzy email blocking")
    max_block: int = Field(
        100,
        description="fuzzy blocks up to this size are enumerated as candidate pairs; larger "
        "stem blocks (namesake crowds, up to max_crowd) are compared all-against-all in C",
    )
    max_crowd: int = Field(
        5000, description="stems held by more users than this are not compared at all"
    )


class RingSettings(BaseModel):
    """Community detection on the weighted user graph."""

    min_weight: float = Field(0.1, description="links weaker than this never join a ring")
    resolution: float = Field(
        0.2, description="Leiden CPM resolution: min weighted link density of a ring"
    )
    min_size: int = Field(2, description="smaller communities get no ring id")
    iterations: int = Field(
        2, description="Leiden iterations (-1 = until stable: same rings here, minutes at 1M)"
    )
    dedicated_ip_share: float = Field(
        0.8,
        description="an IP with at least this share of its users inside the communities that use "
        "it joins them into one ring (> 1 turns the merge off)",
    )
    dedicated_ip_use: float = Field(
        1 / 3,
        description="a community uses an IP when at least this share of its members (and two) do",
    )
    seed: int = 7


class ModelSettings(BaseModel):
    """Training of the risk models."""

    folds: int = Field(3, description="out-of-fold splits: a user's own label never scores it")
    seed: int = 7
    device: str = Field("auto", description="auto | cpu | cuda")
    registry: Path = Field(Path("models"), description="model registry directory")
    candidates: list[str] = Field(
        default_factory=lambda: ["gbm", "gnn", "gnn_stack"],
        description="model kinds the batch trains and selects from",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC key for model cards: when set, saved cards are signed and unsigned or "
        "mis-signed cards refuse to load (GRAPHFRAUD_MODEL__SIGNING_KEY)",
    )


class GraphSettings(BaseModel):
    """Where the identity graph is published: empty uri = embedded (run directory only)."""

    uri: str = ""
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    database: str | None = None
    batch_size: int = 5000
    connect_timeout_s: float = Field(5.0, description="seconds to open a Bolt connection")
    retry_time_s: float = Field(
        15.0,
        description="how long the driver retries a transaction on transient/unavailable errors",
    )


class ServiceSettings(BaseModel):
    """The FastAPI service."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # "key:role" pairs, or "sha256:<hex>:role" for keys hashed at rest.
    api_keys: list[str] = Field(default_factory=list)
    audit_log: Path = Path("audit.log")
    reload_poll_s: float = 0.0
    # Reloads may only name run directories under this folder (default: the parent of --run);
    # `<runs_root>/CURRENT` holds the name of the run to serve when polling is on.
    runs_root: Path | None = None
    max_body_bytes: int = Field(65536, description="larger request bodies get 413")
    access_log: bool = Field(True, description="one JSON line per request (route template, no ids)")


class Settings(BaseSettings):
    """All settings; each group maps to `GRAPHFRAUD_<GROUP>__<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="GRAPHFRAUD_", env_nested_delimiter="__", extra="ignore"
    )

    ingest: IngestSettings = IngestSettings()
    link: LinkSettings = LinkSettings()
    rings: RingSettings = RingSettings()
    model: ModelSettings = ModelSettings()
    graph: GraphSettings = GraphSettings()
    service: ServiceSettings = ServiceSettings()
    log_level: str = "info"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (flag) overrides applied on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
