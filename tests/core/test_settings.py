"""Bad configuration stops the process at start, with a message that names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_django(
    tmp_path: Path, *command: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "REELHOUSE_", "SECURE_", "AXES_"))
    }
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        clean.pop(name, None)
    clean.update({"REELHOUSE_VAR_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", *(command or ("check",))],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


# The least a production deployment must set (values as in .ci/run's deploy check).
PRODUCTION = {
    "REELHOUSE_ENV": "production",
    "SECRET_KEY": "k3Yq9vPz2mW7xR4tL8nB1cF6hJ0sD5gA-uE_iO3pT9yV2wX7zQ",
    "ALLOWED_HOSTS": "reelhouse.example",
    "DATABASE_URL": "postgres://reelhouse:secret@db.example:5432/reelhouse",
    "REDIS_URL": "redis://redis.example:6379/0",
}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "ture"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://db/reelhouse"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"REELHOUSE_ENV": "staging"}, "REELHOUSE_ENV"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "k3Yq9vPz2mW7xR4tL8nB1cF6hJ0sD5gA"}, "SECRET_KEY"),  # 32: W009 wants 50
        ({"SECRET_KEY": "ab" * 30}, "SECRET_KEY"),  # long, but two characters
        ({"SECRET_KEY": "django-insecure-" + "k3Yq9vPz2mW7xR4tL8nB1cF6hJ0sD5gA-uE"}, "SECRET_KEY"),
        ({"PROVIDER_READ_TIMEOUT": "soon"}, "PROVIDER_READ_TIMEOUT"),
        ({"REELHOUSE_ENV": "production"}, "SECRET_KEY"),
        (
            {"REELHOUSE_ENV": "production", "SECRET_KEY": PRODUCTION["SECRET_KEY"], "ALLOWED_HOSTS": "a.example"},
            "DATABASE_URL",
        ),
        # Debug pages show the settings, passwords included: never in production.
        ({**PRODUCTION, "DEBUG": "1"}, "DEBUG"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS"),
        ({"REELHOUSE_PROXY_COUNT": "-1"}, "REELHOUSE_PROXY_COUNT"),
        ({"REELHOUSE_SIGNIN_LOCKOUT_MINUTES": "0"}, "REELHOUSE_SIGNIN_LOCKOUT_MINUTES"),
        ({"REELHOUSE_DELAY_SCALE": "-1"}, "REELHOUSE_DELAY_SCALE"),
        ({"REELHOUSE_DELAY_SCALE": "none"}, "REELHOUSE_DELAY_SCALE"),
        # Object storage: incomplete or wrong, never silently local.
        ({"REELHOUSE_STORAGE": "s4"}, "REELHOUSE_STORAGE"),
        ({"REELHOUSE_STORAGE": "s3"}, "REELHOUSE_S3_BUCKET"),
        ({"REELHOUSE_S3_ENDPOINT_URL": "http://minio:9000"}, "REELHOUSE_S3_BUCKET"),
        ({"REELHOUSE_S3_BUCKET": "Media_Bucket"}, "REELHOUSE_S3_BUCKET"),
        ({"REELHOUSE_S3_BUCKET": "media", "REELHOUSE_S3_ENDPOINT_URL": "minio:9000"},
         "REELHOUSE_S3_ENDPOINT_URL"),
        ({"REELHOUSE_S3_BUCKET": "media", "REELHOUSE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE"},
         "REELHOUSE_S3_SECRET_ACCESS_KEY"),
        ({"REELHOUSE_S3_BUCKET": "media", "REELHOUSE_S3_ADDRESSING_STYLE": "dns"},
         "REELHOUSE_S3_ADDRESSING_STYLE"),
        ({"REELHOUSE_MEDIA_SIGNED_URLS": "1"}, "REELHOUSE_MEDIA_SIGNED_URLS"),
        ({"REELHOUSE_STORAGE": "s3", "REELHOUSE_S3_BUCKET": "media",
          "REELHOUSE_MEDIA_SIGNED_URL_SECONDS": "5"}, "REELHOUSE_MEDIA_SIGNED_URL_SECONDS"),
    ],
)
def test_bad_values_fail_loudly(tmp_path: Path, env: dict[str, str], named: str) -> None:
    result = start_django(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_a_half_given_s3_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    result = start_django(
        tmp_path, REELHOUSE_S3_BUCKET="media", REELHOUSE_S3_SECRET_ACCESS_KEY=secret
    )
    assert result.returncode != 0 and "REELHOUSE_S3_ACCESS_KEY_ID" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_s3_media_starts_with_a_complete_configuration(tmp_path: Path) -> None:
    script = (
        "from django.conf import settings; d = settings.CONTENT_SECURITY_POLICY['DIRECTIVES'];"
        "print(settings.STORAGES['default']['BACKEND'], d['media-src'], d['img-src'])"
    )
    result = start_django(
        tmp_path,
        "shell",
        "-c",
        script,
        REELHOUSE_STORAGE="s3",
        REELHOUSE_S3_BUCKET="reelhouse-media",
        REELHOUSE_S3_ENDPOINT_URL="https://account.r2.cloudflarestorage.com",
        REELHOUSE_S3_REGION="auto",
        REELHOUSE_MEDIA_SIGNED_URLS="1",
    )
    assert result.returncode == 0, result.stderr
    assert "workspace.core.storage.MediaS3Storage" in result.stdout
    # Pages may play and show what a signed URL redirects them to: that store, nothing else.
    assert result.stdout.count("https://account.r2.cloudflarestorage.com") == 2


def test_local_mode_needs_no_configuration_and_keeps_its_secret_key(tmp_path: Path) -> None:
    assert start_django(tmp_path).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert start_django(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_production_passes_the_deploy_check_with_the_least_configuration(tmp_path: Path) -> None:
    result = start_django(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_are_https_only(tmp_path: Path) -> None:
    script = (
        "from django.conf import settings as s;"
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.DEBUG,"
        " getattr(s, 'SECURE_PROXY_SSL_HEADER', None), s.REELHOUSE_PROXY_COUNT)"
    )
    result = start_django(tmp_path, "shell", "-c", script, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "31536000", "True", "True", "True", "False", "None", "0"]

    behind_proxy = start_django(
        tmp_path,
        "shell",
        "-c",
        script,
        **PRODUCTION,
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        REELHOUSE_PROXY_COUNT="1",
    )
    assert behind_proxy.returncode == 0, behind_proxy.stderr
    assert behind_proxy.stdout.strip().splitlines()[-1].split()[-3:] == ["('HTTP_X_FORWARDED_PROTO',", "'https')", "1"]


def test_local_state_directory_is_created_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert start_django(state).returncode == 0
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "secret_key").stat().st_mode & 0o777 == 0o600
    # The SQLite file exists before Django opens it, private from its first byte.
    assert (state / "reelhouse.sqlite3").stat().st_mode & 0o777 == 0o600
