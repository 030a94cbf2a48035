"""Names bridged from DNS: ``example.com`` names a site when both sides say so.

The domain's owner adds a TXT record ``_peerweb.example.com`` = ``site=<site-id>``; the
site's owner lists ``example.com`` in the site's signed pointer (``peerweb publish --domain
example.com``). A binding holds only when both agree, so neither a DNS operator nor a site
owner alone can bind a name to someone else's site. The TXT record comes through the node's
resolver (``peerweb.dns``): DNSSEC-validated where the zone is signed, and when the domain's
servers are down, served stale from this node's cache or from peers' validated copies (the
signed TXT RRset with its RRSIGs and key chain): a claim DNS never confirmed is not accepted.

Pure: strings in, a site id or a refusal out.
"""

from __future__ import annotations

from ..content.identity import normalise_site_id
from ..content.pointer import valid_domain
from ..errors import BadAddress, UnknownName

CLAIM_LABEL = "_peerweb"
CLAIM_PREFIX = "site="


def as_domain(name: str) -> str | None:
    """``name`` as a bridgeable domain (lowercase, no trailing dot), or None."""
    lowered = name.strip().lower().rstrip(".")
    return lowered if valid_domain(lowered) else None


def claim_name(domain: str) -> str:
    """Where the domain's owner says which site it names."""
    return f"{CLAIM_LABEL}.{domain}."


def claimed_site(domain: str, texts: list[str]) -> str:
    """The site id the TXT records name (each record's strings joined, RFC 7208 section
    3.3's convention); UnknownName if none or several different ones do."""
    found = set()
    for text in texts:
        text = text.strip()
        if text.startswith(CLAIM_PREFIX):
            try:
                found.add(normalise_site_id(text[len(CLAIM_PREFIX):].strip()))
            except BadAddress:
                continue
    if not found:
        raise UnknownName(f"{claim_name(domain)} has no TXT record 'site=<site-id>': the "
                          "domain's owner adds one to bridge it")
    if len(found) > 1:
        raise UnknownName(f"{claim_name(domain)} names {len(found)} different sites; it must "
                          "name one")
    return found.pop()


def confirm(domain: str, site_id: str, pointer_domains: tuple[str, ...]) -> None:
    """UnknownName unless the site's signed pointer claims the domain too."""
    if domain not in pointer_domains:
        raise UnknownName(f"{domain}'s TXT record names site {site_id[:12]}..., but that "
                          "site does not claim the domain; its owner publishes with "
                          f"`peerweb publish --domain {domain}`")
