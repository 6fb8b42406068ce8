"""agent.yaml: loading, defaults, key sources, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.agent.config import ConfigError, load_config
from novacron.agent.runtime import statsd_settings, with_default_labels
from novacron.agent.statsd import StatsdSettings
from novacron.protocols.remote_write_pb import TimeSeries

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "agent.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_a_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "endpoint: https://nc.example.com/\nqueue: {dir: q}\n"))
    assert config.endpoint == "https://nc.example.com"
    assert config.queue.dir == tmp_path / "q"  # relative to the config file
    assert config.statsd.listen == "127.0.0.1:8125"
    assert config.statsd.flush_interval_s == 10
    assert config.otlp.listen == "127.0.0.1:4318"
    assert config.scrape == []
    assert config.queue.max_bytes == 1024**3


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert config.scrape[0].job
    assert {"source", "environment", "owner"} <= set(config.labels)
    assert isinstance(statsd_settings(config.statsd.settings), StatsdSettings)


def test_api_key_sources_in_order(tmp_path: Path) -> None:
    inline = load_config(write(tmp_path, "endpoint: http://h\napi_key: inline\nqueue: {dir: q}\n"))
    assert inline.resolve_api_key({"NOVACRON_API_KEY": "env"}) == "inline"
    assert "inline" not in repr(inline)  # a secret, never printed
    (tmp_path / "key").write_text("from-file\n")
    from_file = load_config(write(tmp_path, "endpoint: http://h\napi_key_file: key\nqueue: {dir: q}\n"))
    assert from_file.resolve_api_key({}) == "from-file"
    from_env = load_config(write(tmp_path, "endpoint: http://h\napi_key_env: MY_KEY\nqueue: {dir: q}\n"))
    assert from_env.resolve_api_key({"MY_KEY": "env-key"}) == "env-key"
    with pytest.raises(ConfigError, match=r"\$MY_KEY"):
        from_env.resolve_api_key({})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("endpoint: ftp://h\nqueue: {dir: q}\n", "endpoint must be an http"),
        ("endpoint: http://h\n", "queue: Field required"),
        ("endpoint: http://h\nqueue: {dir: q, max_bytes: 10, segment_bytes: 10}\n", "at least 4 times"),
        ("endpoint: http://h\nqueue: {dir: q}\nstatsd: {listen: nowhere}\n", "not HOST:PORT"),
        ("endpoint: http://h\nqueue: {dir: q}\nscrape: [{url: h:9100, job: j}]\n", "scrape url"),
        ("endpoint: http://h\nqueue: {dir: q}\nsend: {batch_byte: 1}\n", "Extra inputs"),
        ("- a list\n", "mapping at the top level"),
        ("endpoint: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_unknown_statsd_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="percentile"):
        statsd_settings({"percentile": [0.5]})
    assert statsd_settings({"percentiles": [0.5, 0.99]}).percentiles == (0.5, 0.99)


def test_default_labels_are_added_only_where_missing() -> None:
    own = TimeSeries()
    own.labels.add(name="__name__", value="m")
    own.labels.add(name="environment", value="staging")
    out = with_default_labels([own.SerializeToString()], {"environment": "prod", "owner": "team-a"})
    labels = [(label.name, label.value) for label in TimeSeries.FromString(out[0]).labels]
    assert labels == [("__name__", "m"), ("environment", "staging"), ("owner", "team-a")]
