"""Audit log: every change to the engine's parameters, by the loop or by a user.

An :class:`AuditEntry` says when (wall time), who (:class:`Actor`: the optimization
loop, or a user with id and name), what (action and target), the values before and
after, the predicted and the measured effect, and the outcome. :class:`AuditLog`
keeps the last ``maxlen`` entries, hands out increasing ids, lets the loop fill in
the measured effect and the outcome once an evaluation ends, tells listeners about
each new or updated entry, and exports a versioned, JSON-safe state.

Values are stored JSON-safe: mappings and sequences are copied into dicts and lists,
non-finite floats become ``None``, anything else that is not a plain scalar becomes
its ``str``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
import math
import time
from typing import Any

AUDIT_VERSION = 1
AUDIT_MAXLEN = 500


class ActorKind(StrEnum):
    """Who made a change."""

    LOOP = "loop"
    USER = "user"


class Outcome(StrEnum):
    """What became of a change (free text is accepted too, these are the usual)."""

    PROPOSED = "proposed"  # waits for a user's approval
    DRY_RUN = "dry_run"  # predicted only, nothing applied
    APPLIED = "applied"  # in force (a user's change, or a loop change not evaluated)
    EVALUATING = "evaluating"  # applied, measurement window running
    KEPT = "kept"  # measured better: kept
    ROLLED_BACK = "rolled_back"  # measured worse (or rolled back by a user)
    DISCARDED = "discarded"  # an evaluation that could not finish (e.g. a restart)
    REJECTED = "rejected"  # refused (e.g. a proposal not approved)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the loop, or a user (Home Assistant user id and name)."""

    kind: ActorKind | str = ActorKind.LOOP
    user_id: str | None = None
    name: str | None = None

    @classmethod
    def loop(cls) -> Actor:
        """Return the optimization loop as actor."""
        return cls(ActorKind.LOOP)

    @classmethod
    def user(cls, user_id: str | None, name: str | None = None) -> Actor:
        """Return a user as actor."""
        return cls(ActorKind.USER, user_id, name)

    @property
    def is_user(self) -> bool:
        """Whether a user (not the loop) made the change."""
        return str(self.kind) == ActorKind.USER

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {"kind": str(self.kind), "user_id": self.user_id, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        """Rebuild from :meth:`to_dict`; raises ``ValueError`` on a bad kind."""
        kind = ActorKind(data.get("kind", ActorKind.LOOP))
        user_id, name = data.get("user_id"), data.get("name")
        return cls(
            kind,
            None if user_id is None else str(user_id),
            None if name is None else str(name),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited change."""

    id: int
    at: float  # wall time, seconds since the epoch
    actor: Actor
    action: str  # e.g. "set_register_interval", "strategy:interval", "rollback"
    target: str  # what changed: a register uid, "unit 3", "connection", a strategy
    before: Any = None
    after: Any = None
    predicted: Any = None
    measured: Any = None
    outcome: str = Outcome.APPLIED
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor.to_dict(),
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
            "predicted": self.predicted,
            "measured": self.measured,
            "outcome": str(self.outcome),
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Any) -> AuditEntry:
        """Rebuild from :meth:`to_dict`; raises on what cannot be used."""
        if not isinstance(data, Mapping):
            raise TypeError("not a mapping")
        at = float(data["at"])
        if not math.isfinite(at):
            raise ValueError(f"time {data['at']!r} is not finite")
        actor = data.get("actor")
        if not isinstance(actor, Mapping):
            raise TypeError("actor is not a mapping")
        extra = data.get("extra") or {}
        if not isinstance(extra, Mapping):
            raise TypeError("extra is not a mapping")
        return cls(
            id=int(data["id"]),
            at=at,
            actor=Actor.from_dict(actor),
            action=str(data["action"]),
            target=str(data["target"]),
            before=json_safe(data.get("before")),
            after=json_safe(data.get("after")),
            predicted=json_safe(data.get("predicted")),
            measured=json_safe(data.get("measured")),
            outcome=str(data.get("outcome", Outcome.APPLIED)),
            extra=json_safe(dict(extra)),
        )


AuditListener = Callable[[AuditEntry], None]


class AuditLog:
    """The last ``maxlen`` audited changes, oldest first."""

    def __init__(
        self,
        maxlen: int = AUDIT_MAXLEN,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep at most ``maxlen`` entries; ``wall_clock`` stamps new ones."""
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen}")
        self._entries: deque[AuditEntry] = deque(maxlen=maxlen)
        self._next_id = 1
        self._wall_clock = wall_clock
        self._listeners: list[AuditListener] = []

    @property
    def maxlen(self) -> int:
        """How many entries are kept."""
        return self._entries.maxlen or AUDIT_MAXLEN

    def __len__(self) -> int:
        """Return the number of entries kept."""
        return len(self._entries)

    def __iter__(self) -> Iterator[AuditEntry]:
        """Iterate over the entries, oldest first."""
        return iter(tuple(self._entries))

    def add(
        self,
        *,
        actor: Actor,
        action: str,
        target: str,
        before: Any = None,
        after: Any = None,
        predicted: Any = None,
        measured: Any = None,
        outcome: str = Outcome.APPLIED,
        at: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Record a change and return its entry (with a new id)."""
        entry = AuditEntry(
            id=self._next_id,
            at=self._wall_clock() if at is None else float(at),
            actor=actor,
            action=action,
            target=target,
            before=json_safe(before),
            after=json_safe(after),
            predicted=json_safe(predicted),
            measured=json_safe(measured),
            outcome=str(outcome),
            extra=json_safe(dict(extra or {})),
        )
        self._next_id += 1
        self._entries.append(entry)
        self._notify(entry)
        return entry

    def update(
        self,
        entry_id: int,
        *,
        outcome: str | None = None,
        measured: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AuditEntry | None:
        """Fill in the outcome and measured effect of an entry (e.g. after evaluation).

        Returns the updated entry, or ``None`` when it is no longer kept.
        """
        for index, entry in enumerate(self._entries):
            if entry.id != entry_id:
                continue
            changes: dict[str, Any] = {}
            if outcome is not None:
                changes["outcome"] = str(outcome)
            if measured is not None:
                changes["measured"] = json_safe(measured)
            if extra:
                changes["extra"] = {**entry.extra, **json_safe(dict(extra))}
            updated = replace(entry, **changes)
            self._entries[index] = updated
            self._notify(updated)
            return updated
        return None

    def get(self, entry_id: int) -> AuditEntry | None:
        """Return the entry with this id, or ``None`` when it is not (or no longer) kept."""
        for entry in self._entries:
            if entry.id == entry_id:
                return entry
        return None

    def tail(self, n: int = 20) -> list[AuditEntry]:
        """Return the last ``n`` entries, oldest first."""
        if n <= 0:
            return []
        entries = list(self._entries)
        return entries[-n:]

    def clear(self) -> None:
        """Forget all entries (ids keep increasing)."""
        self._entries.clear()

    def add_listener(self, listener: AuditListener) -> Callable[[], None]:
        """Call ``listener`` with each new or updated entry; returns the remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _notify(self, entry: AuditEntry) -> None:
        for listener in tuple(self._listeners):
            listener(entry)

    # -- persistence --------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Return the log as a JSON-safe, versioned dict."""
        return {
            "version": AUDIT_VERSION,
            "next_id": self._next_id,
            "entries": [entry.to_dict() for entry in self._entries],
        }

    def import_state(self, data: Any) -> list[str]:
        """Restore a log exported by :meth:`export_state`.

        Replaces the entries kept. Entries that cannot be used are set aside; the
        returned warnings say what was. A state of another version is set aside
        whole.
        """
        if not isinstance(data, Mapping) or data.get("version") != AUDIT_VERSION:
            version = data.get("version") if isinstance(data, Mapping) else None
            return [
                (
                    f"stored audit log version {version!r} is not {AUDIT_VERSION}; "
                    "starting with an empty log"
                )
            ]
        warnings: list[str] = []
        restored: list[AuditEntry] = []
        items = data.get("entries")
        if not isinstance(items, list):
            items = []
            warnings.append("stored audit entries set aside (not a list)")
        for item in items:
            try:
                restored.append(AuditEntry.from_dict(item))
            except (TypeError, ValueError, KeyError) as err:
                warnings.append(f"an audit entry was set aside ({err})")
        restored.sort(key=lambda entry: entry.id)
        self._entries.clear()
        self._entries.extend(restored)
        next_id = data.get("next_id")
        highest = restored[-1].id + 1 if restored else 1
        try:
            self._next_id = highest if next_id is None else max(int(next_id), highest)
        except (TypeError, ValueError):
            self._next_id = highest
            warnings.append(f"stored next audit id {next_id!r} set aside")
        return warnings


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON data (see the module docstring)."""
    if isinstance(value, StrEnum):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [json_safe(item) for item in items]
    as_dict = getattr(value, "to_dict", None) or getattr(value, "as_dict", None)
    if callable(as_dict):
        return json_safe(as_dict())
    return str(value)
