"""Settings, read from flags (by the CLI) and `GRAPHFRAUD_*` environment variables.

Nested groups use a double underscore: `GRAPHFRAUD_GRAPH__URI=bolt://…`,
`GRAPHFRAUD_LINK__MAX_SHARE=50`; lists are JSON (`GRAPHFRAUD_SERVICE__API_KEYS='["k:scorer"]'`).
Nothing is instantiated at import time: call `load_settings()`, which turns any value that does
not parse into one `ConfigError` naming the variable and the problem, never the value (it may be
an API key or a password).
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from graphfraud.errors import ConfigError

ENV_PREFIX = "GRAPHFRAUD_"
ENV_NESTED = "__"
MAX_PROBLEMS_SHOWN = 3

if TYPE_CHECKING:
    from graphfraud.identifiers import IdentifierRegistry


class IngestSettings(BaseModel):
    """How raw identifiers are read and normalised."""

    default_region: str = Field("IN", description="ISO region for phones written without +country")
    max_field_chars: int = Field(
        320, description="longer emails/names/ids are quarantined as absurd"
    )


class DeclaredIdentifier(BaseModel):
    """An exact-match identifier kind a team adds without code (`graphfraud.identifiers`).

    `GRAPHFRAUD_IDENTIFIERS='[{"name": "pan_hash"}, {"name": "bank_account_hash", "prior": 0.9}]'`
    or `--identifier pan_hash` on the batch verbs. The users file then may hold a column of that
    name; its values link users who share one, through linking, rings, features, the graph, the
    snapshot, the API (`identifiers` in `POST /v1/score`) and masking.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$", description="kind name, e.g. pan_hash")
    column: str | None = Field(None, description="users-file column (default: the name)")
    label: str | None = Field(None, description="wording for people (default: the name)")
    prior: float = Field(1.0, gt=0, le=1, description="weight of a value shared by two users")
    decay: float = Field(
        0.0, ge=0, le=2, description="rarity decay: weight × (2/support)**decay; 0 = no fading"
    )
    reason: str | None = Field(
        None, pattern=r"^[A-Z][A-Z0-9_]{2,40}$", description="reason code (default SHARED_<NAME>)"
    )
    reason_text: str | None = Field(None, description="the reason in words")
    mask: Literal["hash", "full", "none"] = Field(
        "hash", description="how analysts without the investigator role see values"
    )
    case_sensitive: bool = Field(False, description="keep case when comparing values")


class LinkSettings(BaseModel):
    """Blocking, comparison and weighting of user-user links."""

    max_share: int = Field(
        50, description="identifiers shared by more users are hubs: recorded, never linked pairwise"
    )
    email_similarity: float = Field(
        0.8,
        description="min normalised Levenshtein of look-alike handles (email local parts, UPI "
        "handles before the @); also what one name with its parts reordered scores",
    )
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
    exclusive_tie_weight: float = Field(
        0.3,
        description="a link at least this heavy is a *tie*: *exclusive* when its value is held by "
        "the two accounts alone (support 2), a *crowd* tie otherwise; communities none of whose "
        "members has a crowd tie are joined through exclusive ties (a chain of handsets or home "
        "connections passed from one account to the next; > 1 turns the merge off)",
    )
    exclusive_min_size: int = Field(
        5,
        ge=2,
        description="communities joined through exclusive ties stay apart when together they "
        "would hold fewer users than this: two households tied by one private link are two "
        "communities, while a crew hung on a chain of private ties is many accounts (a short "
        "chain of strong ties is one community already, CPM keeps it whole)",
    )
    exclusive_max_size: int = Field(
        40,
        ge=2,
        description="communities joined through exclusive ties stay apart when together they "
        "would hold more users than this (bounds how far a chain of exclusive ties may reach)",
    )
    suspect_probability: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="a community is a *suspected ring* when its ring score reaches the cut at "
        "which a community's estimated chance of holding fraud (calibrated on the labelled "
        "communities, out-of-fold) reaches this",
    )
    suspect_fallback_score: float = Field(
        0.5,
        ge=0,
        le=1,
        description="the ring-score cut used when too few communities are labelled to "
        "calibrate one (recorded in the manifest as `how: fallback`)",
    )
    seed: int = 7
    emerging: Path | None = Field(
        None,
        description="the intraday store's emerging-ring memberships (user_id, emerging_ring_id; "
        "`graphfraud intraday export`): each ring records the one it grew from",
    )

    @model_validator(mode="after")
    def _exclusive_sizes(self) -> RingSettings:
        if self.exclusive_min_size > self.exclusive_max_size:  # the merge would never happen
            raise ValueError("exclusive_min_size must not exceed exclusive_max_size")
        return self


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask (a container's cpuset, `taskset`), not
    the host's core count; `os.cpu_count()` where the platform has no affinity call."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


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
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per candidate kind, constructor overrides of its tuned defaults, e.g. "
        '{"gnn": {"hidden": 32, "max_epochs": 200}} (GRAPHFRAUD_MODEL__PARAMS, JSON)',
    )
    gate_margin: float = Field(
        0.05,
        ge=0,
        lt=0.5,
        description="a trained model scores the night only when the lower 95 % bound of its "
        "out-of-fold ROC-AUC beats 0.5 + this (else: the promoted model or the label-free "
        "prior); see model/gate.py",
    )
    num_threads: int = Field(
        default_factory=available_cpus,
        ge=1,
        description="CPU threads LightGBM (the gbm) trains and batch-scores with; default the "
        "CPUs this process may run on (its affinity), never every core of the host. A CFS "
        "quota (a k8s CPU limit without a cpuset) is not visible there: set it to the limit "
        "(GRAPHFRAUD_MODEL__NUM_THREADS)",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC key for model cards: when set, saved cards are signed and unsigned or "
        "mis-signed cards refuse to load (GRAPHFRAUD_MODEL__SIGNING_KEY)",
    )
    retrain: Literal["auto", "always", "never"] = Field(
        "always",
        description="always: train every night (and promote by the rule in model/promotion.py); "
        "never: score with the promoted model (train only when none is promoted); auto: train "
        "when the promoted model is older than retrain_max_age_days, or a feature drifted past "
        "retrain_psi against the previous run, or retrain_new_labels labels arrived since it "
        "trained, else score with it (GRAPHFRAUD_MODEL__RETRAIN)",
    )
    retrain_max_age_days: float = Field(
        7.0, gt=0, description="auto: retrain once the promoted model is this many days old"
    )
    retrain_psi: float = Field(
        0.25,
        gt=0,
        description="auto: retrain when any feature's PSI against the previous run reaches this "
        "(0.25 is the usual 'significant shift')",
    )
    retrain_new_labels: int = Field(
        500,
        ge=1,
        description="auto: retrain when this many more users are labelled than the promoted model "
        "trained on",
    )


class ReportSettings(BaseModel):
    """The run report (`report.html`) and the drift warnings it raises (`graphfraud.report`).

    PSI (population stability index, `report/drift.py`) compares tonight's distribution of a
    column with the previous run's, on the previous run's deciles: below 0.1 is noise, 0.1-0.25
    a shift worth a look, above 0.25 a different population (or a broken feed)."""

    psi_warn: float = Field(
        0.1, gt=0, description="warn when the score's PSI against the previous run reaches this"
    )
    feature_psi_warn: float = Field(
        0.25, gt=0, description="warn for each feature whose PSI reaches this"
    )
    links_change_warn: float = Field(
        0.5,
        gt=0,
        description="warn when a link kind's count moves by this share of the previous run's "
        "(0.5: half as many, or 1.5 times as many; a feed that lost a column)",
    )
    quarantine_warn: float = Field(
        0.01, ge=0, le=1, description="warn when this share of an input's rows is quarantined"
    )
    top_hubs: int = Field(10, ge=0, description="hub identifiers listed (masked)")


class DecisionSettings(BaseModel):
    """The operating point: which scores are allowed, reviewed or declined.

    Bands are half-open: `score < review_threshold` → the first name, `review_threshold ≤ score
    < decision_threshold` → the second, `score ≥ decision_threshold` → the third. The run's
    `operating_points.parquet` says what each threshold catches and costs."""

    decision_threshold: float = Field(
        0.5, ge=0, le=1, description="scores at or above this are declined (the third band)"
    )
    review_threshold: float = Field(
        0.2, ge=0, le=1, description="scores at or above this (and below the decision) go to review"
    )
    bands: tuple[str, str, str] = Field(
        ("allow", "review", "decline"),
        description="names of the three bands, lowest risk first (a JSON list of three)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> DecisionSettings:
        if self.review_threshold > self.decision_threshold:
            raise ValueError("review_threshold must not exceed decision_threshold")
        if len(set(self.bands)) != 3 or not all(b.strip() for b in self.bands):
            raise ValueError("bands must be three distinct, non-empty names")
        return self


class GraphSettings(BaseModel):
    """Where the identity graph is published: empty uri = embedded (run directory only)."""

    uri: str = ""
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    database: str | None = None
    batch_size: int = 5000
    full_publish: bool = Field(
        False,
        description="always publish the whole graph (MERGE everything, then sweep) instead of "
        "only what changed since the run the graph holds",
    )
    connect_timeout_s: float = Field(5.0, description="seconds to open a Bolt connection")
    retry_time_s: float = Field(
        15.0,
        description="how long the driver retries a transaction on transient/unavailable errors",
    )


class IntradaySettings(BaseModel):
    """The intraday store: accounts scored since the last snapshot (`graphfraud.scoring.intraday`).

    `memory` keeps them in the process (one replica); `redis` shares them between replicas
    through a Redis-protocol server (Redis, Valkey). The password goes in `password`, never in
    the url, so no settings dump or log line can carry it."""

    backend: str = Field("memory", description="memory | redis")
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://host:port/db, rediss:// (TLS) or unix:///path.sock; no password",
    )
    username: str = Field("", description="Redis ACL user (empty: the default user)")
    password: SecretStr = SecretStr("")
    prefix: str = Field(
        "graphfraud.intraday",
        description="key prefix, so several deployments can share one server (no ':')",
    )
    ttl_s: float = Field(
        48 * 3600.0, description="an account leaves this long after it was last recorded"
    )
    max_accounts: int = Field(
        100_000, description="at most this many accounts; the least recently recorded leave first"
    )
    timeout_s: float = Field(
        0.01,
        description="socket connect and read timeout: past it the online path degrades to "
        "snapshot-only matching (the POST /v1/score budget is ~30 ms)",
    )
    retry_after_s: float = Field(
        1.0, description="after the server failed, fail fast for this long before trying again"
    )
    max_connections: int = Field(32, description="connection pool size per process")


class VerdictSettings(BaseModel):
    """Where analysts' verdicts are kept (`graphfraud.verdicts`): a PostgreSQL DSN, else a SQLite
    file. The service defaults to `verdicts.sqlite3` beside its audit log; the batch reads them as
    labels only when one of the two is set (`graphfraud run --verdicts`)."""

    path: Path | None = Field(
        None, description="SQLite file (default for the service: beside the audit log)"
    )
    dsn: SecretStr = Field(
        SecretStr(""),
        description="postgresql://user@host:5432/db (wins over path; may hold a password)",
    )

    def target(self, default: Path | None = None) -> str | Path | None:
        """What to open: the DSN, the path, `default`, or None."""
        dsn = self.dsn.get_secret_value()
        return dsn or self.path or default


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
    swap_min_user_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a new snapshot with fewer users than this share of the served one's is "
        "refused (the old one keeps serving)",
    )
    graph_timeout_s: float = Field(
        3.0,
        gt=0,
        description="analyst routes answer 503 when the graph database has not answered in this "
        "many seconds (the service's driver retries no longer than this either)",
    )
    auth_fail_budget: int = Field(
        20, ge=1, description="unknown API keys one client address may send per window; then 429"
    )
    auth_fail_window_s: float = Field(
        60.0, gt=0, description="seconds of that window (and of the lock-out that ends it)"
    )
    access_log: bool = Field(True, description="one JSON line per request (route template, no ids)")
    score_store: Literal["mapped", "memory"] = Field(
        "mapped",
        description="where scores are served from: `mapped`, the run's memory-mapped score store "
        "(online/store/, written by the score stage; shared by every worker through the page "
        "cache), or `memory`, built from the run's Parquet in each worker",
    )
    score_store_verify: bool = Field(
        False,
        description="check every score-store file's sha256 when a run is opened (sizes, "
        "shapes and the scores' checksum are always checked)",
    )


class Settings(BaseSettings):
    """All settings; each group maps to `GRAPHFRAUD_<GROUP>__<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED, extra="ignore"
    )

    ingest: IngestSettings = IngestSettings()
    link: LinkSettings = LinkSettings()
    rings: RingSettings = RingSettings()
    model: ModelSettings = ModelSettings()
    decision: DecisionSettings = DecisionSettings()
    graph: GraphSettings = GraphSettings()
    intraday: IntradaySettings = IntradaySettings()
    service: ServiceSettings = ServiceSettings()
    verdicts: VerdictSettings = VerdictSettings()
    report: ReportSettings = ReportSettings()
    identifiers: list[DeclaredIdentifier] = Field(
        default_factory=list, description="user-declared exact-match identifier kinds"
    )
    engine: Literal["local", "dask"] = Field(
        "local",
        description="where the partitioned stages run (pair scoring, exact links, per-component "
        "Leiden, ring and user features): local = this process; dask = a dask.distributed "
        "cluster",
    )
    dask_scheduler: str | None = Field(
        None,
        description="scheduler address for engine=dask (tcp://host:8786); none = start a "
        "LocalCluster of worker processes for the run",
    )
    engine_workers: int | None = Field(
        None,
        ge=1,
        description="local: processes for the partitioned stages (default 1, this process); "
        "dask without a scheduler: LocalCluster worker processes (default: one per CPU)",
    )
    log_level: str = "info"

    def identifier_registry(self) -> IdentifierRegistry:
        """The built-in identifier kinds plus the declared ones."""
        from graphfraud.identifiers import registry_for

        return registry_for([d.model_dump(exclude_none=True) for d in self.identifiers])


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (flag) overrides applied on top.

    Raises ConfigError naming each bad variable and the pydantic problem type, e.g.
    `GRAPHFRAUD_SERVICE__PORT: Input should be a valid integer (int_parsing)`. The pydantic error
    is dropped (`from None`): its text and its traceback carry the input value.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        message = _validation_message(exc, overrides, os.environ)
    except SettingsError as exc:
        message = _undecodable_message(exc, os.environ)
    raise ConfigError(message, hint="fix the variable; its value is never printed") from None


def env_var(loc: tuple[str | int, ...]) -> str:
    """The environment variable of a setting location: ("service", "api_keys", 0) →
    GRAPHFRAUD_SERVICE__API_KEYS (list positions stay out of the name)."""
    names = [part for part in loc[:2] if isinstance(part, str)]
    return ENV_PREFIX + ENV_NESTED.join(name.upper() for name in names)


def _set_vars(environ: Mapping[str, str]) -> set[str]:
    return {name.upper() for name in environ if name.upper().startswith(ENV_PREFIX)}


def _validation_message(
    exc: ValidationError, overrides: Mapping[str, object], environ: Mapping[str, str]
) -> str:
    present = _set_vars(environ)
    problems: list[str] = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = tuple(error["loc"])
        var = env_var(loc)
        if loc and loc[0] in overrides:
            where = "setting " + ".".join(str(p) for p in loc)
        elif var not in present and env_var(loc[:1]) in present:
            where = env_var(loc[:1])  # the whole group was given as one JSON object
        else:
            where = var
        item = f" item {loc[2] + 1}" if len(loc) > 2 and isinstance(loc[2], int) else ""
        problem = f"{where}{item}: {error['msg']} ({error['type']})"
        if problem not in problems:
            problems.append(problem)
    more = len(problems) - MAX_PROBLEMS_SHOWN
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f" (+{more} more)" if more > 0 else "")
    return f"invalid setting{'s' if len(problems) > 1 else ''}: {shown}"


def _json_shape(annotation: object) -> str | None:
    """What JSON pydantic-settings expects in an env var for this annotation (None: plain text)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        shapes = [_json_shape(arg) for arg in typing.get_args(annotation)]
        return next((shape for shape in shapes if shape), None)
    candidate = origin or annotation
    if isinstance(candidate, type) and issubclass(candidate, (list, set, tuple)):
        return "a JSON list"
    if isinstance(candidate, type) and issubclass(candidate, (dict, BaseModel)):
        return "a JSON object"
    return None


def _undecodable_message(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """pydantic-settings names only the group (`field "service"`): find the variable whose JSON
    does not decode."""
    by_upper = {name.upper(): value for name, value in environ.items()}
    for group, field in Settings.model_fields.items():
        group_var = env_var((group,))
        candidates: list[tuple[str, str]] = []
        if group_var in by_upper:
            candidates.append((group_var, "a JSON object"))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, sub in annotation.model_fields.items():
                var, shape = env_var((group, name)), _json_shape(sub.annotation)
                if var in by_upper and shape:
                    candidates.append((var, shape))
        for var, shape in candidates:
            try:
                json.loads(by_upper[var])
            except ValueError as err:  # JSONDecodeError.msg says where, never what
                why = getattr(err, "msg", "does not decode")
                return f"{var} is not valid JSON ({why}); expected {shape}"
    return f"a GRAPHFRAUD_ variable does not parse ({type(exc).__name__})"
