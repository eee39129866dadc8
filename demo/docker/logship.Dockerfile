# The logship agent. Build from the repository root: docker build -f demo/docker/logship.Dockerfile .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p logship-agent --bin logship \
    && mkdir -p /out && cp target/release/logship /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/logship /usr/local/bin/logship
# Root, because the Docker socket it reads is root's; mount the socket read-only.
VOLUME /var/lib/logship
EXPOSE 9598
ENTRYPOINT ["logship"]
CMD ["--config", "/etc/logship/logship.toml"]
