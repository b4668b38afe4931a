# syntax=docker/dockerfile:1
# The eso-operator image: a release build in the official Rust image, copied into a distroless
# runtime that runs as the non-root user 65532 (the chart's securityContext uses that uid).
#
#   docker build -t <registry>/eso-rs/eso-operator:0.1.0 .
#   docker build --build-arg FEATURES=... --build-arg PROFILE=release .
#
# FEATURES is passed to `cargo build --features` for the eso-operator package. Today every
# provider (fake, kubernetes, vault, webhook, aws) is built in and eso-operator declares no
# cargo features, so leave it empty; it is here so that feature-gated providers can be picked
# per image without editing this file.
# Not built on the project's machines (no container engine there): see docs/deploy.md.

ARG RUST_VERSION=1.95.0
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM rust:${RUST_VERSION}-bookworm AS build
ARG FEATURES=""
ARG PROFILE=release
WORKDIR /src
# rust-toolchain.toml pins the same toolchain as the image; never download another one.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    cargo build --locked --profile "${PROFILE}" -p eso-operator \
        ${FEATURES:+--features "${FEATURES}"}; \
    dir="${PROFILE}"; [ "${PROFILE}" = dev ] && dir=debug; \
    install -D -m 0755 "target/${dir}/eso-operator" /out/eso-operator

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="eso-rs" \
      org.opencontainers.image.description="Keeps Kubernetes Secrets in sync with external secret stores (external-secrets.io API)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/eso-operator /usr/local/bin/eso-operator
USER 65532:65532
EXPOSE 8080 8082
ENTRYPOINT ["/usr/local/bin/eso-operator"]
