# syntax=docker/dockerfile:1
# Build: the release binary, with the cargo registry and target dir cached between builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin wechat-auth \
    && cp target/release/wechat-auth /wechat-auth \
    && mkdir /sqlite-data

# Run: glibc and nothing else (no shell, no package manager), as a non-root user.
# TLS roots are compiled in (rustls + webpki roots), so no CA bundle is needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /wechat-auth /usr/local/bin/wechat-auth
WORKDIR /home/nonroot
# The default DATABASE_URL (sqlite://data/wechat-auth.db) lives here: a volume, owned by
# the non-root user, so SQLite data outlives the container. Unused with PostgreSQL/MariaDB.
COPY --from=build --chown=65532:65532 /sqlite-data /home/nonroot/data
VOLUME ["/home/nonroot/data"]
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/wechat-auth"]
