import os
import stat
import subprocess
import sys

import pytest

from peerweb.content.identity import (
    KeyStore,
    SiteKey,
    normalise_site_id,
    public_key_from_site_id,
    site_id_from_public_key,
    tighten,
    verify_signature,
)
from peerweb.errors import BadAddress, NotFound, StorageError, UsageError


def test_site_id_is_one_dns_label_and_round_trips():
    key = SiteKey.generate("t")
    site_id = key.site_id
    assert len(site_id) == 52 and site_id == site_id.lower() and "=" not in site_id
    assert public_key_from_site_id(site_id) == key.public_key
    assert public_key_from_site_id(site_id.upper()) == key.public_key


def test_site_ids_normalise_to_lowercase():
    site_id = SiteKey("t", bytes(range(32))).site_id
    assert normalise_site_id(site_id) == site_id
    assert normalise_site_id(site_id.upper()) == site_id
    assert normalise_site_id(f" {site_id.title()}\n") == site_id


@pytest.mark.parametrize("bad", ["", "abc", "1" * 52, "a" * 51, "a" * 53, "../etc/passwd",
                                 # KELVIN SIGN lower()s to ASCII "k": still not a site id
                                 "\u212a" * 52, "a" * 51 + "\u212a", "a" * 52 + "\u00a0"])
def test_bad_site_ids_are_refused(bad):
    with pytest.raises(BadAddress):
        public_key_from_site_id(bad)
    with pytest.raises(BadAddress):
        normalise_site_id(bad)


def test_non_canonical_trailing_bits_are_refused():
    site_id = site_id_from_public_key(bytes(32))  # all 'a', last char carries 4 spare bits
    tweaked = site_id[:-1] + "b"
    with pytest.raises(BadAddress):
        public_key_from_site_id(tweaked)


def test_expanded_secret_matches_rfc8032_clamping():
    key = SiteKey("t", bytes(range(32)))
    secret = key.expanded_secret
    assert len(secret) == 64
    assert secret[0] & 7 == 0 and secret[31] & 0x80 == 0 and secret[31] & 0x40


def test_signatures_verify_and_tampering_fails():
    key = SiteKey.generate("t")
    sig = key.sign(b"message")
    assert verify_signature(key.public_key, sig, b"message")
    assert not verify_signature(key.public_key, sig, b"messagE")
    assert not verify_signature(key.public_key, sig[:-1] + bytes([sig[-1] ^ 1]), b"message")
    assert not verify_signature(key.public_key[:31], sig, b"message")


def test_rfc8032_test_vector_1():
    key = SiteKey("v", bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert key.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = key.sign(b"")
    assert signature.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert verify_signature(key.public_key, signature, b"")
    assert not verify_signature(key.public_key, signature, b"x")
    assert not verify_signature(bytes(32), signature, b"")  # not a valid point: refused, no error


def test_a_node_signs_and_verifies_without_loading_cryptography():
    """`cryptography` (about 8 MB resident) is only for key export and import."""
    code = ("import sys, peerweb.cli, peerweb.http.daemon, peerweb.http.gateway; "
            "from peerweb.content.identity import SiteKey, verify_signature; "
            "k = SiteKey.generate('x'); assert verify_signature(k.public_key, k.sign(b'm'), b'm'); "
            "assert 'cryptography' not in sys.modules, 'cryptography was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_keystore_writes_0600_and_lists(tmp_path):
    store = KeyStore(tmp_path / "keys")
    created = store.create("blog")
    path = tmp_path / "keys" / "blog.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.get("blog") == created
    assert store.names() == ["blog"]
    assert store.find_by_site_id(created.site_id) == created
    with pytest.raises(UsageError):
        store.create("blog")
    with pytest.raises(NotFound, match="peerweb key new"):
        store.get("nope")
    with pytest.raises(UsageError):
        store.get("../escape")


def test_damaged_key_file_is_reported(tmp_path):
    store = KeyStore(tmp_path)
    (tmp_path / "x.key").write_text("not hex")
    with pytest.raises(UsageError, match="damaged"):
        store.get("x")


def test_key_export_import_round_trip_needs_the_passphrase(tmp_path):
    source = KeyStore(tmp_path / "a")
    key = source.create("site")
    pem = source.export("site", "correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in pem and key.seed.hex().encode() not in pem

    target = KeyStore(tmp_path / "b")
    with pytest.raises(UsageError, match="wrong passphrase"):
        target.import_("site", pem, "wrong horse")
    assert target.names() == []  # a failed import leaves nothing behind
    imported = target.import_("moved", pem, "correct horse")
    assert imported.site_id == key.site_id and imported.seed == key.seed
    assert stat.S_IMODE(os.stat(tmp_path / "b" / "moved.key").st_mode) == 0o600
    with pytest.raises(UsageError, match="already here"):
        target.import_("again", pem, "correct horse")
    with pytest.raises(UsageError, match="at least"):
        source.export("site", "short")
    with pytest.raises(UsageError, match="not a peerweb key export"):
        target.import_("junk", b"not a pem", "correct horse")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_key_new_makes_the_data_dir_and_keys_dir_private(tmp_path):
    old = os.umask(0o022)  # the usual umask, which left the data dir 0755
    try:
        KeyStore(tmp_path / "data" / "keys").create("blog")
    finally:
        os.umask(old)
    assert (mode(tmp_path / "data"), mode(tmp_path / "data" / "keys"),
            mode(tmp_path / "data" / "keys" / "blog.key")) == (0o700, 0o700, 0o600)


def test_loose_existing_dirs_and_key_files_are_tightened(tmp_path):
    data, keys = tmp_path / "data", tmp_path / "data" / "keys"
    keys.mkdir(parents=True)
    (keys / "old.key").write_text(bytes(32).hex() + "\n")
    for path, loose in ((data, 0o755), (keys, 0o775), (keys / "old.key", 0o644)):
        os.chmod(path, loose)
    store = KeyStore(keys)
    store.get("old")  # reading a key tightens what holds it
    assert (mode(data), mode(keys), mode(keys / "old.key")) == (0o700, 0o700, 0o600)
    os.chmod(data, 0o750)
    os.chmod(keys, 0o711)
    store.create("new")  # and so does writing one
    assert (mode(data), mode(keys), mode(keys / "new.key")) == (0o700, 0o700, 0o600)


def test_only_group_and_other_bits_are_removed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)
    KeyStore(data / "keys").create("k")
    assert mode(data) == 0o700
    os.chmod(data, 0o500 | 0o055)  # an owner who chose read-only keeps read-only
    tighten(data)
    assert mode(data) == 0o500
    os.chmod(data, 0o700)


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(StorageError, match="not a folder"):
        KeyStore(tmp_path / "data" / "keys").create("k")


def test_the_highest_version_signed_is_kept_beside_the_key(tmp_path):
    store = KeyStore(tmp_path / "keys")
    store.create("site")
    assert store.signed_version("site") == 0
    store.note_signed("site", 2)
    store.note_signed("site", 1)  # never goes back
    assert store.signed_version("site") == 2
    assert KeyStore(tmp_path / "keys").signed_version("site") == 2
    path = tmp_path / "keys" / "site.signed"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.names() == ["site"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_counter_left_by_a_removed_key_of_the_same_name_is_ignored(tmp_path):
    store = KeyStore(tmp_path / "keys")
    store.create("site")
    store.note_signed("site", 9)
    (tmp_path / "keys" / "site.key").unlink()
    store.create("site")  # another key, another site
    assert store.signed_version("site") == 0
    (tmp_path / "keys" / "site.signed").write_text("not json")
    assert store.signed_version("site") == 0
