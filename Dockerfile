# Tributary as a container: `docker compose up` runs it against the services of docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY connectors ./connectors
COPY config ./config
USER node
ENTRYPOINT ["node", "bin/tributary.js"]
CMD ["run", "-c", "config/docker-compose.yaml"]
