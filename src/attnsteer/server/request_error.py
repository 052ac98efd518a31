"""`RequestError`: bad input in one request field, answered 400 with the field as OpenAI's `param`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from attnsteer.errors import AttnsteerError


class RequestError(AttnsteerError):
    """Bad input in one request field; `param` names the field, as OpenAI's error body does."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


@contextmanager
def blame(param: str) -> Iterator[None]:
    """Re-raise any attnsteer bad-input error as a RequestError naming `param`."""
    try:
        yield
    except RequestError:
        raise
    except AttnsteerError as error:
        raise RequestError(param, f"{param}: {error}") from None
