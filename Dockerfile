# Tripod: one image for the web process (gunicorn), the Celery worker and Celery beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Pango and HarfBuzz for WeasyPrint (PDF), a default font, gettext for compilemessages.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core gettext \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# The build steps read no secret: they run with development settings (DJANGO_DEBUG for these two
# commands only). The image itself is production: without DJANGO_SECRET_KEY and
# TRIPOD_ENCRYPTION_KEYS in its environment, it refuses to start (docs/operations.md).
RUN DJANGO_DEBUG=true python manage.py compilemessages --ignore=.venv --ignore=var --ignore=node_modules \
    && DJANGO_DEBUG=true python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --create-home --shell /usr/sbin/nologin tripod
USER tripod

# Production settings: HTTPS only (redirect, Secure cookies, one year of HSTS). Behind a proxy
# that terminates TLS, set DJANGO_SECURE_PROXY_SSL_HEADER (docker-compose.yml does).
ENV DJANGO_DEBUG=false

EXPOSE 8000
CMD ["gunicorn", "billing_platform.wsgi:application", "-b", "0.0.0.0:8000", "-w", "3"]
