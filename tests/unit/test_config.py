"""config.toml is read strictly: homes of every version load, a mistake is named in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from node.config import (
    CONFIG_FILE,
    TRUST_AUTHORITY,
    ConfigError,
    NodeConfig,
    check_hosts,
    load_config,
    render_config,
)

# config.toml as the first release wrote it: no TLS settings, no [tls] section.
FIRST_RELEASE_CONFIG = """\
[node]
name = "node0"
genesis_file = "genesis.json"
key_file = "node_key.json"
data_dir = "data"

[api]
host = "127.0.0.1"
port = 26657

[p2p]
host = "127.0.0.1"
port = 26656
peers = []

[block]
min_interval_ms = 50
max_txs = 5000

[mempool]
max_txs = 50000
max_bytes = 67108864
"""

# config.toml as the TLS release wrote it: [tls] without trust (the authority's CA).
TLS_RELEASE_CONFIG = FIRST_RELEASE_CONFIG.replace(
    "port = 26657\n", "port = 26657\ntls = false\n"
).replace(
    "peers = []\n",
    'peers = []\nallowed_peers = []\ntls = true\n\n[tls]\nca_file = "tls/ca.pem"\n'
    'cert_file = "tls/node.pem"\nkey_file = "tls/node.key"\n',
)


def write_config(home: Path, text: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / CONFIG_FILE).write_text(text)
    return home


def refusal(home: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(home)
    return str(caught.value)


def test_a_rendered_config_loads_back_unchanged(tmp_path: Path) -> None:
    config = NodeConfig(
        home=tmp_path, name="node0", peers=("http://127.0.0.1:1",), api_tls=True, p2p_tls=True
    )
    write_config(tmp_path, render_config(config))
    assert load_config(tmp_path) == config


def test_a_home_of_the_first_release_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, FIRST_RELEASE_CONFIG))
    assert (config.name, config.api_tls, config.p2p_tls) == ("node0", False, False)
    assert config.tls_trust == TRUST_AUTHORITY


def test_a_home_of_the_tls_release_without_tls_trust_trusts_the_authority(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, TLS_RELEASE_CONFIG))
    assert config.p2p_tls and config.tls_trust == TRUST_AUTHORITY


def test_a_home_made_by_network_init_loads(tmp_path: Path) -> None:
    password = tmp_path / "pw.txt"
    password.write_text("correct horse battery\n")
    result = CliRunner().invoke(
        cli, ["network", "init", str(tmp_path / "net"), "--password-file", str(password)]
    )
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "net" / "node0").name == "node0"


def test_an_unknown_setting_is_named_with_the_closest_known_one(tmp_path: Path) -> None:
    write_config(tmp_path, FIRST_RELEASE_CONFIG.replace("peers = []", 'peer = ["http://x:1"]'))
    expected = "config.toml: unknown setting [p2p] peer (did you mean peers?)"
    assert refusal(tmp_path).endswith(expected)


def test_an_unknown_setting_with_no_close_name_is_named_alone(tmp_path: Path) -> None:
    write_config(tmp_path, FIRST_RELEASE_CONFIG + "colour = 3\n")
    assert refusal(tmp_path).endswith("config.toml: unknown setting [mempool] colour")


def test_an_unknown_section_is_named_with_the_closest_known_one(tmp_path: Path) -> None:
    write_config(tmp_path, FIRST_RELEASE_CONFIG + '[tsl]\ntrust = "registry"\n')
    assert refusal(tmp_path).endswith("config.toml: unknown section [tsl] (did you mean tls?)")


def test_a_setting_above_every_section_names_the_section_it_belongs_in(tmp_path: Path) -> None:
    write_config(tmp_path, "peers = []\n" + FIRST_RELEASE_CONFIG)
    assert refusal(tmp_path).endswith(
        "config.toml: unknown setting peers outside any [section] (did you mean [p2p] peers?)"
    )


def test_a_section_written_as_a_value_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, "block = 5\n" + FIRST_RELEASE_CONFIG.replace("[block]\n", "[x]\n"))
    assert "config.toml: block must be a section, written [block]" in refusal(tmp_path)


@pytest.mark.parametrize("section", ["node", "api", "p2p"])
def test_a_missing_required_section_is_named(tmp_path: Path, section: str) -> None:
    blocks = FIRST_RELEASE_CONFIG.split("\n\n")
    write_config(tmp_path, "\n\n".join(b for b in blocks if not b.startswith(f"[{section}]")))
    message = refusal(tmp_path)
    assert f"config.toml: section [{section}] is missing" in message, message


def test_a_file_cut_after_its_api_section_is_missing_p2p(tmp_path: Path) -> None:
    write_config(tmp_path, FIRST_RELEASE_CONFIG[: FIRST_RELEASE_CONFIG.index("[p2p]")])
    assert "section [p2p] is missing: is the file truncated?" in refusal(tmp_path)


def test_a_file_cut_inside_a_value_is_not_valid_toml(tmp_path: Path) -> None:
    write_config(tmp_path, FIRST_RELEASE_CONFIG[: FIRST_RELEASE_CONFIG.index("node_key.json") + 4])
    assert "config.toml is not valid TOML" in refusal(tmp_path)


@pytest.mark.parametrize("text", ["", "\n", "# nothing but a comment\n"])
def test_an_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    write_config(tmp_path, text)
    assert "config.toml is empty" in refusal(tmp_path)


def test_node_start_reports_a_config_mistake_in_one_line_with_exit_2(tmp_path: Path) -> None:
    text = FIRST_RELEASE_CONFIG.replace("port = 26657", "prot = 1")
    home = write_config(tmp_path / "node0", text)
    password = tmp_path / "pw.txt"
    password.write_text("correct horse battery\n")
    result = CliRunner().invoke(
        cli, ["node", "start", "--home", str(home), "--password-file", str(password)]
    )
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {home / CONFIG_FILE}: unknown setting [api] prot (did you mean port?)"
    ]


def test_hosts_that_resolve_pass(tmp_path: Path) -> None:
    config = NodeConfig(home=tmp_path, name="n", api_host="localhost", p2p_host="::1")
    check_hosts(config)
    check_hosts(dataclasses.replace(config, api_host="", p2p_host="0.0.0.0"))


@pytest.mark.parametrize("section", ["api", "p2p"])
def test_a_host_that_does_not_resolve_names_its_setting(tmp_path: Path, section: str) -> None:
    # .invalid is reserved (RFC 2606): no resolver answers it.
    config = dataclasses.replace(
        NodeConfig(home=tmp_path, name="n"), **{f"{section}_host": "node0.invalid"}
    )
    with pytest.raises(ConfigError) as caught:
        check_hosts(config)
    assert f"config.toml: [{section}] host 'node0.invalid' does not resolve" in str(caught.value)


@pytest.mark.parametrize("workers", [None, 0, 3])
def test_verify_workers_round_trip(tmp_path: Path, workers: int | None) -> None:
    config = NodeConfig(home=tmp_path, name="node0", verify_workers=workers)
    write_config(tmp_path, render_config(config))
    assert load_config(tmp_path).verify_workers == workers


def test_a_home_without_verify_workers_uses_auto(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, FIRST_RELEASE_CONFIG)).verify_workers is None


@pytest.mark.parametrize("value", ['"many"', "-1", "65", "true", "1.5"])
def test_a_bad_verify_workers_is_refused(tmp_path: Path, value: str) -> None:
    text = FIRST_RELEASE_CONFIG.replace("[api]", f"verify_workers = {value}\n\n[api]", 1)
    write_config(tmp_path, text)
    assert "[node] verify_workers must be" in refusal(tmp_path)
