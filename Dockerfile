# callingbox-server on an external PostgreSQL (see docker-compose.yml). Build: docker build -t callingbox-server .
# Stage 1 installs the package into a virtualenv exactly as the README says
# (`pip install --constraint requirements.lock .`): the runtime dependencies at the versions pinned
# in requirements.lock (`make lock`), without the embedded PostgreSQL (the `embedded` extra). The
# wheel carries the migrations (pyproject.toml force-includes them), so the image needs no checkout.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"
WORKDIR /src
# The pinned dependencies first, in a layer of their own that code changes do not invalidate.
COPY requirements.lock ./
RUN pip install --requirement requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --constraint requirements.lock .

# Stage 2: the virtualenv alone, run by an unprivileged user.
FROM python:3.11-slim
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 callingbox \
    && useradd --system --uid 10001 --gid callingbox --home-dir /app --create-home callingbox
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER callingbox
EXPOSE 8000
# Settings come from the environment: CALLINGBOX_DATABASE_URL and CALLINGBOX_KEY_HASH_SECRET are
# required here (the embedded PostgreSQL is for development checkouts, not for this image).
CMD ["callingbox-server", "serve", "--host", "0.0.0.0", "--port", "8000"]
