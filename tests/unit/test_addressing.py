import pytest

from peerweb.content.addressing import Address, Target, parse_cli_address, parse_magnet, route
from peerweb.content.identity import SiteKey
from peerweb.errors import BadAddress

KEY = SiteKey.generate("t")
SID = KEY.site_id
IH = "ab" * 20


def test_subdomain_is_the_site_origin():
    a = route(f"{SID}.localhost", "/x/y.html", set())
    assert (a.target, a.ident, a.path, a.prefix) == (Target.SITE, SID, "/x/y.html", "")


def test_path_forms():
    a = route("127.0.0.1", f"/s/{SID}/p", set())
    assert (a.target, a.ident, a.path, a.prefix) == (Target.SITE, SID, "/p", f"/s/{SID}")
    assert route("localhost", f"/s/{SID}", set()).path == ""  # needs the slash
    b = route("localhost", f"/ih/{IH.upper()}/f", set())
    assert (b.target, b.ident, b.path) == (Target.SNAPSHOT, IH, "/f")
    assert route("localhost", "/", set()).target is Target.HOME


def test_foreign_hosts_are_refused():
    assert route("evil.example", "/", set()).target is Target.UNKNOWN_HOST
    assert route("a_b.x.localhost", "/", set()).target is Target.UNKNOWN_HOST
    assert route("gw.lan", "/", {"gw.lan"}).target is Target.HOME


@pytest.mark.parametrize("host_path", [(f"{SID[:-1]}z.localhost", "/"),
                                       ("localhost", "/s/nothex/"), ("localhost", "/ih/xyz/"),
                                       ("localhost", "/n/not_a_name/")])
def test_bad_ids_raise(host_path):
    with pytest.raises(BadAddress):
        route(*host_path, set())


def test_magnets():
    assert parse_magnet(f"magnet:?xs=urn:btpk:{KEY.public_key.hex()}").ident == SID
    assert parse_magnet(f"magnet:?xt=urn:btih:{IH}&dn=x").ident == IH
    assert parse_magnet(f"magnet:?xt=urn:btmh:1220{'cd' * 32}").ident == "cd" * 32
    with pytest.raises(BadAddress):
        parse_magnet("magnet:?dn=nothing")
    with pytest.raises(BadAddress):
        parse_magnet("magnet:?xs=urn:btpk:1234")


def test_cli_addresses():
    assert parse_cli_address(f"{SID}/a/b.css").path == "/a/b.css"
    assert parse_cli_address(IH).target is Target.SNAPSHOT
    assert parse_cli_address(f"http://{SID}.localhost:8080/x").path == "/x"
    with pytest.raises(BadAddress):
        parse_cli_address("not_a_site/x")


def test_names_are_addresses_too():
    """Anything that is not a site id but reads as a host name is a name to resolve
    (peerweb.names), in every form a site id is accepted."""
    assert route("blog.localhost", "/a", set()) == Address(Target.NAME, "blog", "/a")
    assert route("Blog.Bob.Alice.localhost", "/", set()).ident == "blog.bob.alice"
    assert route(f"a.{SID}.localhost", "/", set()) == Address(Target.NAME, f"a.{SID}", "/")
    assert route("localhost", "/n/blog.bob/x", set()) == Address(Target.NAME, "blog.bob",
                                                                 "/x", "/n/blog.bob")
    assert route("localhost", "/n/blog", set()).path == ""  # needs the slash
    assert parse_cli_address("blog/") == Address(Target.NAME, "blog", "/")
    assert parse_cli_address("friends-blog.alice/a.css").ident == "friends-blog.alice"
    # A site id is never a name, even one spelt in capitals.
    assert route(f"{SID.upper()}.localhost", "/", set()).target is Target.SITE


def test_site_ids_in_any_case_name_one_site():
    upper = SID.upper()
    assert route(f"{upper}.localhost", "/", set()).ident == SID
    assert route(f"{upper}.LOCALHOST.", "/", set()).ident == SID
    assert route("localhost", f"/s/{upper}/x", set()).ident == SID
    assert route("localhost", f"/s/{upper}/x", set()).prefix == f"/s/{SID}"
    assert parse_cli_address(f"{upper}/a").ident == SID


@pytest.mark.parametrize("host", [f"{SID[:-1]}\u212a.localhost",  # KELVIN SIGN lower()s to "k"
                                  "\u0130.localhost", "localhost\u0000", "\udcff"])
def test_non_ascii_hosts_are_not_ours(host):
    assert route(host, "/", set()).target is Target.UNKNOWN_HOST


@pytest.mark.parametrize("ident", ["\u212a" * 32, "ab" * 19 + "a\u212a"])
def test_non_ascii_infohashes_are_refused(ident):
    with pytest.raises(BadAddress):
        route("localhost", f"/ih/{ident}/", set())


@pytest.mark.parametrize("text", ["http://[", "https://[::1/x", "magnet://[/?xs=urn:btpk:00"])
def test_unclosed_ipv6_brackets_are_a_bad_address(text):
    """Found by the property tests: urlsplit's ValueError leaked from both parsers."""
    with pytest.raises(BadAddress, match="not a URL"):
        parse_cli_address(text)
    with pytest.raises(BadAddress, match="not a URL"):
        parse_magnet(text)
    with pytest.raises(BadAddress, match="not a URL"):
        parse_magnet("A://[")


URL_SID = "a" * 51 + "q"


def test_site_urls_follow_the_gateways_real_address():
    from peerweb.content.addressing import gateway_base, site_urls
    assert site_urls("127.0.0.1", 8080, URL_SID) == (f"http://{URL_SID}.localhost:8080/",
                                                  f"http://127.0.0.1:8080/s/{URL_SID}/")
    # *.localhost reaches 127.0.0.1 only: another loopback address gets the path form
    assert site_urls("127.0.0.2", 8181, URL_SID) == (f"http://127.0.0.2:8181/s/{URL_SID}/",) * 2
    assert site_urls("0.0.0.0", 80, URL_SID)[1] == f"http://127.0.0.1:80/s/{URL_SID}/"
    assert site_urls("::1", 8080, URL_SID)[1] == f"http://[::1]:8080/s/{URL_SID}/"
    assert gateway_base("2001:db8::5", 8080) == "http://[2001:db8::5]:8080"
