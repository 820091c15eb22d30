"""Which targets are polled: config files, shared credentials, secrets from files, the
credentials users already have (clouds.yaml, OS_*, HUAWEICLOUD_SDK_*), and sharding."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve, shard_of

SK = "sk-from-file-0e9d"
PASSWORD = "clouds-yaml-password-77"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write(tmp_path / "sk", SK + "\n")
    return write(
        tmp_path / "exporter.yaml",
        """
defaults:
  page_size: 200
credentials:
  otc-ak:
    access_key: AKSHARED
    secret_key_file: sk
targets:
  - name: team-a
    cloud: otc
    region: eu-de
    project_id: aaaa1111
    credentials: otc-ak
    workspace_id: [ws1, ws2]
    poll_interval_seconds: 120
  - project_id: bbbb2222
    endpoint: https://modelarts.ap-southeast-3.myhuaweicloud.com
    auth_token: tok-b-123456
  - name: team-c
    cloud: huaweicloud
    region: cn-north-4
    project_name: cn-north-4_ml
    iam_endpoint: https://iam.example/v3
    username: carol
    password: pw-c-abcdef
    domain_name: acme
""",
    )


def test_config_file_targets_with_defaults_shared_credentials_and_secret_files(
    config: Path,
) -> None:
    targets = {t.name: t for t in resolve(Settings(config_file=config), environ={})}
    assert sorted(targets) == ["bbbb2222", "team-a", "team-c"]
    team_a = targets["team-a"]
    assert team_a.modelarts_url == "https://modelarts.eu-de.otc.t-systems.com"
    assert team_a.access_key == "AKSHARED"
    assert team_a.secret_key is not None and team_a.secret_key.get_secret_value() == SK
    assert team_a.workspace_id == ("ws1", "ws2") and team_a.page_size == 200
    assert team_a.poll_interval_seconds == 120
    assert targets["bbbb2222"].auth_token is not None
    assert targets["team-c"].project_id is None and targets["team-c"].uses_password


def test_top_level_settings_are_defaults_for_file_targets(config: Path) -> None:
    settings = Settings(config_file=config, max_retries=7, page_size=50)
    targets = {t.name: t for t in resolve(settings, environ={})}
    assert targets["team-a"].max_retries == 7
    assert targets["team-a"].page_size == 200  # the file's defaults are more specific


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("targets: []", "targets: List should have at least 1 item"),
        (
            "targets:\n  - {project_id: p1, page_size: 0}",
            "targets[0] (p1): page_size: Input should be",
        ),
        (
            "targets:\n  - {project_id: p1, endpoint: https://x, credentials: nope}",
            "targets[0] (p1): credentials: no entry 'nope' (known: none defined)",
        ),
        (
            "targets:\n  - {project_id: p1, endpoint: https://x, auth_token: t}\n  - {project_id: p1, endpoint: https://y, auth_token: t}",
            "targets[1] (p1): name 'p1' is used by another target",
        ),
        ("targets:\n  - {project_id: p1, cloud: otc, region: eu-xx}", "unknown otc region 'eu-xx'"),
        (
            "targets:\n  - {name: a, project_id: p1, endpoint: https://x, auth_token: t}\n  - {name: b, project_id: p1, endpoint: https://y, auth_token: t}",
            "targets[1] (b): project_id 'p1' has another target",
        ),
        ("targets:\n  - {project_id: p1}", "MODELARTS_EXPORTER_ENDPOINT (--endpoint) is required"),
        (
            "targets:\n  - {project_id: p1, endpoint: https://x, colour: red}",
            "colour: Extra inputs",
        ),
        ("targets: [\n", "not valid YAML at line"),
        (
            "targets:\n  - {project_id: p1, endpoint: 'https://x:65536'}",
            "targets[0] (p1): endpoint: port '65536' is not a port number",
        ),
        (
            "targets:\n  - {project_id: p1, endpoint: https://x, poll_interval_seconds: .nan}",
            "targets[0] (p1): poll_interval_seconds: Input should be a finite number",
        ),
        (
            "targets:\n  - {project_id: p1, endpoint: https://x, secret_key_file: gone, access_key: A}",
            "SECRET_KEY_FILE: cannot read",
        ),
    ],
)
def test_config_errors_name_file_target_and_field(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path / "bad.yaml", body)
    with pytest.raises(ConfigError) as caught:
        resolve(Settings(config_file=path), environ={})
    message = str(caught.value)
    assert str(path) in message and expected in message, message


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read \(No such file"):
        resolve(Settings(config_file=tmp_path / "missing.yaml"), environ={})


def test_secret_files_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "token", "tok-from-file-9\n")
    monkeypatch.setenv("MODELARTS_EXPORTER_AUTH_TOKEN_FILE", str(tmp_path / "token"))
    settings = Settings(endpoint="https://x", project_id="p1")
    (target,) = resolve(settings, environ={})
    assert target.auth_token is not None
    assert target.auth_token.get_secret_value() == "tok-from-file-9"
    assert "tok-from-file-9" not in repr(settings)


def test_huaweicloud_sdk_variables(tmp_path: Path) -> None:
    environ = {
        "HUAWEICLOUD_SDK_AK": "AKHW",
        "HUAWEICLOUD_SDK_SK": "skhw-123456",
        "HUAWEICLOUD_SDK_PROJECT_ID": "hwproject",
    }
    (target,) = resolve(Settings(cloud="huaweicloud", region="cn-north-4"), environ=environ)
    assert (target.access_key, target.project_id) == ("AKHW", "hwproject")


def test_openstack_variables_give_a_password_login() -> None:
    environ = {
        "OS_AUTH_URL": "https://iam.eu-de.otc.t-systems.com/v3",
        "OS_USERNAME": "dave",
        "OS_PASSWORD": PASSWORD,
        "OS_USER_DOMAIN_NAME": "OTC-EU-DE-00000000001000000001",
        "OS_PROJECT_NAME": "eu-de_ml",
    }
    (target,) = resolve(Settings(endpoint="https://modelarts.example"), environ=environ)
    assert target.username == "dave" and target.project_name == "eu-de_ml"
    assert target.iam_url == "https://iam.eu-de.otc.t-systems.com/v3"


def test_clouds_yaml_from_the_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".config" / "openstack").mkdir(parents=True)
    write(
        home / ".config" / "openstack" / "clouds.yaml",
        f"""
clouds:
  otc:
    region_name: eu-de
    auth:
      auth_url: https://iam.eu-de.otc.t-systems.com/v3
      username: erin
      password: {PASSWORD}
      user_domain_name: OTC-EU-DE-1
      project_id: cafe0001
""",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    (target,) = resolve(Settings(cloud="otc", region="eu-de"), environ={"OS_CLOUD": "otc"})
    assert (target.username, target.project_id) == ("erin", "cafe0001")
    assert target.password is not None and target.password.get_secret_value() == PASSWORD

    with pytest.raises(ConfigError, match="OS_CLOUD=nope names no cloud"):
        resolve(Settings(cloud="otc", region="eu-de"), environ={"OS_CLOUD": "nope"})


def test_exporter_settings_win_over_ambient_credentials_which_are_never_mixed() -> None:
    environ = {"OS_ACCESS_KEY": "AKOS", "OS_SECRET_KEY": "skos-123456", "OS_PROJECT_ID": "osproj"}
    settings = Settings(endpoint="https://x", project_id="mine", auth_token="tok-mine-1234")
    (target,) = resolve(settings, environ=environ)
    assert target.auth_token is not None and target.access_key is None
    assert target.project_id == "mine"
    precedence = {"HUAWEICLOUD_SDK_AK": "AKHW", "HUAWEICLOUD_SDK_SK": "sk-hw-1", **environ}
    (target,) = resolve(Settings(endpoint="https://x", project_id="p"), environ=precedence)
    assert target.access_key == "AKHW"


def test_two_shards_cover_ten_targets_exactly_once(tmp_path: Path) -> None:
    lines = "\n".join(
        f"  - {{project_id: proj{i:02d}, endpoint: https://x, auth_token: tok-{i}-abcdef}}"
        for i in range(10)
    )
    path = write(tmp_path / "ten.yaml", f"targets:\n{lines}\n")
    seen: Counter[str] = Counter()
    for shard in (0, 1):
        settings = Settings(config_file=path, shard=shard, total_shards=2)
        seen.update(t.name for t in resolve(settings, environ={}))
    assert seen == Counter({f"proj{i:02d}": 1 for i in range(10)})
    assert {shard_of(f"proj{i:02d}", 2) for i in range(10)} == {0, 1}


def test_shard_must_be_below_total() -> None:
    with pytest.raises(ValueError, match="SHARD must be below TOTAL_SHARDS"):
        Settings(shard=2, total_shards=2)


def test_environment_is_read_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKENV")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk-env-123")
    assert os.environ["HUAWEICLOUD_SDK_AK"] == "AKENV"
    (target,) = resolve(Settings(endpoint="https://x", project_id="p"))
    assert target.access_key == "AKENV"


def test_the_shipped_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[3] / "docs" / "config.example.yaml"
    # Its secret files do not exist here; replace them by inline values to validate the rest.
    text = example.read_text()
    for line in (
        "secret_key_file: /var/run/secrets/modelarts/otc-secret-key",
        "password_file: /var/run/secrets/modelarts/hw-password",
        "auth_token_file: tokens/swiss",
    ):
        key = line.split(":")[0].removesuffix("_file")
        text = text.replace(line, f"{key}: example-secret-value")
    assert text != example.read_text()
    copy = write(tmp_path / "example.yaml", text)
    targets = resolve(Settings(config_file=copy), environ={})
    assert [t.name for t in targets] == ["otc-research", "hw-training", "otc-swiss"]
    assert targets[0].workspace_id == ("0", "7f3a2b")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"targets:\n  - {project_id: \xff\xfe}\n", "not UTF-8 text (byte 26)"),
        (b"targets: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested too deeply"),
    ],
)
def test_config_file_bytes_that_are_no_yaml_text_are_one_line(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        resolve(Settings(config_file=path), environ={})
    (line,) = str(caught.value).splitlines()
    assert line.startswith(str(path)) and expected in line, line


def test_a_target_without_any_credentials_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^no credentials: set ACCESS_KEY\+SECRET_KEY"):
        resolve(Settings(endpoint="https://x", project_id="p1"), environ={})
    path = write(tmp_path / "t.yaml", "targets:\n  - {project_id: p1, endpoint: https://x}")
    with pytest.raises(ConfigError, match=r"targets\[0\] \(p1\): no credentials"):
        resolve(Settings(config_file=path), environ={})
    ambient = {"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK"}
    (target,) = resolve(Settings(endpoint="https://x", project_id="p1"), environ=ambient)
    assert target.access_key == "AK"
