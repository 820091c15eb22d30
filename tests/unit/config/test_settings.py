"""Settings: environment and flags, readable one-line errors, secrets never shown."""

from __future__ import annotations

import os

import pytest

from modelarts_exporter.config.addresses import parse_listen_address
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load, unknown_variables
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from support.secrets import SECRET_KEY

SECRET = SECRET_KEY


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MODELARTS_EXPORTER_"):
            monkeypatch.delenv(name)


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELARTS_EXPORTER_ENDPOINT", "https://modelarts.example/")
    monkeypatch.setenv("MODELARTS_EXPORTER_PROJECT_ID", "p1")
    monkeypatch.setenv("MODELARTS_EXPORTER_WORKSPACE_ID", "ws1, ws2")
    monkeypatch.setenv("MODELARTS_EXPORTER_LOG_LEVEL", "debug")
    settings = load()
    assert settings.endpoint == "https://modelarts.example"
    assert settings.workspace_id == ("ws1", "ws2")
    assert settings.log_level == "DEBUG"
    assert settings.poll_interval_seconds == 60.0


def test_flags_have_the_same_names_and_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELARTS_EXPORTER_PAGE_SIZE", "10")
    settings = load(["--page-size", "50", "--pagination", "page", "--no-verify-tls"])
    assert (settings.page_size, settings.pagination, settings.verify_tls) == (50, "page", False)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--page-size", "0"], "MODELARTS_EXPORTER_PAGE_SIZE: Input should be greater than"),
        (["--listen-address", "9878"], "MODELARTS_EXPORTER_LISTEN_ADDRESS: expected host:port"),
        (["--endpoint", "ftp://x"], "MODELARTS_EXPORTER_ENDPOINT: expected an http(s) URL"),
        (["--pagination", "pages"], "MODELARTS_EXPORTER_PAGINATION: Input should be"),
        (["--bogus", "1"], "unrecognized arguments: --bogus"),
        (["--ca-bundle", "/nonexistent/ca.pem"], "no such file: /nonexistent/ca.pem"),
        (["--access-key", "AK"], "ACCESS_KEY and SECRET_KEY go together"),
        (
            ["--auth-token", SECRET, "--access-key", "AK", "--secret-key", SECRET],
            "give one kind of credentials",
        ),
    ],
)
def test_bad_settings_are_one_readable_line(args: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(args)
    message = str(caught.value)
    assert expected in message
    assert SECRET not in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--endpoint", "https://h:99999"], "MODELARTS_EXPORTER_ENDPOINT: port '99999' is not a"),
        (["--endpoint", "https://h:0/"], "MODELARTS_EXPORTER_ENDPOINT: port '0' is not a port"),
        (["--endpoint", "http://h:https"], "MODELARTS_EXPORTER_ENDPOINT: port 'https' is not a"),
        (["--iam-endpoint", "https://[::1]:65536/v3"], "MODELARTS_EXPORTER_IAM_ENDPOINT: port"),
    ],
)
def test_a_port_out_of_range_in_an_endpoint_is_named(args: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(args)
    assert str(caught.value).startswith(expected), caught.value
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["https://h:443", "https://[::1]:8443/x", "http://h", "http://[::1]"]
)
def test_endpoints_with_a_valid_port_or_none_are_accepted(url: str) -> None:
    assert load(["--endpoint", url]).endpoint == url.rstrip("/")


@pytest.mark.parametrize(
    "name",
    ["poll_interval_seconds", "poll_timeout_seconds", "request_timeout_seconds", "ready_intervals"],
)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "infinity"])
def test_a_float_setting_that_is_not_finite_says_so(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"MODELARTS_EXPORTER_{name.upper()}", value)
    with pytest.raises(ConfigError) as caught:
        load()
    message = str(caught.value)
    assert message.startswith(f"MODELARTS_EXPORTER_{name.upper()}: Input should be a finite number")
    assert "86400" not in message and "\n" not in message


def test_wrong_type_for_a_secret_never_echoes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELARTS_EXPORTER_SECURITY_TOKEN", SECRET)
    with pytest.raises(ConfigError) as caught:
        load()
    assert "SECURITY_TOKEN needs ACCESS_KEY" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_repr_and_effective_configuration_mask_secrets() -> None:
    settings = Settings(access_key="AK", secret_key=SECRET, security_token=SECRET)  # type: ignore[arg-type]
    assert SECRET not in repr(settings)
    shown = dict(settings.effective())
    assert shown["MODELARTS_EXPORTER_SECRET_KEY"] == "**********"
    assert shown["MODELARTS_EXPORTER_AUTH_TOKEN"] == "(not set)"
    assert SECRET not in str(shown)


def test_polling_requires_endpoint_and_project() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings().require_target()
    assert "MODELARTS_EXPORTER_ENDPOINT (--endpoint) is required" in str(caught.value)
    assert "MODELARTS_EXPORTER_PROJECT_ID" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("0.0.0.0:9878", ("0.0.0.0", 9878)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_address_forms(text: str, parsed: tuple[str, int]) -> None:
    assert parse_listen_address(text) == parsed


def test_cloud_and_region_give_both_endpoints() -> None:
    otc = Settings(cloud="otc", region="eu-de", project_id="p1")
    assert otc.modelarts_url == "https://modelarts.eu-de.otc.t-systems.com"
    assert otc.iam_url == "https://iam.eu-de.otc.t-systems.com/v3"
    hw = Settings(cloud="huaweicloud", region="ap-southeast-1", project_id="p1")
    assert hw.modelarts_url == "https://modelarts.ap-southeast-1.myhuaweicloud.cn"
    assert hw.iam_url == "https://iam.ap-southeast-1.myhuaweicloud.com/v3"
    explicit = Settings(
        cloud="otc", region="eu-de", endpoint="https://proxy.example", project_id="p1"
    )
    assert explicit.modelarts_url == "https://proxy.example"
    assert explicit.iam_url == "https://iam.eu-de.otc.t-systems.com/v3"


def test_a_typo_in_the_region_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--cloud", "huaweicloud", "--region", "cn-nort-4"])
    message = str(caught.value)
    assert "unknown huaweicloud region 'cn-nort-4'" in message
    assert "cn-north-4" in message and "ENDPOINT and IAM_ENDPOINT" in message


def test_unlisted_region_works_with_explicit_endpoints() -> None:
    settings = load(
        [
            *("--cloud", "otc", "--region", "eu-ch2"),
            *("--endpoint", "https://modelarts.eu-ch2.sc.otc.t-systems.com"),
            *("--iam-endpoint", "https://iam-pub.eu-ch2.sc.otc.t-systems.com/v3"),
        ]
    )
    assert settings.modelarts_url == "https://modelarts.eu-ch2.sc.otc.t-systems.com"


def test_password_login_needs_user_and_domain_and_accepts_a_project_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--username", "alice", "--password", SECRET])
    assert "USERNAME, PASSWORD and DOMAIN_NAME" in str(caught.value)
    assert SECRET not in str(caught.value)
    settings = load(
        [
            *("--cloud", "otc", "--region", "eu-de", "--username", "alice"),
            *("--password", SECRET, "--domain-name", "OTC-EU-DE-000"),
            *("--project-name", "eu-de_ml"),
        ]
    )
    (target,) = resolve(settings, environ={})
    assert target.project_id is None and target.project_name == "eu-de_ml"
    assert SECRET in settings.secrets()


def test_a_mistyped_variable_is_named_with_the_closest_real_one_never_its_value() -> None:
    environ = {
        "MODELARTS_EXPORTER_PROJCT_ID": SECRET,
        "modelarts_exporter_auth_tokn_file": SECRET,
        "MODELARTS_EXPORTER_ZZZZ": SECRET,
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "HOME": "/root",
    }
    lines = unknown_variables(environ)
    assert lines == [
        "MODELARTS_EXPORTER_PROJCT_ID is not a setting and is ignored (value not shown); "
        "did you mean MODELARTS_EXPORTER_PROJECT_ID?",
        "MODELARTS_EXPORTER_ZZZZ is not a setting and is ignored (value not shown)",
        "modelarts_exporter_auth_tokn_file is not a setting and is ignored (value not shown); "
        "did you mean MODELARTS_EXPORTER_AUTH_TOKEN_FILE?",
    ]
    assert SECRET not in str(lines)
