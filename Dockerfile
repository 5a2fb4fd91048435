# One image, four entrypoints: api (default; runs the consumer in-process unless
# CONSUMER_IN_PROCESS=false), consumer (/app/dist/consumer/main.js), worker
# (/app/dist/worker/main.js, what berth itself starts in every task container) and the egress proxy
# (/app/dist/egress/main.js, the long-lived container berth starts with EGRESS=proxy).
#
# The base is a Debian bookworm with Node: the official node:<v>-bookworm-slim, or, where no
# registry is reachable, the equivalent scripts/make-base-image.sh makes with debootstrap.
# No `# syntax=` line on purpose: the builtin BuildKit frontend supports RUN --mount and does not
# need to pull a frontend image.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Optional CA bundle for builds behind a TLS-intercepting proxy:
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt …
# When the secret is absent Node logs one warning and uses its own roots.
ENV NODE_EXTRA_CA_CERTS=/run/secrets/ca \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca,required=false ["npm", "ci", "--ignore-scripts"]
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN ["node", "node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"]
RUN --mount=type=secret,id=ca,required=false ["npm", "prune", "--omit=dev", "--ignore-scripts"]

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# Workers clone the task's repository before the agent starts: they need a real git (and CA roots).
# The base made here has both; the official slim image gets them from Debian.
RUN command -v git >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates && rm -rf /var/lib/apt/lists/*)
# The worker's home. Workers get a tmpfs here; swarm's tmpfs takes its mode from this folder (it has
# no owner option), so it is writable by any worker uid and sticky. setpriv (util-linux) starts
# swarm workers with no-new-privileges, which swarm services cannot set.
RUN mkdir -p /work && chmod 1777 /work && command -v setpriv >/dev/null
# The egress proxy's volumes (its socket, its records) take owner and mode from these folders when
# Docker first fills them: the proxy runs as 10001; workers traverse the socket's folder, read-only.
RUN mkdir -p /run/berth-egress /var/lib/berth-egress && chown 10001:10001 /run/berth-egress /var/lib/berth-egress && chmod 0755 /run/berth-egress && chmod 0700 /var/lib/berth-egress
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric so it works on any base image, with or without an /etc/passwd entry.
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["node", "/app/dist/api/healthcheck.js"]
# --expose-gc for berth's own processes (not the workers, whose entrypoint berth sets): the log
# streamer asks for a young-generation collection every 8 MiB of worker output, so a worker flooding
# its output cannot pile up 64 MiB of socket buffers waiting for V8 (src/consumer/read-buffers.ts,
# test/e2e/log-flood.test.ts). A small young generation did the same at a fifth more CPU per webhook.
ENTRYPOINT ["node", "--expose-gc"]
CMD ["/app/dist/api/main.js"]
