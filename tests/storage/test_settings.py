"""``StorageSettings``: defaults and ``FLEET_S3_*``."""

from __future__ import annotations

import dataclasses

import pytest

from storage import StorageSettings


def test_defaults() -> None:
    settings = StorageSettings.from_env({})
    assert settings == StorageSettings()
    assert settings.endpoint == "127.0.0.1:9000"
    assert settings.bucket == "fooocus-fleet"
    assert settings.secure is False


def test_from_env_reads_every_variable() -> None:
    settings = StorageSettings.from_env(
        {
            "FLEET_S3_ENDPOINT": "minio.internal:9000",
            "FLEET_S3_ACCESS_KEY": "ak",
            "FLEET_S3_SECRET_KEY": "sk",
            "FLEET_S3_BUCKET": "images",
            "FLEET_S3_SECURE": "true",
            "FLEET_S3_REGION": "eu-west-1",
        }
    )
    assert (settings.endpoint, settings.access_key, settings.secret_key) == (
        "minio.internal:9000",
        "ak",
        "sk",
    )
    assert (settings.bucket, settings.secure, settings.region) == ("images", True, "eu-west-1")


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_S3_BUCKET", "from-os-environ")
    assert StorageSettings.from_env().bucket == "from-os-environ"


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("Yes", True), ("on", True), ("0", False), ("", False)]
)
def test_secure_flag(raw: str, expected: bool) -> None:
    assert StorageSettings.from_env({"FLEET_S3_SECURE": raw}).secure is expected


def test_secure_flag_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="FLEET_S3_SECURE"):
        StorageSettings.from_env({"FLEET_S3_SECURE": "maybe"})


def test_frozen_and_secret_not_in_repr() -> None:
    settings = StorageSettings(secret_key="hunter2")
    assert "hunter2" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.bucket = "other"  # type: ignore[misc]
