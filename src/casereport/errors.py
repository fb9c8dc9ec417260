"""The one error tree of casereport.

Every error a user can cause or fix is a ``CaseReportError``: a ``click.ClickException``
whose message is one line naming what failed, where (file:line, address, URL) and what
to do. The CLI prints it without a traceback (``--debug`` shows one).

    CaseReportError (click.ClickException, exit code 1)
    ├── UsageError             a command asked for what does not exist (exit code 2)
    ├── ConfigError            settings and environment: DD_SITE, credentials, options
    ├── DefinitionError        report files that do not load, validate or expand
    ├── QuerySyntaxError       a Case Management search query that does not parse
    ├── EmulatorError          the local emulator cannot start or read its data
    ├── StateError             a state file that is corrupt, too new, or cannot be written
    ├── LockError              the state is locked by another run (names the holder)
    ├── BackendError           the object store holding a remote state: bucket, credentials, network
    ├── PlanError              a saved plan that is stale, corrupt or for another workspace
    ├── RenderError            a template that fails to render
    ├── PublishError           publishing the site: missing extra or Pulumi CLI, demo or stale site
    └── ApiError               the Datadog API answered with an error or could not be reached
        ├── BadRequestError        400: the server's detail is shown
        ├── AuthenticationError    401: check DD_API_KEY / DD_APP_KEY / DD_BEARER_TOKEN
        ├── ForbiddenError         403: the keys lack access or the cases_read scope
        ├── NotFoundError          404: names the URL and site
        ├── RateLimitedError       429 still returned after the retries
        ├── ServerError            5xx still returned after the retries
        ├── ApiConnectionError     timeouts and network errors after the retries
        └── ResponseFormatError    a response that is not JSON or lacks a required field
"""

from __future__ import annotations

import click


class CaseReportError(click.ClickException):
    """Base of every error casereport reports to the user.

    ``span_ends`` maps a ``(file, line, column)`` the message names to the column just
    past the span it means, when the producer knew it; the CLI underlines that span
    in the snippet it shows under the line (``casereport.diagnostics``). ``argument`` is
    a command-line argument the message is about and the 0-based index it points at: the
    CLI shows it with a caret there.
    """

    exit_code = 1
    span_ends: dict[tuple[str, int, int], int] = {}  # noqa: RUF012 (read-only default)
    argument: tuple[str, int] | None = None


class UsageError(CaseReportError):
    """A command was asked for something that does not exist (``check --target``): exit 2,
    as click's own usage errors."""

    exit_code = 2


class ConfigError(CaseReportError):
    """Settings, environment variables or options are wrong or missing."""


class DefinitionError(CaseReportError):
    """Report definitions do not load, validate or expand."""


class EmulatorError(CaseReportError):
    """The local emulator cannot start or cannot read its data."""


class StateError(CaseReportError):
    """The state file is corrupt, from a newer casereport, or cannot be written."""


class UnreadableStateError(StateError):
    """A state that cannot be used as it is: ``where`` it is, what the ``problem`` is and
    the ``fix``, kept apart so that a remote state, read through its local copy, can be
    named by its address (``state.backend.S3Backend.state_error``)."""

    def __init__(self, where: object, problem: str, fix: str) -> None:
        super().__init__(f"{where}: {problem}; {fix}")
        self.where = where
        self.problem = problem
        self.fix = fix


class DamagedStateError(UnreadableStateError):
    """A state that is not valid JSON or not a casereport state (damaged, or hand-edited
    wrong): how to mend it depends on where it lives."""


class LockError(CaseReportError):
    """The state is locked by another run, or a lock cannot be released."""


class BackendError(CaseReportError):
    """The object store of a remote state is missing, refuses the credentials or is unreachable."""


class PlanError(CaseReportError):
    """A saved plan cannot be applied: stale, corrupt, or made for another workspace."""


class RenderError(CaseReportError):
    """A template is missing or fails to render."""


class PublishError(CaseReportError):
    """The site cannot be published: tooling missing, site refused, or Pulumi failed."""


class QuerySyntaxError(CaseReportError):
    """A search query does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, reason: str, query: str, position: int) -> None:
        self.reason = reason
        self.query = query
        self.position = position
        super().__init__(f"invalid query at column {position + 1}: {reason}")


class ApiError(CaseReportError):
    """The API answered with an error, or could not be reached.

    ``status`` is the HTTP status (None for network errors), ``url`` the request URL.
    """

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        self.status = status
        self.url = url
        super().__init__(message)


class BadRequestError(ApiError):
    """400: the request was rejected; the message carries the server's detail."""


class AuthenticationError(ApiError):
    """401: the API key, application key or bearer token was not accepted."""


class ForbiddenError(ApiError):
    """403: the credentials lack permission (the ``cases_read`` scope)."""


class NotFoundError(ApiError):
    """404: the URL does not exist on this site."""


class RateLimitedError(ApiError):
    """429 persisted through every retry."""


class ServerError(ApiError):
    """5xx persisted through every retry."""


class ApiConnectionError(ApiError):
    """Timeouts or network errors persisted through every retry."""


class ResponseFormatError(ApiError):
    """The response was not JSON or lacked a required field."""
