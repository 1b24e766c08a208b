"""Errors that map to the exit codes every command shares (README).

Every command lets these propagate to ``tokenslo.cli.main``, which prints the
one-line message and exits with ``exit_code``; nothing else may print a traceback
for expected failures.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the SLO, gate or hypothesis failed
EXIT_USAGE = 2  # bad input or usage
EXIT_UNAVAILABLE = 3  # a dependency was unreachable or returned no data


class TokensloError(Exception):
    """Base class: an expected failure with a one-line message and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(TokensloError):
    """Bad input: names the file, line, column and field so users can fix it at once."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ):
        self.file, self.line, self.column, self.field = file, line, column, field
        super().__init__(message)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class UnavailableError(TokensloError):
    """A dependency (Prometheus, target) was unreachable or returned no data."""

    exit_code = EXIT_UNAVAILABLE


class CheckFailed(TokensloError):
    """An SLO, gate or hypothesis failed; the command's output already says which."""

    exit_code = EXIT_FAILED
