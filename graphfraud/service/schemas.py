"""HTTP request and response models (pydantic at the edge). The score hot path returns
pre-serialised JSON of exactly `ScoreResponse`'s shape without validating it per request."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from graphfraud.verdicts.store import MAX_NOTE_CHARS, Outcome

UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=256)]


class ErrorBody(BaseModel):
    error: str = Field(
        description="machine-readable code, e.g. `unauthenticated`, `graph_unavailable`"
    )
    detail: str = Field(description="what went wrong")
    hint: str = Field("", description="what to do about it")
    errors: list[dict[str, Any]] | None = Field(None, description="per-field problems (422 only)")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "graph_unavailable",
                    "detail": "graph database unreachable (ring_of)",
                    "hint": "retry shortly; the score endpoints keep working",
                }
            ]
        }
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "no or unknown API key",
        403: "role not allowed",
        404: "unknown id",
        409: "a reload is already running, or the run failed the swap checks",
        413: "body too large",
        429: "too many unknown keys from this client: wait Retry-After seconds",
        422: "invalid request",
        503: "not ready / graph database or audit log unavailable",
    }
    return {s: {"model": ErrorBody, "description": text.get(s, "error")} for s in statuses}


class ScoreResponse(BaseModel):
    user_id: str
    known: bool = Field(description="false: not in the snapshot; the score is the neutral score")
    score: float = Field(ge=0, le=1, description="risk that the user is in a fraud ring")
    band: str = Field(
        description="the operating point's verdict on the score: allow / review / decline "
        "(names and thresholds: GRAPHFRAUD_DECISION__*)"
    )
    ring_id: str | None = Field(description="the user's community (households included)")
    suspected_ring: bool = Field(
        False,
        description="the community is a suspected ring: its ring score reaches the run's "
        "calibrated cut (false outside any community)",
    )
    ring_score: float | None = Field(None, ge=0, le=1)
    reasons: list[str] = Field(description="short reason codes, most important first")
    model_version: str
    scored_at: str = Field(description="when the batch run behind the snapshot scored (ISO-8601)")
    snapshot: str = Field(description="run id of the snapshot that answered")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u000123",
                    "known": True,
                    "score": 0.93,
                    "band": "decline",
                    "ring_id": "R-00042",
                    "suspected_ring": True,
                    "ring_score": 0.88,
                    "reasons": ["SHARED_DEVICE", "LOOKALIKE_EMAIL"],
                    "model_version": "gbm-20260102",
                    "scored_at": "2026-01-02T03:04:05+00:00",
                    "snapshot": "2026-01-02",
                }
            ]
        }
    )


DeclaredKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,30}$")]
REQUEST_FIELD = {
    "email": "email",
    "phone": "phone",
    "upi": "upi",
    "device": "device_ids",
    "ip": "ips",
}


class NewUserRequest(BaseModel):
    """Identifiers of an account the last batch has not seen (raw, as typed)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "new-991",
                    "email": "John.Doe7@gmail.com",
                    "phone": "+91 98765 43215",
                    "device_ids": ["a1b2-c3d4"],
                    "ips": ["203.0.113.9"],
                    "upi": "john.doe7@okicici",
                }
            ]
        },
    )

    user_id: UserId | None = Field(
        None, description="the caller's id for the account (echoed back)"
    )
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    device_ids: list[ShortText] = Field(default_factory=list, max_length=20)
    ips: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=20
    )
    upi: Annotated[str, StringConstraints(max_length=320)] | None = Field(
        None, description="UPI id (VPA), e.g. name@okicici"
    )
    identifiers: dict[DeclaredKind, ShortText] = Field(
        default_factory=dict,
        max_length=20,
        description="values of the identifier kinds without a field of their own (the "
        'deployment\'s declared kinds), e.g. `{"pan_hash": "…"}` (`GET /v1/vocabulary` lists '
        "them); an unknown kind is a 422",
    )
    region: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        None, description="ISO region for phones written without +country (default: the batch's)"
    )
    created_at: AwareDatetime | None = Field(
        None,
        description="sign-up time with a UTC offset (default: now); a replay sends the original",
    )
    record: bool = Field(
        True,
        description="store the account (by user_id: a second call replaces it) so later "
        "sign-ups link to it; false for a what-if",
    )

    @model_validator(mode="after")
    def _some_identifier(self) -> NewUserRequest:
        if not (
            self.email
            or self.phone
            or self.upi
            or any(self.device_ids)
            or any(self.ips)
            or any(self.identifiers.values())
        ):
            raise ValueError("give at least one of email, phone, upi, device_ids, ips, identifiers")
        return self

    def raw_identifiers(self) -> dict[str, str | list[str] | None]:
        """Raw values by identifier kind name (built-in request fields + declared ones)."""
        builtin = {kind: getattr(self, name) for kind, name in REQUEST_FIELD.items()}
        return {**builtin, **self.identifiers}

    @staticmethod
    def field_of(kind: str) -> str:
        """The request field that carries a kind (for `rejected`)."""
        return REQUEST_FIELD.get(kind, f"identifiers.{kind}")


class MatchOut(BaseModel):
    kind: str = Field(
        description="link kind: email, email_similar, phone, phone_similar, device, ip, upi, "
        "upi_similar, or a declared kind (`GET /v1/vocabulary`)"
    )
    user_id: str = Field(description="the account matched: a snapshot user or one of today's")
    today: bool = Field(description="an account scored since the snapshot (intraday store)")
    value: str = Field(description="the new account's canonical value")
    matched_value: str = Field(description="the matched user's value, masked by its kind's rule")
    similarity: float
    support: int = Field(
        description="holders of the value (or block size), the new account included"
    )
    weight: float = Field(description="link_weight(kind, similarity, support)")
    user_score: float | None = Field(description="the matched account's score")
    ring_id: str | None


class LinkKindOut(BaseModel):
    kind: str = Field(description="link kind, e.g. email_similar")
    match: str = Field(description="exact | lookalike | sequence")
    reason: str = Field(description="the reason code a strong link of this kind gives")
    reason_text: str
    colour: str = Field(description="legend colour, #rrggbb")


class IdentifierKindOut(BaseModel):
    name: str = Field(description="identifier kind, e.g. email, upi, pan_hash")
    label: str = Field(description="the kind in words")
    source: str = Field(description="users (one per account) or devices (per sighting)")
    declared: bool = Field(description="declared in settings rather than built in")
    graph_label: str = Field(description="node label in the Neo4j graph")
    links: list[LinkKindOut]


class ReasonOut(BaseModel):
    code: str
    text: str = Field(description="the reason in words")
    priority: int = Field(description="lower is listed first")


class VocabularyResponse(BaseModel):
    identifiers: list[IdentifierKindOut]
    reasons: list[ReasonOut]


class HubOut(BaseModel):
    kind: str
    value: str
    support: int


class OnlineScoreResponse(BaseModel):
    user_id: str | None
    known: bool = Field(False, description="always false: the batch has not seen this account")
    score: float = Field(ge=0, le=1)
    band: str = Field(description="allow / review / decline, as for the precomputed score")
    model_score: float | None = Field(
        description="the batch's model on the account's features and neighbourhood, before the "
        "ring blend; null when no online model is loaded (see `degraded`)"
    )
    ring_id: str | None = Field(
        description="the snapshot ring it joins, or its emerging ring (`emerging`), when the tie "
        "reaches the batch's ring bar"
    )
    emerging: bool = Field(
        description="ring_id names an emerging ring: accounts signed up since the snapshot, "
        "linked by the batch's rules (`GET /v1/emerging-rings/{ring_id}`)"
    )
    ring_size: int = Field(description="members of that ring, this account included")
    suspected_ring: bool = Field(
        description="that ring is a suspected ring (a snapshot ring as the batch judged it, an "
        "emerging one by the run's calibrated ring-score cut), not just a community"
    )
    ring_score: float | None
    ring_strength: float = Field(description="noisy-or of the link weights to that ring's members")
    reasons: list[str]
    model_version: str
    model_part: str | None = Field(
        description="what scored online: `gbm`, `gnn` or `gnn_stack` (the run's model); null "
        "when link evidence did"
    )
    recorded: bool = Field(
        description="stored in the intraday store, so later sign-ups link to it (false for a "
        "what-if, without user_id, or with the store down)"
    )
    degraded: list[str] = Field(
        description="what this answer did without: `intraday` (store down: snapshot-only "
        "matching, nothing recorded), `model` (no online model: link evidence only)"
    )
    scored_at: str
    snapshot: str
    match_counts: dict[str, int] = Field(
        description="links found per kind (email, email_similar, phone, …); every role"
    )
    matches_total: int
    matches: list[MatchOut] | None = Field(
        description="the matched accounts, strongest first, at most 100; null for the scorer "
        "role (analyst roles only, audited)"
    )
    hubs: list[HubOut] | None = Field(
        description="identifiers too common to link on; null for the scorer role"
    )
    rejected: list[str] = Field(description="fields that did not parse and were ignored")


class MemberOut(BaseModel):
    user_id: str
    score: float | None
    email: str | None = Field(description="masked unless the role is investigator")
    phone: str | None = Field(description="masked unless the role is investigator")
    label: int | None
    created_at: str | None


class LinkOut(BaseModel):
    user_a: str
    user_b: str
    kind: str
    value_a: str | None
    value_b: str | None
    similarity: float
    support: int
    weight: float
    evidence: str


class RingOut(BaseModel):
    ring_id: str
    size: int
    ring_score: float | None
    features: dict[str, float | int | str | None]
    members: list[MemberOut]
    links: list[LinkOut]
    truncated: bool
    model_version: str | None
    masked: bool = Field(description="true when emails and phones are masked for this caller")


class RingEventOut(BaseModel):
    run_id: str = Field(description="the batch run that recorded the event")
    at: str = Field(description="that run's start, ISO-8601 UTC")
    ring_id: str = Field(description="the ring the event happened to")
    event: str = Field(
        description="born | grew | shrank (kept its id) | merged_into | dissolved (id retired) "
        "| split_from"
    )
    other_ring_id: str | None = Field(
        description="merged_into: the ring it went into; split_from: the ring it came from; "
        "born: the emerging ring it grew from, if any"
    )
    size_before: int = Field(description="members the night before (0 for a new ring)")
    size_after: int = Field(description="members after (0 once merged or dissolved)")
    shared: int | None = Field(
        description="members kept (grew, shrank) or shared with other_ring_id"
    )


class RingHistoryOut(BaseModel):
    ring_id: str
    live: bool = Field(description="a ring of the served run; false once merged or dissolved")
    events: list[RingEventOut] = Field(
        description="oldest first: the ring's own events and those naming it (rings merged "
        "into it or split from it)"
    )
    truncated: bool = Field(description="true when only the newest events are listed")


class EmergingMemberOut(BaseModel):
    user_id: str
    created_at: str
    score: float | None = Field(description="its online score when it was recorded")
    model_score: float | None
    identifiers: dict[str, list[str]] = Field(description="canonical, masked unless investigator")


class EmergingLinkOut(BaseModel):
    user_a: str
    user_b: str
    kind: str
    weight: float | None


class EmergingRingOut(BaseModel):
    ring_id: str
    size: int
    ring_score: float | None = Field(
        description="the batch's ring score over the members' model scores"
    )
    suspected_ring: bool = Field(description="the ring score reaches the run's suspected cut")
    features: dict[str, Any] = Field(description="the batch's ring features over the members")
    members: list[EmergingMemberOut]
    links: list[EmergingLinkOut]
    truncated: bool
    masked: bool


class UserRingResponse(BaseModel):
    user_id: str
    ring: RingOut | None = Field(description="null when the user is in no ring")


class ExplanationOut(BaseModel):
    user_a: str
    user_b: str
    connected: bool
    path: list[str] = Field(description="user ids from a to b; empty when not connected")
    hops: list[list[LinkOut]] = Field(description="for each hop, every link joining its two users")
    masked: bool


class ReloadRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"run": "2026-01-02", "wait": True}]}
    )

    run: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        None,
        description="run directory name under the runs root; default: what CURRENT names, else the "
        "run being served (re-read)",
    )
    wait: bool = Field(False, description="answer when loaded (200) instead of at once (202)")


class SnapshotOut(BaseModel):
    run_id: str
    model_version: str
    scored_at: str
    loaded_at: str
    load_seconds: float
    users: int
    rings: int
    neutral_score: float
    online_ready: bool
    ring_cut: float | None = Field(
        None, description="the run's suspected-ring cut on the ring score (null: none suspected)"
    )


class ReloadResponse(BaseModel):
    status: str = Field(description="`loaded` (wait=true) or `loading`")
    run: str
    snapshot: SnapshotOut | None


class RejectedSwapOut(BaseModel):
    run: str
    reasons: list[str] = Field(description="every check the run failed")
    rejected_at: str


class OnlineModelOut(BaseModel):
    version: str
    kind: str = Field(description="the model card's kind (gbm, gnn_stack, …)")
    part: str = Field(description="what scores online: gbm, gnn or gnn_stack")


class AdminSnapshotResponse(BaseModel):
    snapshot: SnapshotOut | None
    loading: str | None
    last_error: str | None
    last_rejected: RejectedSwapOut | None = Field(
        description="the last run the swap checks refused (kept after later swaps)"
    )
    online_model: OnlineModelOut | None = Field(
        None, description="the run's model as POST /v1/score runs it; null: link evidence only"
    )
    online_model_error: str | None = Field(None, description="why there is no online model")


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    ready: bool
    snapshot: SnapshotOut | None = None
    detail: str | None = None


class GraphRingOut(BaseModel):
    ring_id: str
    size: int
    ring_score: float | None
    features: dict[str, float | int | str | None]
    features_text: list[str] = Field(description="the ring's features in words")
    model_version: str | None
    truncated: bool
    cut_kinds: list[str] = Field(description="link kinds with more links than shown")


class GraphMemberOut(BaseModel):
    user_id: str
    score: float | None
    label: int | None


class GraphOut(BaseModel):
    focus: str | None = Field(description="the user asked about (null for a ring)")
    ring: GraphRingOut | None = Field(description="null: the user is in no ring (neighbours)")
    members: list[GraphMemberOut] = Field(description="every listed ring member, riskiest first")
    drawn_members: int = Field(description="users drawn as nodes")
    more_members: int = Field(description="listed members not drawn (ask with a larger members)")
    nodes: list[dict[str, Any]] = Field(
        description="`type: user` (user_id, score, label, email, phone, in_ring) or "
        "`type: identifier` (kind, value, holders: accounts holding it, held_here, evidence); "
        "values masked unless investigator; ids never carry a value"
    )
    edges: list[dict[str, Any]] = Field(
        description="`relation: holds` (user → identifier) or `relation: link` (a look-alike "
        "between two identifiers, or a user-to-user link: kind, value_a, value_b, similarity, "
        "weight, support, evidence)"
    )
    cut: list[str] = Field(description="what the view left out, in words")
    masked: bool


class VerdictIn(BaseModel):
    subject: Literal["user", "ring"]
    subject_id: str = Field(min_length=1, max_length=256)
    outcome: Outcome
    note: str = Field("", max_length=MAX_NOTE_CHARS)


class VerdictOut(BaseModel):
    id: int
    subject: str
    subject_id: str
    outcome: Outcome
    note: str
    members: int = Field(description="users the verdict labels (a ring's members when recorded)")
    key_id: str = Field(description="fingerprint of the investigator's key")
    role: str
    run_id: str | None = Field(description="the snapshot the investigator was looking at")
    recorded_at: str


class VerdictListOut(BaseModel):
    subject: str
    subject_id: str
    verdicts: list[VerdictOut] = Field(description="newest first")


class WhoAmIOut(BaseModel):
    key_id: str = Field(description="the key's fingerprint (first 12 hex digits of its SHA-256)")
    role: str
    permissions: list[str]
