"""Errors keep their class across the control API: kind and status rebuild it."""

from __future__ import annotations

import pytest

from peerweb import errors
from peerweb.errors import (
    BadAddress,
    NotFound,
    PeerwebError,
    StorageError,
    SwarmTimeout,
    UsageError,
    error_from,
)


@pytest.mark.parametrize("cls", [BadAddress, NotFound, StorageError, SwarmTimeout, UsageError])
def test_a_kind_rebuilds_its_own_class(cls: type[PeerwebError]) -> None:
    rebuilt = error_from(cls.kind, "why", cls.http_status)
    assert type(rebuilt) is cls
    assert str(rebuilt) == "why" and rebuilt.http_status == cls.http_status


def test_every_kind_is_unique() -> None:
    classes = [v for v in vars(errors).values()
               if isinstance(v, type) and issubclass(v, PeerwebError)]
    kinds = [c.kind for c in classes]
    assert len(kinds) == len(set(kinds)) == len(classes)


def test_an_unknown_kind_falls_back_to_the_status_then_the_root() -> None:
    assert type(error_from("from_the_future", "x", 404)) is NotFound
    assert type(error_from(None, "x", 400)) is UsageError
    plain = error_from(None, "x", 418)
    assert type(plain) is PeerwebError and plain.http_status == 418
