"""The user service's rules without I/O: password policy and hashing, member fields, roles."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.common.errors import Forbidden, Invalid
from services.common.identity import Caller
from services.user.domain.passwords import HashParameters, Passwords, check_policy
from services.user.domain.roles import RoleChange, may_read
from services.user.domain.users import (
    normalise_display_name,
    normalise_email,
    normalise_phone,
    parse_user_id,
)

EMAIL = "kim.minji90@example.com"
FAST = HashParameters(time_cost=1, memory_kib=8 * 1024, parallelism=1)


@pytest.mark.parametrize(("password", "rule"), [
    ("short1", "min_length"),
    ("a1" * 129, "max_length"),
    ("onlyletters", "letters_and_digits"),
    ("1234567890", "letters_and_digits"),
    (EMAIL, "not_email"),
    ("Kim.Minji90@Example.com", "not_email"),
])
def test_a_password_breaking_a_rule_is_refused_naming_it(password: str, rule: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_policy(password, EMAIL)
    assert (refused.value.field, refused.value.rule) == ("password", rule)


def test_the_local_part_of_the_email_is_not_a_password() -> None:
    with pytest.raises(Invalid) as refused:
        check_policy("kimminji2024", "kimminji2024@example.com")
    assert refused.value.rule == "not_email"


@pytest.mark.parametrize("password", ["correct horse 42", "가나다라마바사아자1", "x" * 9 + "1"])
def test_a_password_meeting_the_policy_passes(password: str) -> None:
    check_policy(password, EMAIL)


def test_hashes_verify_only_their_password_and_never_an_absent_hash() -> None:
    passwords = Passwords(lambda: FAST)
    hashed = passwords.hash("correct horse 42")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse 42")
    assert not passwords.verify(hashed, "correct horse 43")
    assert not passwords.verify(None, "decoy password 0")  # the decoy itself never signs in
    assert not passwords.verify("not a hash", "correct horse 42")


def test_a_hash_made_with_older_parameters_needs_a_rehash() -> None:
    current = [FAST]
    passwords = Passwords(lambda: current[0])
    hashed = passwords.hash("correct horse 42")
    assert not passwords.needs_rehash(hashed)
    current[0] = HashParameters(time_cost=2, memory_kib=8 * 1024, parallelism=1)
    assert passwords.needs_rehash(hashed)
    assert passwords.verify(hashed, "correct horse 42")  # still verifies meanwhile


@pytest.mark.parametrize(("raw", "normalised"), [
    ("  Kim.Minji@Example.COM ", "kim.minji@example.com"),
    ("seller+shop@example.co.kr", "seller+shop@example.co.kr"),
])
def test_emails_are_stored_lower_case_and_trimmed(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised


@pytest.mark.parametrize(("raw", "rule"), [
    ("kim", "format"), ("kim@", "format"), ("kim@localhost", "format"),
    ("a" * 250 + "@example.com", "max_length"),
])
def test_invalid_emails_are_refused(raw: str, rule: str) -> None:
    with pytest.raises(Invalid) as refused:
        normalise_email(raw)
    assert (refused.value.field, refused.value.rule) == ("email", rule)


@pytest.mark.parametrize(("raw", "normalised"), [
    ("010-1234-5678", "01012345678"), ("+82 10 1234 5678", "+821012345678"),
    ("(02) 123-4567", "021234567"), (None, None), ("  ", None),
])
def test_phone_numbers_keep_digits_and_a_leading_plus(raw: str | None,
                                                       normalised: str | None) -> None:
    assert normalise_phone(raw) == normalised


@pytest.mark.parametrize(("raw", "rule"), [
    ("call me", "format"), ("12345", "length"), ("1" * 16, "length"), ("010+1234", "format"),
])
def test_invalid_phone_numbers_are_refused(raw: str, rule: str) -> None:
    with pytest.raises(Invalid) as refused:
        normalise_phone(raw)
    assert (refused.value.field, refused.value.rule) == ("phone", rule)


def test_display_names_are_trimmed_bounded_and_printable() -> None:
    assert normalise_display_name("  김민지 ") == "김민지"
    assert normalise_display_name("   ") is None
    for raw, rule in (("x" * 51, "max_length"), ("Kim\x00", "printable"),
                      ("Kim\u200b", "printable")):
        with pytest.raises(Invalid) as refused:
            normalise_display_name(raw)
        assert (refused.value.field, refused.value.rule) == ("displayName", rule)


def test_user_ids_are_uuids_and_anything_else_is_no_user() -> None:
    assert parse_user_id("5E2BCBFD-DFBA-4ADD-8F89-62EE0F3FCAFA") == \
        "5e2bcbfd-dfba-4add-8f89-62ee0f3fcafa"
    assert parse_user_id("user-1234") is None


def test_an_admin_grants_seller_and_customer_stays() -> None:
    change = RoleChange(add=frozenset({"seller"}))
    assert change.apply(frozenset({"customer"}), actor_id="admin", target_id="u") == \
        {"customer", "seller"}
    assert not change.removes_from(frozenset({"customer"}))


@pytest.mark.parametrize(("change", "current", "actor", "field", "rule"), [
    (lambda: RoleChange(add=frozenset({"root"})), set(), "a", "add", "known_role"),
    (lambda: RoleChange(add=frozenset({"seller"}), remove=frozenset({"seller"})), set(), "a",
     "remove", "disjoint"),
    (lambda: RoleChange(remove=frozenset({"admin"})), {"admin"}, "u", "remove", "own_admin"),
    (lambda: RoleChange(remove=frozenset({"customer"})), {"customer"}, "a", "remove",
     "not_empty"),
])
def test_role_changes_that_break_a_rule_are_refused(change: Callable[[], RoleChange],
                                                    current: set[str], actor: str, field: str,
                                                    rule: str) -> None:
    with pytest.raises(Invalid) as refused:  # the constructor itself checks role names
        change().apply(frozenset(current), actor_id=actor, target_id="u")
    assert (refused.value.field, refused.value.rule) == (field, rule)


def test_removing_a_role_the_member_had_is_noticed() -> None:
    change = RoleChange(remove=frozenset({"seller"}))
    assert change.removes_from(frozenset({"customer", "seller"}))
    assert not change.removes_from(frozenset({"customer"}))


def test_members_read_themselves_and_admins_read_anyone() -> None:
    may_read(Caller("u1", frozenset({"customer"})), "u1")
    may_read(Caller("a1", frozenset({"admin"})), "u1")
    with pytest.raises(Forbidden):
        may_read(Caller("u2", frozenset({"customer", "seller"})), "u1")
