# Tributary as a container: `docker compose up --build` runs it against the services of docker-compose.yml.
# node runs as the entrypoint itself (no npm, no shell in between), so SIGTERM from `docker stop` reaches the daemon,
# which drains in-flight batches and saves its checkpoints before it exits.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY scripts/build-when-stale.js ./scripts/
COPY src ./src
COPY connectors ./connectors
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    TRIBUTARY_STATE_DIR=/var/lib/tributary
WORKDIR /app
COPY --from=build /app /app
COPY config ./config
# Checkpoint files live in the state directory, a volume owned by the unprivileged user the image runs as.
RUN mkdir -p /var/lib/tributary && chown node:node /var/lib/tributary
USER node
VOLUME ["/var/lib/tributary"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/tributary.js"]
CMD ["run", "-c", "config/docker-compose.yaml"]
