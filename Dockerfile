# syntax=docker/dockerfile:1
# Build: the release binary, with the cargo registry and target dir cached between builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin wechat-auth \
    && cp target/release/wechat-auth /wechat-auth

# Run: glibc and nothing else (no shell, no package manager), as a non-root user.
# TLS roots are compiled in (rustls + webpki roots), so no CA bundle is needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /wechat-auth /usr/local/bin/wechat-auth
WORKDIR /home/nonroot
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/wechat-auth"]
