"""One exception tree for the whole package.

```
GraphFraudError
├── ConfigError            bad or missing settings
├── InputDataError         an input file is unreadable or breaks the contract (file, column, row);
│                          also an account the intraday store cannot hold exactly
├── ArtifactError          a run directory / artifact is missing, corrupt or incompatible
│   └── ModelMismatchError a model was trained on a different feature set
├── TrainingFailed         no candidate model could be trained on this night's data
├── GraphStoreError        the graph database failed a request
│   ├── GraphStoreUnavailable  retryable: server down, restarting, wrong address
│   └── GraphStoreAuthError    credentials rejected (not retryable)
├── IntradayUnavailable    the intraday store cannot answer now (down, timed out, refused):
│                          the online path degrades to snapshot-only matching
├── VerdictStoreUnavailable  the analysts' verdict store cannot be read or written now
└── NotFound               a user / ring / link the caller asked for does not exist
```
The CLI prints any of these as one red line and exits 1; the HTTP layer maps them to status codes
in one place (`graphfraud.service.errors`).
"""

from __future__ import annotations


class GraphFraudError(Exception):
    """Base class: every error this package raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class ConfigError(GraphFraudError):
    """Settings are invalid or a required setting is missing."""


class InputDataError(GraphFraudError):
    """An input file cannot be used: unreadable, or a required column is missing."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
        hint: str = "",
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"column {column!r}" if column else "",
                f"row {row}" if row is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file, self.column, self.row = file, column, row


class ArtifactError(GraphFraudError):
    """A run directory or one of its artifacts is missing, corrupt or incompatible."""


class ModelMismatchError(ArtifactError):
    """A saved model does not match the features it is asked to score."""


class TrainingFailed(GraphFraudError):
    """Every candidate model failed (or none could start): the model stage falls back to the
    promoted model or the label-free prior. `failures` maps a kind to its reason."""

    def __init__(self, message: str, *, failures: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})


class GraphStoreError(GraphFraudError):
    """The graph database failed a request (wrapped with the query's name, never its values)."""


class GraphStoreUnavailable(GraphStoreError):
    """The graph database cannot be reached right now; retrying later may succeed."""


class GraphStoreAuthError(GraphStoreError):
    """The graph database rejected the credentials."""


class IntradayUnavailable(GraphFraudError):
    """The intraday store cannot answer now: unreachable, past its timeout, or refusing (OOM,
    auth). Callers degrade to snapshot-only matching and say so; retrying later may succeed."""


class VerdictStoreUnavailable(GraphFraudError):
    """The verdict store (SQLite file or PostgreSQL) cannot answer: a verdict is never dropped
    silently, the caller gets 503 (service) or the batch stops (pipeline)."""


class NotFound(GraphFraudError):
    """The requested user, ring or link does not exist."""
