"""foundation.netsafe: which addresses a URL found on a hostile page may point at."""

from __future__ import annotations

import pytest

from foundation.errors import UnsafeAddress
from foundation.netsafe import address_problem, check_url


@pytest.mark.parametrize("addr", [
    "127.0.0.1", "127.8.9.10", "::1",                       # loopback
    "10.1.2.3", "172.16.0.1", "192.168.1.1",                # RFC 1918
    "169.254.169.254", "fe80::1",                          # link-local, cloud metadata
    "fd00:ec2::254",                                       # AWS IPv6 metadata (ULA)
    "100.64.0.1",                                          # CGNAT
    "0.0.0.0", "::",                                       # unspecified
    "224.0.0.1", "ff02::1",                                # multicast
    "::ffff:10.0.0.1", "::ffff:127.0.0.1",                  # IPv4-mapped
    "2002:c0a8:0101::1",                                   # 6to4 of 192.168.1.1
    "64:ff9b::a00:1",                                      # NAT64 of 10.0.0.1
    "192.0.2.1", "240.0.0.1",                              # documentation, reserved
])
def test_non_public_addresses_are_refused(addr: str) -> None:
    assert address_problem(addr) is not None


@pytest.mark.parametrize("addr", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "93.184.216.34"])
def test_public_addresses_pass(addr: str) -> None:
    assert address_problem(addr) is None


def test_loopback_allowed_only_when_asked() -> None:
    assert address_problem("127.0.0.1", allow_loopback=True) is None
    assert address_problem("::ffff:127.0.0.1", allow_loopback=True) is None
    # The switch opens loopback, nothing else.
    assert address_problem("10.0.0.1", allow_loopback=True) is not None
    assert address_problem("169.254.169.254", allow_loopback=True) is not None


def test_check_url_resolves_names_and_checks_every_address() -> None:
    with pytest.raises(UnsafeAddress, match="loopback"):
        check_url("http://localhost:8080/x")
    assert "127.0.0.1" in check_url("http://localhost:8080/x", allow_loopback=True)


@pytest.mark.parametrize("url, why", [
    ("ftp://8.8.8.8/x", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("http:///nohost", "no host"),
    ("http://[::1", "malformed"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:192.168.0.1]/", "private"),
    ("http://no-such-host.invalid/", "cannot resolve"),
])
def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(UnsafeAddress, match=why):
        check_url(url)
