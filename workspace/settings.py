"""Reelhouse settings: one module, driven by environment variables.

``REELHOUSE_ENV=local`` (the default) gives a zero-setup machine: SQLite under ``var/``, an
embedded Redis server on a unix socket, the provider simulator when no provider key is set and a
generated secret key kept in ``var/``. ``REELHOUSE_ENV=production`` refuses to start without
``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and ``REDIS_URL``. Every bad value stops the
process with a message that names the variable (see ``workspace/env.py``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from workspace.env import env_bool, env_choice, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

REELHOUSE_ENV = env_choice("REELHOUSE_ENV", "local", {"local", "production"})
LOCAL = REELHOUSE_ENV == "local"

VAR_DIR = Path(env_str("REELHOUSE_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# The run command turns DEBUG on for its local mode; everywhere else it is off unless asked for.
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfigured(
                "SECRET_KEY is too short: use at least 32 random characters."
            )
        return configured
    if not LOCAL:
        raise ImproperlyConfigured("SECRET_KEY must be set when REELHOUSE_ENV=production.")
    # Local mode keeps one generated key so sessions survive restarts of the run command.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if LOCAL else [])
if not LOCAL and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when REELHOUSE_ENV=production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_rq",
    "workspace.core",
    "workspace.accounts",
    "workspace.projects",
    "workspace.providers",
    "workspace.generations",
    "workspace.billing",
    "workspace.simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Lets the audit log name who changed a budget, price, channel or membership.
    "workspace.billing.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "workspace.urls"
WSGI_APPLICATION = "workspace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    None,
    schemes={"postgres", "postgresql", "pgsql", "sqlite"},
)
if DATABASE_URL is None and not LOCAL:
    raise ImproperlyConfigured("DATABASE_URL must be set when REELHOUSE_ENV=production.")
_db = dj_database_url.parse(DATABASE_URL or f"sqlite:///{VAR_DIR / 'reelhouse.sqlite3'}")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions make concurrent writers queue for the lock instead of failing
    # mid-transaction, which is what keeps quota reservations exact on SQLite.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so forked RQ work horses in tests see the same test database; one per
    # test run so two runs on one machine never share it.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-reelhouse-{os.getpid()}.sqlite3")}
else:
    _db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and RQ ---------------------------------------------------------------------------
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis" / "redis.sock"
REDIS_URL = env_url("REDIS_URL", None, schemes={"redis", "rediss", "unix"})
if REDIS_URL is None:
    if not LOCAL:
        raise ImproperlyConfigured("REDIS_URL must be set when REELHOUSE_ENV=production.")
    REDIS_URL = f"unix://{EMBEDDED_REDIS_SOCKET}"
USES_EMBEDDED_REDIS = env_str("REDIS_URL") is None

RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    "dispatch": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
}
# How many dispatch lanes send creates for one channel at once; more lanes reach high limits
# when a provider is slow to answer a create.
REELHOUSE_DISPATCH_LANES = env_int("REELHOUSE_DISPATCH_LANES", 2, minimum=1, maximum=32)
RQ = {
    "WORKER_CLASS": "workspace.core.rq.ForkSafeWorker",
    # Reelhouse enqueues in transaction.on_commit itself (workspace/core/rq.py); deferring
    # again inside django-rq would hide enqueues from code that already runs after commit.
    "COMMIT_MODE": "auto",
    "DEFAULT_RESULT_TTL": 3600,
}
RQ_SHOW_ADMIN_LINK = True

# --- Files ----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("REELHOUSE_MEDIA_ROOT", str(VAR_DIR / "media")) or "").resolve()
STORAGES = {
    # Generated videos are private: there is no public MEDIA_URL; an access-checked view
    # streams them to project members.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": "/nonexistent/"},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the source folders so a fresh checkout needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Auth -----------------------------------------------------------------------------------
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not LOCAL)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Locale ---------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

# --- Providers ------------------------------------------------------------------------------
# When a channel's key variable (e.g. OPENAI_API_KEY) is unset, the channel talks to the
# provider simulator at this address instead: the simulator is the default provider.
SIMULATOR_URL = env_url("REELHOUSE_SIMULATOR_URL", "http://127.0.0.1:8765", schemes={"http"})
# Benchmarks only: run limiter periods and scheduled waits this many times faster, matching a
# simulator started with the same --time-scale. 1 everywhere else.
REELHOUSE_TIME_SCALE = env_float("REELHOUSE_TIME_SCALE", 1.0, minimum=1.0, maximum=1000.0)
# Encrypts provider keys entered in the admin; derived from SECRET_KEY when unset.
REELHOUSE_KEY_ENCRYPTION_KEY = env_str("REELHOUSE_KEY_ENCRYPTION_KEY")
PROVIDER_CONNECT_TIMEOUT = float(env_int("PROVIDER_CONNECT_TIMEOUT", 10, minimum=1))
PROVIDER_READ_TIMEOUT = float(env_int("PROVIDER_READ_TIMEOUT", 60, minimum=1))
PROVIDER_DOWNLOAD_TIMEOUT = float(env_int("PROVIDER_DOWNLOAD_TIMEOUT", 300, minimum=1))

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        # httpx logs every request line at INFO; URLs are harmless but it is noise in workers.
        "httpx": {"level": "WARNING"},
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "reelhouse@localhost")
