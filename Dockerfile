# syntax=docker/dockerfile:1
# One image holding every Seckill program (user-service, stock-service, order-service,
# order-worker, gateway, dashboard); docker-compose.yml picks the program of each service by its
# command.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-trixie AS builder
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies from one build to the next.
# They are not part of the image, so the binaries are copied out of the target mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p user-service -p stock-service -p order-service -p gateway -p platform -p dashboard \
    && mkdir /out \
    && cd target/release \
    && cp user-service stock-service order-service order-worker gateway dashboard seckill-certs /out/

# The same Debian release as the builder, so the binaries find the glibc they were linked against.
FROM debian:trixie-slim
# curl: for the health checks in docker-compose.yml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --no-create-home --uid 10001 seckill
COPY --from=builder /out/ /usr/local/bin/
USER seckill
# RPC 7001-7003, metrics 9100-9104, the gateway's HTTP 8080, the dashboard's 8090.
EXPOSE 7001 7002 7003 8080 8090 9100 9101 9102 9103 9104
CMD ["gateway"]
