"""Which key signs a published folder: pure policy, no I/O.

A key is a site: signing a folder with another folder's key makes it the next version of that
other site, for every visitor, with no way back. So a key is never picked by a folder's name
alone (``www``, ``public``, ``dist`` and ``_site`` are everywhere): ``choose_key`` reuses the
key a folder was published with before, takes the key the user names, or makes a new one,
and refuses to guess between them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ..errors import UsageError

# Key names are at most 64 characters (content.identity); a suffix ("-2") is kept within it.
MAX_KEY_NAME = 64
FALLBACK_NAME = "site"
KEY_CHARACTERS = "._-"


@dataclass(frozen=True)
class KeyChoice:
    """The key a publish signs with."""

    name: str
    create: bool
    """The key does not exist yet: the publish creates it (only once the folder is built)."""
    reason: str
    """``given`` (the user named it), ``remembered`` (this folder's key before) or ``new``."""


def key_name_for(folder_name: str) -> str:
    """A key name made of a folder's name: characters a key name may not hold become '-'."""
    cleaned = "".join(c if c.isalnum() and c.isascii() or c in KEY_CHARACTERS else "-"
                      for c in folder_name).strip(".-_")
    return (cleaned or FALLBACK_NAME)[:MAX_KEY_NAME]


def free_name(base: str, existing: Collection[str]) -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first name no existing key has."""
    if base not in existing:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        name = base[:MAX_KEY_NAME - len(suffix)].rstrip(".-_") + suffix
        if name not in existing:
            return name
        n += 1


def choose_key(folder: str, folder_name: str, given: str | None,
               remembered: Mapping[str, str], existing: Collection[str]) -> KeyChoice:
    """The key that signs ``folder`` (its resolved path; ``folder_name`` its last part).

    ``given`` is the key the user named (``--key``), ``remembered`` the key each folder was
    last published with on this node, ``existing`` the names of the keys in the key store.
    Raises UsageError when only the user can say which site the folder is."""
    if given:
        return KeyChoice(given, given not in existing, "given")
    previous = remembered.get(folder)
    if previous is not None:
        if previous not in existing:
            raise UsageError(
                f"{folder} was published with key {previous!r}, which is no longer in the key "
                f"store: import it (`peerweb key import {previous} FILE`) to publish the next "
                "version, or pass --key NAME to publish the folder as a new site")
        return KeyChoice(previous, False, "remembered")
    base = key_name_for(folder_name)
    if base in existing and base not in set(remembered.values()):
        # A key of that name that no folder here was published with: made by `key new` or
        # `key import`, or its folder forgotten with a lost state. Its site or a new one?
        raise UsageError(
            f"a key named {base!r} exists but this node never published {folder} with it: "
            f"pass --key {base} to publish the folder as the next version of that key's "
            "site, or --key NEW-NAME to publish it as a new site")
    return KeyChoice(free_name(base, existing), True, "new")
