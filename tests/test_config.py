"""The configuration schema: one list of keys, types and ranges (``foundation.config.SCHEMA``)
used by the loader, ``vigie config check`` and the README's table.

Every invalid file, whatever is wrong with it, is one line on stderr and exit status 1
(a Hypothesis fuzzer over the schema's keys and hostile values); files that are not
regular files are refused without being read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.figures import Figures, soak
from vigie.cli import cli
from foundation.config import SCHEMA, config_table

ROOT = Path(__file__).resolve().parents[1]


def check(path: Path | str) -> Any:
    return CliRunner().invoke(cli, ["config", "check", str(path)])


def one_line_error(r: Any) -> bool:
    lines = r.stderr.strip().splitlines()
    return r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and not r.stdout


def test_readme_table_is_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- config-table[^>]*-->\n(.*?)\n<!-- /config-table -->", readme, re.DOTALL)
    assert block, "README.md has no config table"
    assert block.group(1) == config_table(), "README config table differs: paste foundation.config.config_table()"


# Each was "ok" to `vigie config check` before the schema checked ranges (issue 13).
NONSENSE = [
    ("web", "port", "-1"), ("web", "port", "99999999999"), ("smtp", "port", "true"),
    ("crawl", "timeout_s", "nan"), ("crawl", "timeout_s", "inf"), ("crawl", "timeout_s", "-5"),
    ("notices", "max_urls_per_notice", "0"), ("notices", "max_urls_per_notice", "-1"),
    ("web", "public_base_url", '"javascript:alert(1)"'), ("database", "url", '"nonsense"'),
    ("cluster", "tick_every", '"bogus"'), ("schedule", "match_every", '"999999999w"'),
    ("web", "trusted_proxies", '["not an address"]'), ("crawl", "user_agent", '"a\\r\\nX-Evil: 1"'),
    # Past a float's range (the fuzzer's OverflowError) and past TOML's 64-bit integers.
    ("crawl", "timeout_s", "9" * 400), ("notices", "max_urls_per_notice", str(2**63)),
]


@pytest.mark.parametrize(("section", "key", "value"), NONSENSE)
def test_nonsense_is_refused_naming_the_key(tmp_path: Path, section: str, key: str, value: str) -> None:
    f = tmp_path / "vigie.toml"
    f.write_text(f"[{section}]\n{key} = {value}\n")
    r = check(f)
    assert one_line_error(r) and f"{section}.{key}" in r.stderr, (r.exit_code, r.stdout, r.stderr)
    # The loader behind every command says the same.
    r2 = CliRunner().invoke(cli, ["--config", str(f), "status"])
    assert one_line_error(r2) and f"{section}.{key}" in r2.stderr, r2.stderr


def test_a_number_too_long_to_read_is_one_line(tmp_path: Path) -> None:
    # More digits than Python converts: tomllib raises a bare ValueError, not its own.
    f = tmp_path / "vigie.toml"
    f.write_text("[crawl]\ntimeout_s = " + "9" * 5000 + "\n")
    r = check(f)
    assert one_line_error(r) and "not valid TOML" in r.stderr, r.stderr


def test_good_values_pass(tmp_path: Path) -> None:
    f = tmp_path / "vigie.toml"
    f.write_text('[web]\nport = 8443\npublic_base_url = "https://vigie.example/"\n'
                 'trusted_proxies = ["10.0.0.1", "192.168.0.0/16", "::1"]\n'
                 '[database]\nurl = "postgresql://vigie@db/vigie"\n[crawl]\ntimeout_s = 600\n'
                 '[smtp]\nport = 587\ntimeout = 12.5\n[cluster]\ntick_every = "30s"\n')
    r = check(f)
    assert r.exit_code == 0 and r.stdout.strip() == f"{f}: ok", r.stderr


def test_not_regular_files_are_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # no writer: reading it would hang
    for path in (fifo, Path("/dev/zero")):
        r = check(path)
        assert one_line_error(r) and "not a regular file" in r.stderr, r.stderr
    assert check(tmp_path).exit_code == 2  # a directory is bad usage (click.Path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * 2_000_000 + b"\n")
    r = check(big)
    assert one_line_error(r) and "too large" in r.stderr, r.stderr


# --------------------------------------------------------------------------- the fuzzer

def _bad_values(spec: Any) -> st.SearchStrategy[str]:
    """TOML texts of values each key must refuse, by the key's type."""
    wrong_type = st.sampled_from(['"text"', "true", "[1, 2]", "{a = 1}", "1979-05-27", "3.5", "7"])
    if spec.types == (bool,):
        return st.sampled_from(['"yes"', "1", "0", "[]", "nan"])
    if spec.types == (list,):
        return st.sampled_from(['"a@b.c"', "1", '[1]', '["\\u0000"]', '["no address here"]'])
    bad_numbers = st.sampled_from(["nan", "-nan", "inf", "-inf", "0", "-1", "-5.5", "0.0", "true",
                                   "99999999999999999", '"12"'])
    if spec.types == (int,):
        return st.one_of(bad_numbers, wrong_type.filter(lambda v: v != "7"))
    if float in spec.types and str not in spec.types:
        return bad_numbers
    # strings (and intervals): control characters, empty, wrong shapes
    return st.one_of(st.sampled_from(['""', '"\\n"', '"a\\u0000b"', '"\\u0007bell"', "true", "[]", "nan",
                                      '"999999999w"', '"0s"', '"-1m"', '"javascript:alert(1)"', '"nonsense"']),
                     st.text(alphabet="\r\n\x00\x1b", min_size=1, max_size=3).map(
                         lambda t: '"' + t.encode("unicode_escape").decode().replace("\\x", "\\u00") + '"'))


def _invalid_for(section: str, key: str, value: str) -> bool:
    """Whether ``value`` must be refused for this key (a few hostile values are valid for
    some keys: free text may be empty of control characters, a number may be fine)."""
    import tomllib

    from foundation.config import check_value
    from foundation.errors import ConfigError

    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return True
    try:
        check_value(SCHEMA[section][key], parsed, key)
    except ConfigError:
        return True
    return False


KEYS = [(s, k) for s, keys in SCHEMA.items() for k in keys]


@settings(max_examples=400 if soak() else 120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_every_invalid_file_is_one_line_and_exit_1(tmp_path: Path, data: st.DataObject) -> None:
    section, key = data.draw(st.sampled_from(KEYS))
    value = data.draw(_bad_values(SCHEMA[section][key]))
    path = tmp_path / "fuzz.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    r = check(path)
    if _invalid_for(section, key, value):
        assert one_line_error(r), (section, key, value, r.exit_code, r.stdout, r.stderr)
    else:
        assert r.exit_code == 0, (section, key, value, r.stderr)


@settings(max_examples=300 if soak() else 100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
def test_fuzz_random_files_ok_or_one_line(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "random.toml"
    path.write_bytes(raw)
    r = check(path)
    assert r.exit_code == 0 or one_line_error(r), (raw, r.exit_code, r.stderr)


def test_schema_figure(figures: Figures, tmp_path: Path) -> None:
    refused = 0
    for section, key, value in NONSENSE:
        f = tmp_path / f"{section}-{key}.toml"
        f.write_text(f"[{section}]\n{key} = {value}\n")
        refused += one_line_error(check(f))
    figures.record("config: nonsense values refused by `config check` (one line, exit 1)",
                   f"{refused}/{len(NONSENSE)}", f"{len(NONSENSE)}/{len(NONSENSE)}", refused == len(NONSENSE))
    assert refused == len(NONSENSE)
