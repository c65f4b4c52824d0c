"""The alerting section: what it accepts, what it refuses and how it says so, and its secrets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from netwatch.config.alerting import AlertingConfig, EmailChannel, WebhookChannel

MAIL = {"type": "email", "host": "smtp.qnm.example", "from": "noc@qnm.example", "to": ["a@qnm.example"]}
HOOK = {"type": "webhook", "url": "https://alert.qnm.example/hook"}


def test_a_full_section_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "pw-from-env")
    cfg = AlertingConfig.model_validate(
        {
            "language": "en",
            "repeat_interval": "2h30m",
            "channels": {
                "ops-webhook": {**HOOK, "bearer_token": "t0ken"},
                "ops-mail": {**MAIL, "port": 587, "username": "noc", "password": "${SMTP_PASSWORD}"},
            },
            "routes": [
                {
                    "match": {"district": ["TK"], "kind": ["commune"]},
                    "channels": ["ops-mail"],
                    "continue": True,
                }
            ],
        }
    )
    mail = cfg.channels["ops-mail"]
    assert isinstance(mail, EmailChannel) and mail.password is not None
    assert mail.password.get_secret_value() == "pw-from-env"
    assert isinstance(cfg.channels["ops-webhook"], WebhookChannel)
    assert cfg.repeat_interval == timedelta(hours=2, minutes=30)
    assert cfg.routes[0].continue_ is True
    assert "pw-from-env" not in repr(cfg) and "t0ken" not in repr(cfg)


def test_defaults() -> None:
    cfg = AlertingConfig.model_validate({})
    assert (cfg.language, cfg.repeat_interval, cfg.notify_degraded, cfg.notify_flapping) == (
        "vi",
        timedelta(hours=4),
        False,
        True,
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"channels": {"x": {**HOOK, "colour": "red"}}}, "Extra inputs are not permitted"),
        ({"channels": {"x": {**HOOK, "url": "ftp://h/x"}}}, "must be an http:// or https:// URL"),
        ({"channels": {"x": {**HOOK, "url": "https://u:p@h/x"}}}, "put credentials in basic_auth"),
        ({"channels": {"x": {"type": "sms"}}}, "does not match any of the expected tags"),
        ({"channels": {"x": {**MAIL, "username": "noc"}}}, "username and password go together"),
        (
            {"channels": {"x": {**MAIL, "starttls": False, "username": "u", "password": "p"}}},
            "AUTH without TLS would send the password in clear",
        ),
        ({"channels": {"x": {**MAIL, "to": ["not-an-address"]}}}, "is not a mail address"),
        (
            {"channels": {"x": {**MAIL, "password": "${NO_SUCH_VAR_NW}", "username": "u"}}},
            "NO_SUCH_VAR_NW is not set",
        ),
        (
            {"channels": {"x": HOOK}, "routes": [{"channels": ["y"]}]},
            "routes[0].channels: no channel named 'y'",
        ),
        ({"channels": {"x": HOOK}, "default_channels": ["z"]}, "default_channels: no channel named 'z'"),
        ({"repeat_interval": "sometimes"}, "cannot read 'sometimes' as a duration"),
        ({"language": "fr"}, "Input should be 'vi' or 'en'"),
    ],
)
def test_mistakes_are_named(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AlertingConfig.model_validate(section)
    assert message in str(caught.value)


def test_a_secret_is_not_echoed_in_an_error() -> None:
    with pytest.raises(ValidationError) as caught:
        AlertingConfig.model_validate({"channels": {"x": {**MAIL, "password": "hunter2-secret"}}})
    assert "hunter2-secret" not in str(caught.value)


def test_json_schema_describes_every_field() -> None:
    schema = AlertingConfig.model_json_schema()
    for name, model in schema["$defs"].items():
        for field, spec in model.get("properties", {}).items():
            assert "description" in spec, f"{name}.{field} has no description"
