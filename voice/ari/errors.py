"""What can go wrong talking to ARI, one type per thing the code above must handle differently.

AriError
├── AriHttpError             Asterisk answered a REST call with an error status (`status`, `message`)
│   ├── AriBadRequest        400: a missing or wrong parameter ("Endpoint must be specified")
│   ├── AriUnauthorized      401: wrong or missing credentials ("Authentication required")
│   ├── AriNotFound          404: no such channel, bridge, playback ... ("Channel not found")
│   │   └── AriVariableNotFound   404 on a channel variable that is not set
│   ├── AriConflict          409: e.g. the channel is not in a Stasis application
│   ├── AriPreconditionFailed 412: the channel is in a state that does not allow it
│   ├── AriUnprocessable     422: e.g. a channel in the request is not in Stasis
│   └── AriServerError       5xx: e.g. 500 "Allocation failed" for an unknown channel technology
├── AriConnectionError       the HTTP request or the event WebSocket could not reach Asterisk
└── AriProtocolError         a reply or event that is not what ARI sends (bad JSON, wrong shape)
"""

from __future__ import annotations


class AriError(Exception):
    """Base of every error of the ARI adapter."""


class AriHttpError(AriError):
    """An error reply. `message` is Asterisk's text: the JSON `message` (or `error`) field of the body."""

    def __init__(
        self, status: int, message: str, *, method: str = "", path: str = "", reason: str = ""
    ) -> None:
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{status} {message}" if message else f"{where}{status} {reason}".rstrip())
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.reason = reason  # the HTTP reason phrase as Asterisk sent it, e.g. "Variable Not Found"


class AriBadRequest(AriHttpError):
    """400."""


class AriUnauthorized(AriHttpError):
    """401: configuration, not a transient failure; retrying will not help."""


class AriNotFound(AriHttpError):
    """404. For a call that is gone: the channel hung up, or its id is wrong."""


class AriVariableNotFound(AriNotFound):
    """404 from GET .../variable: the channel exists but the variable is not set."""


class AriConflict(AriHttpError):
    """409."""


class AriPreconditionFailed(AriHttpError):
    """412."""


class AriUnprocessable(AriHttpError):
    """422."""


class AriServerError(AriHttpError):
    """5xx."""


class AriConnectionError(AriError):
    """Asterisk could not be reached, or the connection broke mid-request."""


class AriProtocolError(AriError):
    """Something ARI would not send: a body that is not JSON, an event without a `type`, a wrong shape."""


_BY_STATUS: dict[int, type[AriHttpError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    412: AriPreconditionFailed,
    422: AriUnprocessable,
}


def error_for_status(
    status: int, message: str, *, method: str = "", path: str = "", reason: str = ""
) -> AriHttpError:
    """The typed error for an HTTP error status (>= 400)."""
    if status >= 500:
        kind: type[AriHttpError] = AriServerError
    elif status == 404 and ("variable" in reason.lower() or "variable" in message.lower()):
        # Asterisk 22: `404 Variable Not Found` {"message":"Provided variable was not found"}; a missing
        # channel on the same URL is a plain `404 Not Found` {"message":"Channel not found"}.
        kind = AriVariableNotFound
    else:
        kind = _BY_STATUS.get(status, AriHttpError)
    return kind(status, message, method=method, path=path, reason=reason)
