"""The self-signed fallback, when one is due, and installing a pair where nginx reads it."""

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from renewal import certificate


def test_the_fallback_is_self_signed_short_lived_and_names_every_domain():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    chain, key = certificate.fallback_pair(("shop.test", "www.shop.test"), now=now)
    facts = certificate.facts(chain)
    assert facts.self_signed
    assert facts.names == ("shop.test", "www.shop.test")
    assert facts.not_after == now + certificate.FALLBACK_LIFETIME
    assert certificate.key_matches(chain, key)


def test_a_fallback_is_due_with_none_installed_or_an_old_or_misnamed_one_never_over_an_issued_one():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    domains = ("shop.test",)
    fresh = certificate.facts(certificate.fallback_pair(domains, now=now)[0])
    assert certificate.fallback_due(None, domains, now=now)
    assert not certificate.fallback_due(fresh, domains, now=now)
    assert certificate.fallback_due(fresh, domains, now=now + timedelta(days=6))
    assert certificate.fallback_due(fresh, ("other.test",), now=now)
    issued = certificate.Facts("1", now - timedelta(days=1), False, "f", domains, "CN=Some CA")
    assert not certificate.fallback_due(issued, domains, now=now)  # even expired: renewal's job


def test_install_writes_both_files_the_key_readable_by_its_owner_only(tmp_path):
    chain, key = certificate.fallback_pair(("shop.test",))
    certificate.install(tmp_path, chain, key)
    assert (tmp_path / "tls.crt").read_bytes() == chain
    assert (tmp_path / "tls.key").read_bytes() == key
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls.crt").stat().st_mode) == 0o644
    assert certificate.installed(tmp_path).fingerprint == certificate.facts(chain).fingerprint


def test_the_pair_is_swapped_by_one_link_and_only_the_previous_pair_is_kept(tmp_path):
    pairs = [certificate.fallback_pair(("shop.test",)) for _ in range(3)]
    for chain, key in pairs:
        certificate.install(tmp_path, chain, key)
    # Both names lead through the one `current` link, so they always name the same pair.
    assert os.readlink(tmp_path / "tls.crt") == "current/tls.crt"
    assert os.readlink(tmp_path / "tls.key") == "current/tls.key"
    assert (tmp_path / "tls.crt").read_bytes() == pairs[-1][0]
    assert (tmp_path / "tls.key").read_bytes() == pairs[-1][1]
    kept = sorted(path.name for path in tmp_path.glob("pair-*"))
    assert len(kept) == 2
    assert os.readlink(tmp_path / "current") in kept
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")], "a temporary link left"


def test_files_from_before_the_links_are_replaced_in_place(tmp_path):
    chain, key = certificate.fallback_pair(("shop.test",))
    (tmp_path / "tls.crt").write_bytes(b"old")
    (tmp_path / "tls.key").write_bytes(b"old")
    certificate.install(tmp_path, chain, key)
    assert (tmp_path / "tls.crt").is_symlink() and (tmp_path / "tls.crt").read_bytes() == chain


def test_a_key_that_does_not_match_is_refused_and_the_installed_pair_kept(tmp_path):
    chain, key = certificate.fallback_pair(("shop.test",))
    certificate.install(tmp_path, chain, key)
    other_chain, _ = certificate.fallback_pair(("shop.test",))
    with pytest.raises(ValueError, match="does not match"):
        certificate.install(tmp_path, other_chain, key)
    assert (tmp_path / "tls.crt").read_bytes() == chain


def test_nothing_installed_is_none(tmp_path):
    assert certificate.installed(tmp_path) is None
