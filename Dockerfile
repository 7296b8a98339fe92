# Tributary as a container: `docker compose up --build` runs it against the services of docker-compose.yml.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY connectors ./connectors
RUN npm install --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app /app
COPY config ./config
USER node
ENTRYPOINT ["node", "bin/tributary.js"]
CMD ["run", "-c", "config/docker-compose.yaml"]
