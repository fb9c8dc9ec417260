"""The emulator's synthetic cases: a deterministic, realistically skewed set.

``synthetic_cases(n, seed)`` draws every field as a numpy column straight from
``np.random.default_rng(seed)`` (no per-case Python work, so a million cases build in
about a second) and builds Case objects only when they are asked for. The same ``n`` and
``seed`` always give the same cases, byte for byte: the clock is never read, every
timestamp falls in the 365 days before ``REFERENCE_TIME``. Given a simulated ``now``, the
set is instead the evolving one (``emulator.evolution``) as it is at that moment: the same
draws, for cases whose lives (arrival, status, priority, closing) the evolution decides.

The set is skewed the way real case data is: most cases CLOSED (more so the older they
are) or OPEN, few IN_PROGRESS; priorities mostly P3/P4, some NOT_DEFINED; ten services
with a Zipf-like skew (``case-api`` busiest), each owned by a team; mostly ``prod``;
five projects (SUP, OPS, ENG, BIL and SEC, which takes security signals); 40 users, a
few doing most of the work, about one case in eight unassigned; error-tracking cases are
of type ``ERROR_TRACKING_ISSUE``; about 4% of closed cases archived; some custom attributes
(``customer_tier``, ``impact_score``, multi-valued ``regions``, ``runbook``).
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casereport.emulator.columns import (
    CaseColumns,
    Column,
    LazyColumn,
    MultiColumn,
    Pattern,
    RefColumn,
    SingleColumn,
    format_time,
)
from casereport.emulator.evolution import world
from casereport.emulator.store import CaseStore

__all__ = ["REFERENCE_TIME", "synthetic_cases"]

# Synthetic cases are created in the 365 days before this moment (fixed, for determinism).
REFERENCE_TIME = datetime(2026, 6, 1, tzinfo=UTC)
_REFERENCE_MS = int(REFERENCE_TIME.timestamp()) * 1000
_MINUTE_MS = 60_000
_DAY_MS = 86_400_000
_SPAN_MS = 365 * _DAY_MS

_SERVICES = (
    "case-api",
    "billing",
    "checkout",
    "auth",
    "search",
    "payments",
    "notifications",
    "web-frontend",
    "mobile-api",
    "data-pipeline",
)
_TEAM_OF_SERVICE = (
    "case-management",
    "billing",
    "checkout",
    "identity",
    "search",
    "payments",
    "event-management",
    "frontend",
    "mobile",
    "data-platform",
)
_TEAMS = tuple(dict.fromkeys(_TEAM_OF_SERVICE))
_ENVIRONMENTS = ("prod", "staging", "dev")
_ENVIRONMENT_P = (0.78, 0.16, 0.06)
_DATACENTERS = ("us1.prod.dog", "eu1.prod.dog", "us3.prod.dog", "us5.prod.dog", "ap1.prod.dog")
_DATACENTER_P = (0.5, 0.25, 0.1, 0.1, 0.05)
_VERSIONS = tuple(f"v2.{minor}.0" for minor in range(41, 29, -1))  # newest first
_STATUSES = ("OPEN", "IN_PROGRESS", "CLOSED")
_STATUS_NAMES = ("Open", "In Progress", "Closed")
_STATUS_GROUPS = ("SG_OPEN", "SG_IN_PROGRESS", "SG_CLOSED")
_OPEN, _IN_PROGRESS, _CLOSED = range(3)
_PRIORITIES = ("NOT_DEFINED", "P1", "P2", "P3", "P4", "P5")
_PRIORITY_P = (0.12, 0.03, 0.10, 0.35, 0.32, 0.08)
_SOURCES = (
    "MANUAL",
    "MONITOR",
    "ERROR_TRACKING",
    "EVENT_MANAGEMENT",
    "SECURITY_SIGNAL",
    "WORKFLOW",
    "EMAIL",
    "API",
)
_SOURCE_P = (0.36, 0.24, 0.14, 0.09, 0.07, 0.04, 0.04, 0.02)
_ERROR_TRACKING = _SOURCES.index("ERROR_TRACKING")
_SECURITY_SIGNAL = _SOURCES.index("SECURITY_SIGNAL")
_TYPES = ("STANDARD", "ERROR_TRACKING_ISSUE")
_PROJECTS = (
    ("SUP", "Support"),
    ("OPS", "Operations"),
    ("ENG", "Engineering"),
    ("BIL", "Billing Escalations"),
    ("SEC", "Security"),
)
_SEC_PROJECT = 4
_PROJECT_P = (0.45, 0.3, 0.15, 0.1)  # every project but SEC, for non-security cases
_FIRST_NAMES = (
    "Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Keiko", "Liam", "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
    "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Boris", "Carmen", "Diego",
    "Emeka", "Freya", "Gustavo", "Hana", "Ivan", "Julia", "Kofi", "Leila", "Marco", "Nadia",
)  # fmt: skip
_LAST_NAMES = (
    "Martin", "Silva", "Dubois", "Ivanov", "Rossi", "Haddad", "Hopper", "Tanaka", "Moreau",
    "Berg", "Sato", "Walsh", "Patel", "Petrov", "Novak", "Alves", "Fraser", "Diaz", "Khan",
    "Singh", "Farouk", "Costa", "Zhang", "Lopez", "Demir", "Park", "Okafor", "Sokolov",
    "Ruiz", "Herrera", "Obi", "Larsen", "Pereira", "Kim", "Horvat", "Weber", "Mensah",
    "Amini", "Bianchi", "Nilsson",
)  # fmt: skip
_TITLES_GENERAL = (
    "High error rate on {service}",
    "{service}: p99 latency above SLO in {env}",
    "Elevated 5xx responses from {service} in {dc}",
    "Customer reports timeouts on {service}",
    "Kubernetes pods crash-looping for {service}",
    "Disk usage above 90% on {service} hosts in {dc}",
    "Memory usage climbing on {service} after deploy",
    "Failed deploy of {service} to {env}",
    "Queue backlog growing for {service}",
    "Certificate for {service} expires in 7 days",
    "Customer escalation: {service} degraded in {env}",
    "Intermittent connection resets between {service} and its database",
)
_TITLES_ERROR = (
    "NullPointerException in {service} request handler",
    "TimeoutError: upstream call from {service} exceeded 30s",
    "KeyError in {service} serializer",
)
_TITLES_SECURITY = (
    "Suspicious login activity on {service}",
    "Leaked credential detected in {service} configuration",
    "Unusual outbound traffic from {service} hosts in {dc}",
)
_TITLES = _TITLES_GENERAL + _TITLES_ERROR + _TITLES_SECURITY
_DESCRIPTIONS = (
    "First seen in {env} on {service} {version}. Owning team: {team}.",
    "Customers are affected in {env}. {service} {version} was deployed shortly before the "
    "first alert.",
    "Automated case: the monitor for {service} in {env} triggered. Follow the runbook before "
    "escalating to {team}.",
    "Reported by support. Reproduced against {service} {version} in {env}.",
    "Investigation notes: {team} suspects a regression in {service} {version}.",
)
_TIERS = ("enterprise", "pro", "free")
_REGIONS = ("na", "emea", "apac")


@dataclass(frozen=True)
class _CustomSpec:
    name: str
    kind: str  # URL, TEXT, NUMBER or SELECT
    is_multi: bool


_CUSTOM = (
    _CustomSpec("customer_tier", "SELECT", False),
    _CustomSpec("impact_score", "NUMBER", False),
    _CustomSpec("regions", "SELECT", True),
    _CustomSpec("runbook", "URL", False),
)
# The free-form ``attributes`` keys of every synthetic case, in output order.
_ATTRIBUTE_KEYS = ("team", "datacenters", "services", "environments", "versions")


def synthetic_cases(n: int, seed: int, now: datetime | None = None) -> CaseStore:
    """The deterministic synthetic data set: ``n`` cases drawn from ``seed``.

    With ``now`` (a simulated clock), the set evolves over time (``emulator.evolution``):
    ``n`` cases are created in the world's span, and those created by ``now`` are served,
    as they are at ``now``. Without it, the snapshot at ``REFERENCE_TIME``.
    """
    if n < 0:
        raise ValueError(f"the number of cases must be at least 0, got {n}")
    rng = np.random.default_rng(seed)
    users = _users(rng)
    projects: list[dict[str, Any]] = [
        {"id": _uuid(rng.bytes(16)), "type": "project", "attributes": {"key": k, "name": name}}
        for k, name in _PROJECTS
    ]
    type_ids = [_uuid(rng.bytes(16)) for _ in _TYPES]

    lives = None if now is None else world(n, seed, _REFERENCE_MS)
    if lives is None:
        created = _REFERENCE_MS - _SPAN_MS + np.sort(rng.integers(0, _SPAN_MS, n, dtype=np.int64))
    else:
        created = lives.created
    age = (_REFERENCE_MS - created) / _SPAN_MS  # 0 (now) .. 1 (a year ago)
    source = rng.choice(len(_SOURCES), n, p=_SOURCE_P).astype(np.int32)
    case_type = ((source == _ERROR_TRACKING) & (rng.random(n) < 0.9)).astype(
        np.int32
    )  # 1: ERROR_TRACKING_ISSUE
    project = np.where(
        source == _SECURITY_SIGNAL,
        _SEC_PROJECT,
        rng.choice(len(_PROJECT_P), n, p=_PROJECT_P),
    ).astype(np.int32)

    services, service = _multi(rng, n, _zipf(len(_SERVICES), 1.1), extra=0.12)
    team = _TEAM_INDEX[service]
    environments, env = _multi(rng, n, _ENVIRONMENT_P, extra=0.04)
    datacenters, dc = _multi(rng, n, _DATACENTER_P, extra=0.06)
    versions, version = _multi(rng, n, _zipf(len(_VERSIONS), 0.8), present=0.75)

    closed = rng.random(n) < 0.15 + 0.8 * age
    status = np.where(closed, _CLOSED, np.where(rng.random(n) < 0.2, _IN_PROGRESS, _OPEN)).astype(
        np.int32
    )
    priority = rng.choice(len(_PRIORITIES), n, p=_PRIORITY_P).astype(np.int32)

    user_p = _zipf(len(users), 0.9)
    assignee = np.where(rng.random(n) < 0.12, -1, rng.choice(len(users), n, p=user_p)).astype(
        np.int32
    )
    created_by = rng.choice(len(users), n, p=user_p).astype(np.int32)
    modified_by = np.where(assignee >= 0, assignee, created_by).astype(np.int32)

    # Time to close: log-normal around a day, within the reference window.
    duration = np.exp(rng.normal(np.log(_DAY_MS), 1.2, n)).astype(np.int64) + _MINUTE_MS
    closed_at = np.where(closed, np.minimum(created + duration, _REFERENCE_MS), -1)
    touched = created + (rng.random(n) * (_REFERENCE_MS - created) * 0.5).astype(np.int64)
    modified_at = np.where(closed, closed_at, touched)
    archived = closed & (rng.random(n) < 0.04)
    archive_delay = rng.integers(_DAY_MS, 30 * _DAY_MS, n, dtype=np.int64)
    archived_at = np.where(archived, np.minimum(closed_at + archive_delay, _REFERENCE_MS), -1)
    modified_at = np.where(archived, archived_at, modified_at)
    comments = rng.poisson(1.0 + 2.0 * closed).astype(np.int32)

    # Titles: a template fitting the source, filled with the case's first values.
    general = rng.integers(0, len(_TITLES_GENERAL), n)
    error = len(_TITLES_GENERAL) + rng.integers(0, len(_TITLES_ERROR), n)
    security = len(_TITLES_GENERAL) + len(_TITLES_ERROR) + rng.integers(0, 3, n)
    description_template = rng.integers(0, len(_DESCRIPTIONS), n)

    tier = _optional(rng, n, 0.35, rng.choice(3, n, p=(0.25, 0.5, 0.25)))
    impact = _optional(rng, n, 0.2, rng.choice(5, n, p=(0.1, 0.2, 0.35, 0.25, 0.1)))
    regions, _ = _multi(rng, n, (0.5, 0.3, 0.2), extra=0.3, present=0.1)
    runbook = _optional(rng, n, 0.05, service)
    raw_ids = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()

    if lives is not None:
        # Every draw above is made for the whole world, so that a case is the same at every
        # moment; only the cases created by ``now`` are kept, as they are at ``now``.
        assert now is not None
        seen = lives.at(now)
        n = seen.size
        status, priority = seen.status, seen.priority
        closed_at, modified_at = seen.closed_at, seen.modified_at
        archived, archived_at = seen.archived, seen.archived_at
        (
            created, source, case_type, project, service, team, env, dc, version, assignee,
            created_by, modified_by, comments, general, error, security, description_template,
            tier, impact, runbook, raw_ids,
        ) = _heads(
            n,
            created, source, case_type, project, service, team, env, dc, version, assignee,
            created_by, modified_by, comments, general, error, security, description_template,
            tier, impact, runbook, raw_ids,
        )  # fmt: skip
        services, environments, datacenters, versions, regions = (
            csr.head(n) for csr in (services, environments, datacenters, versions, regions)
        )

    template = np.where(
        source == _ERROR_TRACKING, error, np.where(source == _SECURITY_SIGNAL, security, general)
    )
    title = _render(
        [(template, len(_TITLES)), (service, len(_SERVICES)), (env, 3), (dc, len(_DATACENTERS))],
        lambda t, s, e, d: _TITLES[t].format(
            service=_SERVICES[s], env=_ENVIRONMENTS[e], dc=_DATACENTERS[d]
        ),
    )
    description = _render(
        [
            (description_template, len(_DESCRIPTIONS)),
            (service, len(_SERVICES)),
            (env, len(_ENVIRONMENTS)),
            (version + 1, len(_VERSIONS) + 1),
        ],
        lambda t, s, e, v: _DESCRIPTIONS[t].format(
            service=_SERVICES[s],
            env=_ENVIRONMENTS[e],
            version=_VERSIONS[v - 1] if v else "(version unknown)",
            team=_TEAM_OF_SERVICE[s],
        ),
    )
    custom: dict[str, Column] = {
        "customer_tier": SingleColumn(tier, list(_TIERS)),
        "impact_score": SingleColumn(impact, [str(score) for score in range(1, 6)]),
        "regions": MultiColumn(regions.offsets, regions.codes, list(_REGIONS)),
        "runbook": SingleColumn(
            runbook, [f"https://runbooks.example.com/{name}" for name in _SERVICES]
        ),
    }

    # Keys number each project's cases in creation order: SUP-1, SUP-2, ...
    per_project = np.bincount(project, minlength=len(_PROJECTS))
    by_project = np.argsort(project, kind="stable")
    number = np.empty(n, dtype=np.int64)
    number[by_project] = np.arange(n) - np.repeat(np.cumsum(per_project) - per_project, per_project)
    number += 1
    project_keys = [key for key, _ in _PROJECTS]
    raw_ids[:, 6] = (raw_ids[:, 6] & 0x0F) | 0x40  # version 4
    raw_ids[:, 8] = (raw_ids[:, 8] & 0x3F) | 0x80  # RFC 4122 variant

    def key_rank() -> NDArray[np.int64]:
        project_rank = np.argsort(np.argsort(project_keys)).astype(np.int64)
        order = np.lexsort((number, project_rank[project]))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        return rank

    def key_column() -> Column:
        keys = [
            f"{project_keys[p]}-{k}" for p, k in zip(project.tolist(), number.tolist(), strict=True)
        ]
        return SingleColumn(np.arange(n, dtype=np.int32), keys, distinct=True)

    def id_column() -> Column:
        return SingleColumn(np.arange(n, dtype=np.int32), _uuids(raw_ids), distinct=True)

    user_ids = [user["id"] for user in users]
    user_labels = [user["attributes"]["handle"] for user in users]
    user_matches = [
        [user["id"], user["attributes"]["handle"], user["attributes"]["name"]] for user in users
    ]
    attributes: dict[str, MultiColumn] = {
        "team": _csr(np.arange(n + 1, dtype=np.int64), team, _TEAMS),
        "datacenters": _csr(datacenters.offsets, datacenters.codes, _DATACENTERS),
        "services": _csr(services.offsets, services.codes, _SERVICES),
        "environments": _csr(environments.offsets, environments.codes, _ENVIRONMENTS),
        "versions": _csr(versions.offsets, versions.codes, _VERSIONS),
    }
    fields: dict[str, Column] = {
        "id": _SyntheticIds(raw_ids, LazyColumn(id_column)),
        "key": _SyntheticKeys(project, number, project_keys, LazyColumn(key_column)),
        "title": title,
        "description": description,
        "status": SingleColumn(status, list(_STATUSES)),
        "status_name": SingleColumn(status, list(_STATUS_NAMES)),
        "status_group": SingleColumn(status, list(_STATUS_GROUPS)),
        "priority": SingleColumn(priority, list(_PRIORITIES)),
        "type": SingleColumn(case_type, list(_TYPES)),
        "type_id": SingleColumn(case_type, type_ids),
        "creation_source": SingleColumn(source, list(_SOURCES)),
        "project": RefColumn(
            project,
            [p["id"] for p in projects],
            project_keys,
            [[p["id"], key, name] for p, (key, name) in zip(projects, _PROJECTS, strict=True)],
        ),
        "assignee": RefColumn(assignee, user_ids, user_labels, user_matches),
        "created_by": RefColumn(created_by, user_ids, user_labels, user_matches),
        "modified_by": RefColumn(modified_by, user_ids, user_labels, user_matches),
    }
    source_cases = _SyntheticCases(
        raw_ids=raw_ids,
        key_prefix=[project_keys[p] for p in range(len(_PROJECTS))],
        number=number,
        fields=fields,
        attributes=attributes,
        custom=custom,
        times=(created, modified_at, closed_at, archived_at),
        comments=comments,
    )
    return CaseStore(
        CaseColumns(
            size=n,
            archived=archived,
            created_ms=created,
            fields=fields,
            attributes=dict(attributes),
            custom=custom,
            included=[*users, *projects],
            source=source_cases,
            key_rank=key_rank,
        )
    )


_TEAM_INDEX = np.array([_TEAMS.index(team) for team in _TEAM_OF_SERVICE], dtype=np.int32)


@dataclass(frozen=True)
class _Csr:
    offsets: NDArray[np.int64]
    codes: NDArray[np.int32]

    def head(self, size: int) -> _Csr:
        """The first ``size`` cases' values."""
        return _Csr(self.offsets[: size + 1], self.codes[: int(self.offsets[size])])


def _heads(size: int, *columns: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """Each column's values of the first ``size`` cases."""
    return tuple(column[:size] for column in columns)


def _zipf(size: int, exponent: float) -> NDArray[np.float64]:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _multi(
    rng: np.random.Generator,
    n: int,
    p: Sequence[float] | NDArray[np.float64],
    *,
    extra: float = 0.0,
    present: float = 1.0,
) -> tuple[_Csr, NDArray[np.int32]]:
    """A multi-valued column: ``present`` of cases get one value, ``extra`` of those two.

    Returns the CSR and each case's first value (-1 where it has none).
    """
    size = len(p)
    first = rng.choice(size, n, p=p).astype(np.int32)
    has = rng.random(n) < present if present < 1.0 else np.ones(n, dtype=np.bool_)
    two = has & (rng.random(n) < extra)
    second = ((first + 1 + rng.integers(0, size - 1, n)) % size).astype(np.int32)
    lengths = has.astype(np.int64) + two
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    codes = np.empty(int(offsets[-1]), dtype=np.int32)
    starts = offsets[:-1]
    codes[starts[has]] = first[has]
    codes[starts[two] + 1] = second[two]
    return _Csr(offsets, codes), np.where(has, first, -1).astype(np.int32)


def _csr(
    offsets: NDArray[np.int64], codes: NDArray[np.int32], values: Sequence[str]
) -> MultiColumn:
    return MultiColumn(offsets, codes, list(values))


def _optional(
    rng: np.random.Generator, n: int, share: float, values: NDArray[Any]
) -> NDArray[np.int32]:
    """``values`` for a ``share`` of the cases, -1 (absent) for the others."""
    return np.where(rng.random(n) < share, values, -1).astype(np.int32)


def _render(parts: list[tuple[NDArray[Any], int]], render: Callable[..., str]) -> SingleColumn:
    """A text column from small-valued parts: each distinct combination rendered once."""
    key = np.zeros(parts[0][0].size, dtype=np.int64)
    for codes, size in parts:
        key = key * size + codes
    space = 1
    for _, size in parts:
        space *= size
    present = np.flatnonzero(np.bincount(key, minlength=space))
    texts: dict[str, int] = {}
    code_of = np.full(space, -1, dtype=np.int32)
    for combined in present.tolist():
        digits = []
        rest = combined
        for _, size in reversed(parts):
            rest, digit = divmod(rest, size)
            digits.append(digit)
        code_of[combined] = texts.setdefault(render(*reversed(digits)), len(texts))
    return SingleColumn(code_of[key], list(texts))


def _users(rng: np.random.Generator) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    for i, first in enumerate(_FIRST_NAMES):
        last = _LAST_NAMES[(i * 7) % len(_LAST_NAMES)]
        handle = f"{first}.{last}@example.com".lower()
        users.append(
            {
                "id": _uuid(rng.bytes(16)),
                "type": "user",
                "attributes": {"handle": handle, "email": handle, "name": f"{first} {last}"},
            }
        )
    return users


def _uuid(raw: bytes) -> str:
    hexed = bytearray(raw)
    hexed[6] = (hexed[6] & 0x0F) | 0x40
    hexed[8] = (hexed[8] & 0x3F) | 0x80
    h = hexed.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuids(raw: NDArray[np.uint8]) -> list[str]:
    h = raw.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, len(h), 32)
    ]


class _Generated(Column):
    """A column of a million distinct generated strings (ids, keys).

    An exact value is answered from the numbers the strings are made of; wildcards and
    grouping build the strings (once, on first use).
    """

    def __init__(self, strings: LazyColumn) -> None:
        self._strings = strings

    @property
    def labels(self) -> Sequence[str]:
        return self._strings.labels

    def match(self, pattern: Pattern) -> NDArray[np.bool_]:
        if pattern.exact is None:
            return self._strings.match(pattern)
        return self._match_exact(pattern.exact)

    @abstractmethod
    def _match_exact(self, folded: str) -> NDArray[np.bool_]: ...

    def group_counts(self, mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        return self._strings.group_counts(mask)

    def group_entries(self, mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return self._strings.group_entries(mask)


class _SyntheticIds(_Generated):
    def __init__(self, raw_ids: NDArray[np.uint8], strings: LazyColumn) -> None:
        super().__init__(strings)
        self._words = raw_ids.view(np.uint64)  # two 64-bit words per id

    def _match_exact(self, folded: str) -> NDArray[np.bool_]:
        try:
            wanted = uuid.UUID(folded)
        except ValueError:
            wanted = None
        if wanted is None or str(wanted) != folded:  # only the canonical spelling is equal
            return np.zeros(self._words.shape[0], dtype=np.bool_)
        low, high = np.frombuffer(wanted.bytes, dtype=np.uint64)
        result: NDArray[np.bool_] = (self._words[:, 0] == low) & (self._words[:, 1] == high)
        return result


class _SyntheticKeys(_Generated):
    def __init__(
        self,
        project: NDArray[np.int32],
        number: NDArray[np.int64],
        project_keys: Sequence[str],
        strings: LazyColumn,
    ) -> None:
        super().__init__(strings)
        self._project = project
        self._number = number
        self._project_of = {key.casefold(): code for code, key in enumerate(project_keys)}

    def _match_exact(self, folded: str) -> NDArray[np.bool_]:
        prefix, _, digits = folded.rpartition("-")
        code = self._project_of.get(prefix)
        if code is None or not digits.isdigit() or str(int(digits)) != digits:
            return np.zeros(self._project.size, dtype=np.bool_)
        result: NDArray[np.bool_] = (self._number == int(digits)) & (self._project == code)
        return result


class _SyntheticCases:
    """Builds synthetic Case objects from the columns."""

    def __init__(
        self,
        *,
        raw_ids: NDArray[np.uint8],
        key_prefix: list[str],
        number: NDArray[np.int64],
        fields: dict[str, Column],
        attributes: dict[str, MultiColumn],
        custom: dict[str, Column],
        times: tuple[NDArray[np.int64], ...],
        comments: NDArray[np.int32],
    ) -> None:
        self._raw_ids = raw_ids
        self._key_prefix = key_prefix
        self._number = number
        self._single = {
            name: column
            for name, column in fields.items()
            if isinstance(column, SingleColumn) and not isinstance(column, RefColumn)
        }
        self._refs = {name: c for name, c in fields.items() if isinstance(c, RefColumn)}
        self._attributes = attributes
        self._custom = custom
        self._times = times
        self._comments = comments

    def _text(self, name: str, index: int) -> str | None:
        column = self._single[name]
        code = int(column.codes[index])
        return None if code < 0 else column.values[code]

    def _ref(self, name: str, kind: str, index: int) -> dict[str, Any]:
        column = self._refs[name]
        code = int(column.codes[index])
        return {"data": None if code < 0 else {"id": column.ids[code], "type": kind}}

    def case(self, index: int) -> dict[str, Any]:
        created, modified, closed, archived = (int(times[index]) for times in self._times)
        project = int(self._refs["project"].codes[index])
        attributes: dict[str, Any] = {
            "key": f"{self._key_prefix[project]}-{int(self._number[index])}",
            "title": self._text("title", index),
            "description": self._text("description", index),
            "status": self._text("status", index),
            "status_name": self._text("status_name", index),
            "status_group": self._text("status_group", index),
            "priority": self._text("priority", index),
            "type": self._text("type", index),
            "type_id": self._text("type_id", index),
            "created_at": format_time(created),
            "modified_at": format_time(modified),
            "closed_at": format_time(closed) if closed >= 0 else None,
            "archived_at": format_time(archived) if archived >= 0 else None,
            "attributes": {key: self._attributes[key].values_of(index) for key in _ATTRIBUTE_KEYS},
            "custom_attributes": self._custom_attributes(index),
            "creation_source": self._text("creation_source", index),
            "comment_count": int(self._comments[index]),
            "public_id": str(index + 1),
        }
        return {
            "id": _uuid(self._raw_ids[index].tobytes()),
            "type": "case",
            "attributes": attributes,
            "relationships": {
                "assignee": self._ref("assignee", "user", index),
                "created_by": self._ref("created_by", "user", index),
                "modified_by": self._ref("modified_by", "user", index),
                "project": self._ref("project", "project", index),
            },
        }

    def _custom_attributes(self, index: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for spec in _CUSTOM:
            column = self._custom[spec.name]
            if isinstance(column, MultiColumn):
                values: list[str] = column.values_of(index)
            else:
                assert isinstance(column, SingleColumn)
                code = int(column.codes[index])
                values = [] if code < 0 else [column.values[code]]
            if not values:
                continue
            typed: list[Any] = [int(v) for v in values] if spec.kind == "NUMBER" else values
            result[spec.name] = {
                "is_multi": spec.is_multi,
                "type": spec.kind,
                "value": typed if spec.is_multi else typed[0],
            }
        return result
