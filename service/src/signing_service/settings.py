"""Django settings, read from the environment (see the README's "Configuration")."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import platformdirs

from signing_service.database import database_settings, database_url
from signing_service.environment import env, env_bool, env_int, env_list
from signing_service.master_key import derive_key, load_or_create_master_key

BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = Path(env("DATA_DIR") or platformdirs.user_data_dir("signing-service")).absolute()
MASTER_KEY_PATH = DATA_DIR / "master.key"
SECRET_KEY = derive_key(load_or_create_master_key(DATA_DIR), "django-secret-key").hex()

DEBUG = env_bool("DEBUG")

# Behind a TLS-terminating proxy (`signing-service run --http`) the proxy tells us the scheme,
# and the client's address: the proxies whose headers count, and how many append to
# X-Forwarded-For (client_address.py).
BEHIND_PROXY = env_bool("BEHIND_PROXY")
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES") or ["127.0.0.1", "::1"]
PROXY_COUNT = max(env_int("PROXY_COUNT", 1), 1)

# The names the service answers to; the self-signed TLS certificate covers the same names.
HOSTNAMES = list(
    dict.fromkeys(
        [
            socket.gethostname(),
            socket.getfqdn(),
            "localhost",
            "127.0.0.1",
            "::1",
            *env_list("HOSTNAMES"),
        ]
    )
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or HOSTNAMES

# Where `signing-service run` (or the deployment) puts the signing-manager wheel it offers.
CLIENT_WHEEL_DIR = Path(env("CLIENT_WHEEL_DIR") or DATA_DIR / "client")

# The URL clients use; shown on the main page. Empty: derived from each request.
PUBLIC_URL = env("PUBLIC_URL").rstrip("/")

# The bearer token Prometheus presents at /metrics; without one, /metrics does not exist.
METRICS_TOKEN = env("METRICS_TOKEN")

# PKCS#11 tokens that may hold identities' keys (identities/hsm.py): the module (the HSM
# vendor's library), the labels of the tokens to use, and their user PIN (a secret: _FILE).
PKCS11_MODULE = env("PKCS11_MODULE")
PKCS11_TOKENS = env_list("PKCS11_TOKENS")
PKCS11_PIN = env("PKCS11_PIN")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "ninja",  # serves the interactive API reference from its own static files, not a CDN
    "signing_service.accounts",
    "signing_service.configuration",
    "signing_service.access",
    "signing_service.authorities",
    "signing_service.identities",
    "signing_service.audit",
    "signing_service.api",
    "signing_service.monitoring",
]

MIDDLEWARE = [
    "signing_service.monitoring.middleware.ApiLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "signing_service.middleware.ContentSecurityPolicyMiddleware",
    "signing_service.middleware.NoStoreMiddleware",
    "signing_service.api.middleware.ApiRoutingErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "signing_service.accounts.middleware.LoginRequiredMiddleware",
    "signing_service.accounts.middleware.AccountSetupMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "signing_service.urls"
WSGI_APPLICATION = "signing_service.wsgi.application"

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
                "signing_service.accounts.context_processors.permissions",
                "signing_service.accounts.context_processors.menu_section",
            ],
            "builtins": ["signing_service.template_filters"],
        },
    },
]

# Every wait on the database is bounded, in seconds (database.py; 0: no bound).
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 5, minimum=0)
DB_STATEMENT_TIMEOUT = env_int("DB_STATEMENT_TIMEOUT", 5, minimum=0)
DB_LOCK_TIMEOUT = env_int("DB_LOCK_TIMEOUT", 3, minimum=0)
# How long `signing-service run` waits for its database to answer before it gives up.
DB_WAIT_SECONDS = env_int("DB_WAIT_SECONDS", 60, minimum=0)
DATABASES = {
    "default": database_settings(
        database_url(),
        DATA_DIR,
        connect=DB_CONNECT_TIMEOUT,
        statement=DB_STATEMENT_TIMEOUT,
        lock=DB_LOCK_TIMEOUT,
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "signing_service.accounts.validators.NotDefaultPasswordValidator"},
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions end after this many seconds without a request, and when the browser closes.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 3600)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_NAME = "signing_session"
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_NAME = "signing_csrf"
# The service only speaks HTTPS (itself or through a proxy), so cookies never travel in clear.
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# Client API calls whose token is missing or unknown, per source address: each interval holds
# one aggregated audit record per address, and past the limit such calls get 429.
API_AUTH_FAILURE_LIMIT = env_int("API_AUTH_FAILURE_LIMIT", 30)
API_AUTH_FAILURE_INTERVAL = env_int("API_AUTH_FAILURE_INTERVAL", 60)

# How long a worker keeps a decrypted private key after its last use (identities/key_cache.py;
# README, "Security"); 0: decrypt for every request.
KEY_CACHE_SECONDS = env_int("KEY_CACHE_SECONDS", 300, minimum=0)

# The audit's hash chain: a signed checkpoint of its head at most this often per process, after
# a write (audit/records.py); and the live stream of records, "stdout" or a file (audit/stream.py).
AUDIT_CHECKPOINT_SECONDS = env_int("AUDIT_CHECKPOINT_SECONDS", 60, minimum=1)
AUDIT_LOG = env("AUDIT_LOG")

# Login throttling (django-axes): a user name is locked for a while after repeated failures from
# one address, that address only. The address is the socket's own unless a trusted proxy is in
# front (client_address.py), for throttling, the audit and clients' "last seen" alike.
AXES_CLIENT_IP_CALLABLE = "signing_service.client_address.client_address"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "filters": {
        "one_traceback_per_minute": {"()": "signing_service.log_filters.OneTracebackPerMinute"},
        "skip_service_unavailable": {"()": "signing_service.log_filters.SkipServiceUnavailable"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["one_traceback_per_minute"],
        }
    },
    "root": {"handlers": ["stderr"], "level": env("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # axes logs the user name of every failed login at INFO; WARNING keeps the lockouts.
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["skip_service_unavailable"]},
    },
}
