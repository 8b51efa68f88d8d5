"""The one exception a request can cause that is the caller's fault.

Hosts map it to an HTTP 4xx carrying the message: the local endpoint server does so in
:mod:`ml_code.serving.app`; SageMaker's scikit-learn container turns a ``ValueError`` raised by
the handler into a client error. Every other exception is a server fault (5xx).
"""

from __future__ import annotations

from http import HTTPStatus


class RequestError(ValueError):
    """A rejected request; ``status`` is the HTTP status to answer with, the message says why."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        if not 400 <= int(status) < 500:
            raise ValueError(f"RequestError status must be a 4xx code, got {status}")
        super().__init__(message)
        self.status = int(status)
        self.message = message
