"""Which key signs a published folder (issue 17: keys cannot be mixed up): plain values."""

import pytest

from peerweb.errors import UsageError
from peerweb.policy import keys
from peerweb.policy.keys import KeyChoice, choose_key


def test_a_new_folder_gets_a_new_key_named_after_it():
    assert choose_key("/a/www", "www", None, {}, set()) == KeyChoice("www", True, "new")


def test_two_folders_of_the_same_name_get_two_keys():
    remembered = {"/x1/www": "www"}
    assert choose_key("/x2/www", "www", None, remembered, {"www"}) == KeyChoice(
        "www-2", True, "new")
    remembered["/x2/www"] = "www-2"
    assert choose_key("/x3/www", "www", None, remembered, {"www", "www-2"}).name == "www-3"


def test_the_same_folder_reuses_its_key():
    remembered = {"/x1/www": "www", "/x2/www": "www-2"}
    assert choose_key("/x2/www", "www", None, remembered, {"www", "www-2"}) == KeyChoice(
        "www-2", False, "remembered")


def test_a_named_key_is_taken_or_created():
    assert choose_key("/x2/www", "www", "www", {"/x1/www": "www"}, {"www"}) == KeyChoice(
        "www", False, "given")
    assert choose_key("/x2/www", "www", "blog", {}, {"www"}) == KeyChoice("blog", True, "given")
    # Named, it overrides the folder's remembered key.
    assert choose_key("/x1/www", "www", "other", {"/x1/www": "www"}, {"www", "other"}).name \
        == "other"


def test_a_key_no_folder_was_published_with_is_not_guessed():
    # Made by `key new www` or imported, or its folder forgotten with a lost state.
    with pytest.raises(UsageError, match="--key www"):
        choose_key("/x1/www", "www", None, {}, {"www"})


def test_a_folder_whose_key_was_removed_is_refused():
    with pytest.raises(UsageError, match="no longer in the key store"):
        choose_key("/x1/www", "www", None, {"/x1/www": "www"}, set())


def test_key_names_from_folder_names():
    assert keys.key_name_for("my site!") == "my-site"
    assert keys.key_name_for("..") == "site"
    assert keys.key_name_for("") == "site"
    assert keys.key_name_for("é") == "site"  # key names are ASCII
    assert keys.key_name_for("x" * 100) == "x" * 64


def test_free_names_stay_within_64_characters():
    base = "x" * 64
    name = keys.free_name(base, {base})
    assert name == "x" * 62 + "-2" and len(name) == 64
    assert keys.free_name("www", {"www", "www-2"}) == "www-3"
