# order-api, order-worker and demo (whose --target mode is the compose load generator).
# Build from the repository root: docker build -f demo/docker/demo.Dockerfile .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p logship-demo --bins \
    && mkdir -p /out \
    && cp target/release/order-api target/release/order-worker target/release/demo /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 app
COPY --from=build /out/ /usr/local/bin/
USER app
EXPOSE 8080 8081
CMD ["order-api"]
