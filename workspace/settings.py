"""Reelhouse settings: one module, driven by environment variables.

``REELHOUSE_ENV=local`` (the default) gives a zero-setup machine: SQLite under ``var/``, an
embedded Redis server on a unix socket, the provider simulator when no provider key is set and a
generated secret key kept in ``var/``. ``REELHOUSE_ENV=production`` refuses to start without
``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and ``REDIS_URL``. Every bad value stops the
process with a message that names the variable (see ``workspace/env.py``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from workspace.env import env_bool, env_choice, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent

REELHOUSE_ENV = env_choice("REELHOUSE_ENV", "local", {"local", "production"})
LOCAL = REELHOUSE_ENV == "local"

VAR_DIR = Path(env_str("REELHOUSE_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var").resolve()
if not VAR_DIR.exists():
    # Local state (SQLite, secret key, media, the embedded Redis socket) is the owner's alone.
    VAR_DIR.mkdir(mode=0o700, parents=True)
    VAR_DIR.chmod(0o700)

# Off unless the operator asks for it, and never in production: the debug page shows settings.
DEBUG = env_bool("DEBUG", False)
if DEBUG and not LOCAL:
    raise ImproperlyConfigured(
        "DEBUG must be off when REELHOUSE_ENV=production: its error pages show the settings, "
        "database and Redis passwords included. Unset DEBUG."
    )


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        # Django's own deploy check (security.W009) asks this much; refusing less at start means a
        # weak key is never found only by whoever runs `check --deploy`.
        weak = len(configured) < 50 or len(set(configured)) < 5
        if weak or configured.startswith("django-insecure-"):
            raise ImproperlyConfigured(
                "SECRET_KEY is too weak: use at least 50 random characters, e.g. "
                "python3 -c \"import secrets; print(secrets.token_urlsafe(50))\"."
            )
        return configured
    if not LOCAL:
        raise ImproperlyConfigured("SECRET_KEY must be set when REELHOUSE_ENV=production.")
    # Local mode keeps one generated key so sessions survive restarts of the run command.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        # Created private, so the key is never readable by others even for a moment.
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process started at the same moment wrote it
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
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
    "csp",
    "axes",
    "workspace.core",
    "workspace.accounts",
    "workspace.projects",
    "workspace.providers",
    "workspace.generations",
    "workspace.billing",
    "workspace.api",
    "workspace.reviews",
    "workspace.sharing",
    "workspace.ops",
    "workspace.simulator",
]

MIDDLEWARE = [
    # First: load balancers and Prometheus reach /healthz, /readyz and /metrics by address over
    # plain HTTP, so these answer before the host check, the HTTPS redirect and the session.
    "workspace.ops.middleware.OperationsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Lets the audit log name who changed a budget, price, channel or membership.
    "workspace.billing.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    {
        # The gallery card only (drawn 48 times a page): generations/templatetags/jinja_env.py
        # says why.
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "workspace.generations.templatetags.jinja_env.environment"},
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
    # SQLite creates its file with the umask's mode and gives its -wal/-shm files the same mode
    # as the database file, so creating it empty and private first keeps all three private.
    _sqlite_file = Path(_db["NAME"])
    if _db["NAME"] != ":memory:" and not _sqlite_file.exists() and _sqlite_file.parent.is_dir():
        _sqlite_file.touch(mode=0o600)
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
    # libpq waits for ever on an unreachable server by default; a bounded connect lets the
    # readiness check (and every request) answer "database unreachable" instead of hanging.
    _db.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=300)
    )
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
# Days a deleted project stays restorable (hidden) before the scheduler's sweep purges it.
REELHOUSE_PROJECT_DELETE_GRACE_DAYS = env_int(
    "REELHOUSE_PROJECT_DELETE_GRACE_DAYS", 7, minimum=0, maximum=365
)
# Seconds a web process answers its projects' live polls (unfiltered) from one read of the
# rows changed lately or in flight (workspace/generations/selectors.py); 0 reads per poll.
REELHOUSE_LIVE_ROWS_SECONDS = 1.0
REELHOUSE_DISPATCH_LANES = env_int("REELHOUSE_DISPATCH_LANES", 2, minimum=1, maximum=32)
# How RQ workers run a job: in a forked work horse (default: isolation from a job that leaks or
# crashes) or in the worker process (no fork and no new database connection per job: half the
# CPU per provider request; not the default until the 429s seen with it in the 50 RPM backlog
# benchmark are explained, docs/benchmarks.md). See workspace/core/rq.py.
REELHOUSE_RQ_WORKER = env_choice("REELHOUSE_RQ_WORKER", "fork", {"in-process", "fork"})
RQ_WORKER_CLASSES = {
    "in-process": "workspace.core.rq.InProcessWorker",
    "fork": "workspace.core.rq.ForkSafeWorker",
}
RQ = {
    "WORKER_CLASS": RQ_WORKER_CLASSES[REELHOUSE_RQ_WORKER],
    # Reelhouse enqueues in transaction.on_commit itself (workspace/core/rq.py); deferring
    # again inside django-rq would hide enqueues from code that already runs after commit.
    "COMMIT_MODE": "auto",
    "DEFAULT_RESULT_TTL": 3600,
}
# The dashboard can empty queues: it lives at admin/rq/ for superusers only (workspace/urls.py).
# django-rq's own admin link would register the same views again for every staff account.
RQ_SHOW_ADMIN_LINK = False

# --- Files ----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env_str("REELHOUSE_MEDIA_ROOT", str(VAR_DIR / "media")) or "").resolve()
# Where media lives: "local" (files under MEDIA_ROOT, the zero-setup default) or "s3" (a bucket
# on any S3-compatible store: AWS S3, MinIO, Cloudflare R2...). The bucket's variables may be set
# while media is still local: `manage.py media_move --to s3` then copies it there first.
REELHOUSE_STORAGE = env_choice("REELHOUSE_STORAGE", "local", {"local", "s3"})
_S3_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_media_storage(*, required: bool) -> dict[str, object] | None:
    """The S3 media store's STORAGES entry from the REELHOUSE_S3_* variables (None when no
    bucket is named and none is ``required``); the storage tests build theirs with it too."""
    bucket = env_str("REELHOUSE_S3_BUCKET")
    named = [
        name
        for name in (
            "REELHOUSE_S3_ENDPOINT_URL",
            "REELHOUSE_S3_REGION",
            "REELHOUSE_S3_ACCESS_KEY_ID",
            "REELHOUSE_S3_SECRET_ACCESS_KEY",
            "REELHOUSE_S3_ADDRESSING_STYLE",
            "REELHOUSE_S3_PREFIX",
        )
        if env_str(name) is not None
    ]
    if bucket is None:
        if required or named:
            raise ImproperlyConfigured(
                "REELHOUSE_S3_BUCKET must be set"
                + (" when REELHOUSE_STORAGE=s3." if required else
                   f" when {', '.join(named)} {'is' if len(named) == 1 else 'are'} set.")
            )
        return None
    if not _S3_BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise ImproperlyConfigured(
            f"REELHOUSE_S3_BUCKET={bucket!r} is not a bucket name: 3-63 lowercase letters, "
            "digits, dots and hyphens, starting and ending with a letter or digit."
        )
    endpoint = env_url("REELHOUSE_S3_ENDPOINT_URL", None, schemes={"http", "https"})
    access_key = env_str("REELHOUSE_S3_ACCESS_KEY_ID")
    secret_key = env_str("REELHOUSE_S3_SECRET_ACCESS_KEY")
    if (access_key is None) != (secret_key is None):
        # Never the values themselves: this message reaches logs.
        raise ImproperlyConfigured(
            "REELHOUSE_S3_ACCESS_KEY_ID and REELHOUSE_S3_SECRET_ACCESS_KEY go together: set "
            "both, or neither to use the machine's AWS credentials (instance role, "
            "AWS_PROFILE, ~/.aws)."
        )
    prefix = (env_str("REELHOUSE_S3_PREFIX", "") or "").strip("/")
    if ".." in prefix.split("/"):
        raise ImproperlyConfigured("REELHOUSE_S3_PREFIX may not contain '..'.")
    return {
        "BACKEND": "workspace.core.storage.MediaS3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            # R2 wants "auto"; MinIO accepts any; AWS needs the bucket's own region.
            "region_name": env_str("REELHOUSE_S3_REGION"),
            "access_key": access_key,
            "secret_key": secret_key,
            # "path" for MinIO and most self-hosted stores (bucket in the path, no DNS per
            # bucket); "virtual" for AWS buckets with dots avoided; "auto" lets botocore pick.
            "addressing_style": env_choice(
                "REELHOUSE_S3_ADDRESSING_STYLE", "auto", {"auto", "path", "virtual"}
            ),
            "location": prefix,
            "signature_version": "s3v4",
            # Private objects, whatever the bucket's default: members reach files only
            # through the access-checked views.
            "default_acl": None,
            "querystring_auth": True,
            # Two saves under one name keep both, as on local files (Django's default), instead
            # of the later silently replacing the earlier.
            "file_overwrite": False,
            # A file opened whole (a source video sent to a provider) spills to a temporary
            # file past this size instead of growing in memory (django-storages: no limit).
            "max_memory_size": 8 * 1024 * 1024,
        },
    }


_MEDIA_S3 = s3_media_storage(required=REELHOUSE_STORAGE == "s3")
_MEDIA_LOCAL = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": "/nonexistent/"},
}
STORAGES = {
    # Generated videos are private: there is no public MEDIA_URL; an access-checked view
    # streams them to project members (or redirects them to a signed URL, below).
    "default": _MEDIA_S3 if REELHOUSE_STORAGE == "s3" else _MEDIA_LOCAL,
    # Both stores by name, whichever is the default, for `manage.py media_move`.
    "media-local": _MEDIA_LOCAL,
    **({"media-s3": _MEDIA_S3} if _MEDIA_S3 is not None else {}),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# With media on S3: answer a member's GET for a file (after the access check) with a redirect
# to a signed URL valid this many seconds, so the bytes flow from the store, not through the
# web workers. Off: the web workers stream them (Range still fetches only the asked bytes).
REELHOUSE_MEDIA_SIGNED_URLS = env_bool("REELHOUSE_MEDIA_SIGNED_URLS", False)
if REELHOUSE_MEDIA_SIGNED_URLS and REELHOUSE_STORAGE != "s3":
    raise ImproperlyConfigured(
        "REELHOUSE_MEDIA_SIGNED_URLS=1 needs REELHOUSE_STORAGE=s3: local files have no URL."
    )
REELHOUSE_MEDIA_SIGNED_URL_SECONDS = env_int(
    "REELHOUSE_MEDIA_SIGNED_URL_SECONDS", 300, minimum=10, maximum=7 * 24 * 3600
)


def _store_origins(store: dict[str, object]) -> list[str]:
    """Where signed URLs point (path- or virtual-host-style), for the pages' CSP: a <video> or
    <img> following a redirect to another origin is blocked unless the policy names it."""
    options: dict[str, str | None] = store["OPTIONS"]  # type: ignore[assignment]
    bucket = options["bucket_name"]
    if options["endpoint_url"]:
        endpoint = urlparse(options["endpoint_url"])
        return [f"{endpoint.scheme}://{endpoint.netloc}", f"{endpoint.scheme}://{bucket}.{endpoint.netloc}"]
    region = options["region_name"] or "us-east-1"
    return [
        f"https://{bucket}.s3.{region}.amazonaws.com",
        f"https://s3.{region}.amazonaws.com",
        f"https://{bucket}.s3.amazonaws.com",
        "https://s3.amazonaws.com",
    ]


_SIGNED_URL_ORIGINS = (
    _store_origins(_MEDIA_S3) if REELHOUSE_MEDIA_SIGNED_URLS and _MEDIA_S3 is not None else []
)
# Stored videos and thumbnails, and the folders holding them, are the owner's alone.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
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

# Sign-in throttling (django-axes) on our sign-in page and the admin's: a username is locked
# for one address after repeated failures; other addresses and other usernames are unaffected.
AUTHENTICATION_BACKENDS = [
    "workspace.accounts.throttle.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("REELHOUSE_SIGNIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("REELHOUSE_SIGNIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "workspace.accounts.throttle.lockout_response"
# The same trusted client address as everywhere else (REELHOUSE_PROXY_COUNT below).
AXES_CLIENT_IP_CALLABLE = "workspace.accounts.throttle.client_address"

# --- HTTPS, proxies and browser policies ----------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not LOCAL)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if LOCAL else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not LOCAL)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: the header (in request.META form) the proxy sets to "https",
# e.g. HTTP_X_FORWARDED_PROTO. Only set it when the proxy overwrites that header on every request.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header is not None:
    if not re.fullmatch(r"HTTP_[A-Z0-9_]+", _proxy_ssl_header):
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER={_proxy_ssl_header!r} is not a request header in "
            "request.META form, such as HTTP_X_FORWARDED_PROTO."
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https")
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
# How many trusted proxies append to X-Forwarded-For in front of Reelhouse; 0 (the default)
# means the client address is the connection's own (REMOTE_ADDR) and the header is ignored.
REELHOUSE_PROXY_COUNT = env_int("REELHOUSE_PROXY_COUNT", 0, minimum=0, maximum=10)

# Preloading commits the whole domain to HTTPS in browsers' built-in lists: the operator's
# choice (SECURE_HSTS_PRELOAD=1), so check --deploy does not nag when it is left off.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# No inline script or style anywhere; stored files add their own sandboxing policy.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *_SIGNED_URL_ORIGINS],
        "media-src": ["'self'", *_SIGNED_URL_ORIGINS],
        "connect-src": ["'self'", *_SIGNED_URL_ORIGINS],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# --- Locale ---------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

# --- Providers ------------------------------------------------------------------------------
# When a channel's key variable (e.g. OPENAI_API_KEY) is unset, the channel talks to the
# provider simulator at this address instead: the simulator is the default provider.
SIMULATOR_URL = env_url("REELHOUSE_SIMULATOR_URL", "http://127.0.0.1:8765", schemes={"http"})
# The simulator's HTTPS port (the same APIs, for clients that speak only TLS, as fal-client does
# to its queue host) and the certificate authority it writes there at every start. The app trusts
# that authority for this one origin only (providers/http.py ``trust_for_origin``), so a channel
# whose base URL is on it works over TLS; no other host is ever vouched for by it.
# By default the port after the plain one (8766 beside 8765).
_simulator = urlparse(str(SIMULATOR_URL))
SIMULATOR_TLS_URL = env_url(
    "REELHOUSE_SIMULATOR_TLS_URL",
    f"https://{_simulator.netloc.rsplit(':', 1)[0]}:{(_simulator.port or 80) + 1}",
    schemes={"https"},
)
SIMULATOR_TLS_DIR = Path(
    env_str("REELHOUSE_SIMULATOR_TLS_DIR", str(VAR_DIR / "simulator-tls"))
    or VAR_DIR / "simulator-tls"
).resolve()
SIMULATOR_CA_FILE = SIMULATOR_TLS_DIR / "ca.pem"
# Benchmarks only: run limiter periods and scheduled waits this many times faster, matching a
# simulator started with the same --time-scale. 1 everywhere else.
REELHOUSE_TIME_SCALE = env_float("REELHOUSE_TIME_SCALE", 1.0, minimum=1.0, maximum=1000.0)
# Tests only: multiply every scheduled wait (retries, polls, follow-ups) by this; the test suite
# sets 0 so nothing waits. 1 everywhere else.
REELHOUSE_DELAY_SCALE = env_float("REELHOUSE_DELAY_SCALE", 1.0, minimum=0.0, maximum=1.0)
# Encrypts provider keys entered in the admin; derived from SECRET_KEY when unset.
REELHOUSE_KEY_ENCRYPTION_KEY = env_str("REELHOUSE_KEY_ENCRYPTION_KEY")
PROVIDER_CONNECT_TIMEOUT = float(env_int("PROVIDER_CONNECT_TIMEOUT", 10, minimum=1))
PROVIDER_READ_TIMEOUT = float(env_int("PROVIDER_READ_TIMEOUT", 60, minimum=1))
PROVIDER_DOWNLOAD_TIMEOUT = float(env_int("PROVIDER_DOWNLOAD_TIMEOUT", 300, minimum=1))

# --- The API ------------------------------------------------------------------------------------
# Requests one API token may make to /v1 per minute, after a first burst of this many; more get
# a 429 with Retry-After. 0: no limit. (Budgets, queue caps and the fair queue apply regardless.)
REELHOUSE_API_REQUESTS_PER_MINUTE = env_int("REELHOUSE_API_REQUESTS_PER_MINUTE", 300, minimum=0)
REELHOUSE_API_REQUEST_BURST = env_int("REELHOUSE_API_REQUEST_BURST", 60, minimum=1)

# --- The API's outgoing webhooks -------------------------------------------------------------
# Members' webhook URLs must reach public addresses; an operator may allow these private hosts
# too (host names, addresses or CIDR ranges, comma- or space-separated), e.g. a receiver on the
# office network. Plain http is accepted only for them.
REELHOUSE_WEBHOOK_PRIVATE_HOSTS = env_str("REELHOUSE_WEBHOOK_PRIVATE_HOSTS", "") or ""
# Seconds a member's receiver has to connect and to answer one delivery.
REELHOUSE_WEBHOOK_CONNECT_TIMEOUT = float(
    env_int("REELHOUSE_WEBHOOK_CONNECT_TIMEOUT", 5, minimum=1)
)
REELHOUSE_WEBHOOK_TIMEOUT = float(env_int("REELHOUSE_WEBHOOK_TIMEOUT", 15, minimum=1))
# --- Health and metrics ---------------------------------------------------------------------
# /readyz counts an RQ worker (per queue) and the recovery scheduler as alive when they were
# seen within these many seconds (workers beat every --worker-ttl, 60 s in the Procfile; the
# scheduler every --watch, 2 s, but not during a long sweep).
REELHOUSE_HEALTH_WORKER_SEEN_SECONDS = env_int(
    "REELHOUSE_HEALTH_WORKER_SEEN_SECONDS", 120, minimum=10, maximum=3600
)
REELHOUSE_HEALTH_SCHEDULER_SEEN_SECONDS = env_int(
    "REELHOUSE_HEALTH_SCHEDULER_SEEN_SECONDS", 120, minimum=10, maximum=3600
)


def _metrics_token() -> str | None:
    token = env_str("REELHOUSE_METRICS_TOKEN")
    if token is None:
        return None
    if len(token) < 32 or not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", token):
        raise ImproperlyConfigured(
            "REELHOUSE_METRICS_TOKEN must be at least 32 characters of letters, digits and "
            ". _ ~ + / = - (for example the output of `openssl rand -hex 32`)."
        )
    return token


def _metrics_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list("REELHOUSE_METRICS_ALLOWED_NETWORKS", []):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as error:
            raise ImproperlyConfigured(
                f"REELHOUSE_METRICS_ALLOWED_NETWORKS: {item!r} is not an address or network "
                f"such as 10.0.0.0/8 or 2001:db8::/32 ({error})."
            ) from None
    return networks


# /metrics answers only when at least one of these is set (404 otherwise): a bearer token the
# scraper sends, and/or the networks the scraper's address must be in (both when both are set).
REELHOUSE_METRICS_TOKEN = _metrics_token()
REELHOUSE_METRICS_ALLOWED_NETWORKS = _metrics_networks()
# How far back the latency histograms of /metrics look (finished generations in that window).
REELHOUSE_METRICS_WINDOW_SECONDS = env_int(
    "REELHOUSE_METRICS_WINDOW_SECONDS", 3600, minimum=60, maximum=7 * 24 * 3600
)

# --- Logging --------------------------------------------------------------------------------
# "json": one JSON object per line, for a log shipper (Loki, Elasticsearch, CloudWatch).
REELHOUSE_LOG_FORMAT = env_choice("REELHOUSE_LOG_FORMAT", "plain", {"plain", "json"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "workspace.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": REELHOUSE_LOG_FORMAT},
    },
    "filters": {
        "forbidden_without_traceback": {
            "()": "workspace.core.logging.ForbiddenWithoutTraceback",
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        # Django's default config gives "django" its own console handler (under DEBUG) that
        # printed every request warning a second time beside the root's; the root writes it once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["forbidden_without_traceback"]},
        # httpx logs every request line at INFO; URLs are harmless but it is noise in workers.
        "httpx": {"level": "WARNING"},
        # axes logs every successful sign-in at INFO; failures and lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "reelhouse@localhost")
