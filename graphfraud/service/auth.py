"""API keys → roles → permissions.

Keys come from `ServiceSettings.api_keys` as `key:role` or, hashed at rest, `sha256:<hex>:role`.
A presented key is hashed once and compared with every configured hash by `hmac.compare_digest`
(no early exit, so timing does not reveal which key nearly matched). A key is identified in logs
and the audit trail only by its fingerprint: the first 12 hex digits of its SHA-256.

| role         | score | matched accounts (POST score)  | rings/links | PII | verdicts | reload |
|--------------|-------|--------------------------------|-------------|-----|----------|--------|
| scorer       | yes   | counts per kind only           | no          | no  | no       | no     |
| analyst      | yes   | ids+evidence, masked (audited) | yes         | no  | read     | no     |
| investigator | yes   | ids+evidence (audited)         | yes         | yes | write    | no     |
| admin        | yes   | ids+evidence, masked (audited) | yes         | no  | read     | yes    |
Writing a verdict (it becomes a label for the next model) is the investigator's alone: an admin
runs the service, it does not judge customers.
Matched accounts are READ_GRAPH: to a scorer they would be a reverse lookup from an email or a
phone to customers. With no keys configured every protected route answers 401 (the service
never runs open).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from graphfraud.errors import ConfigError
from graphfraud.service.errors import Forbidden, Unauthenticated

API_KEY_HEADER = "X-API-Key"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
FINGERPRINT_CHARS = 12


class Role(StrEnum):
    SCORER = "scorer"
    ANALYST = "analyst"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"


class Permission(StrEnum):
    SCORE = "score"
    READ_GRAPH = "read_graph"
    UNMASKED_PII = "unmasked_pii"
    WRITE_VERDICT = "write_verdict"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SCORER: frozenset({Permission.SCORE}),
    Role.ANALYST: frozenset({Permission.SCORE, Permission.READ_GRAPH}),
    Role.INVESTIGATOR: frozenset(
        {Permission.SCORE, Permission.READ_GRAPH, Permission.UNMASKED_PII, Permission.WRITE_VERDICT}
    ),
    Role.ADMIN: frozenset({Permission.SCORE, Permission.READ_GRAPH, Permission.ADMIN}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's fingerprint (never the key) and its role."""

    key_id: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:FINGERPRINT_CHARS]


def hash_key(key: str) -> str:
    """The `sha256:<hex>` form to put in settings instead of the key itself."""
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"


class KeyRing:
    """The configured keys, as (sha256 digest, principal) pairs."""

    def __init__(self, entries: Iterable[tuple[bytes, Principal]]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> KeyRing:
        """Parse `key:role` / `sha256:<hex>:role` entries; raises ConfigError naming the bad entry's
        position (never its text, which may be a key)."""
        entries: list[tuple[bytes, Principal]] = []
        for i, spec in enumerate(specs):
            key, sep, role_name = spec.rpartition(":")
            if not sep or not key:
                raise ConfigError(
                    f"service api_keys entry #{i + 1} is not 'key:role' or 'sha256:<hex>:role'",
                    hint=f"roles: {', '.join(r.value for r in Role)}",
                )
            try:
                role = Role(role_name.strip().lower())
            except ValueError:
                # The role is not echoed: in a reversed `role:key` entry it is the key.
                raise ConfigError(
                    f"service api_keys entry #{i + 1} does not end in a known role",
                    hint=f"write 'key:role'; roles: {', '.join(r.value for r in Role)}",
                ) from None
            if key.startswith("sha256:") and _HEX64.match(key[7:]):
                digest = bytes.fromhex(key[7:])
            else:
                digest = hashlib.sha256(key.encode()).digest()
            entries.append((digest, Principal(digest.hex()[:FINGERPRINT_CHARS], role)))
        return cls(entries)

    def authenticate(self, presented: str | None) -> Principal:
        """The principal of a presented key; raises Unauthenticated."""
        if not presented:
            raise Unauthenticated(
                f"missing {API_KEY_HEADER} header",
                hint=f"send your API key in the {API_KEY_HEADER} header",
            )
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: Principal | None = None
        for known, principal in self._entries:
            if hmac.compare_digest(digest, known) and found is None:
                found = principal
        if found is None:
            raise Unauthenticated("unknown API key", hint="check the key; keys are case-sensitive")
        return found

    def authorize(self, presented: str | None, permission: Permission) -> Principal:
        principal = self.authenticate(presented)
        if not principal.can(permission):
            raise Forbidden(
                f"role {principal.role.value!r} may not {permission.value.replace('_', ' ')}",
                hint="use a key with a role that has this permission",
            )
        return principal
