# One image, three entrypoints: api (default; runs the consumer in-process unless
# CONSUMER_IN_PROCESS=false), consumer (/app/dist/consumer/main.js) and worker
# (/app/dist/worker/main.js, what berth itself starts in every task container).
#
# Every RUN is in exec form, so the build needs only `node` and `npm` in the base image (no shell);
# scripts/make-base-image.sh makes such a base from a host's Node where no registry is reachable.
# No `# syntax=` line on purpose: the builtin BuildKit frontend supports RUN --mount and does not
# need to pull a frontend image.
ARG NODE_IMAGE=node:20-bookworm-slim

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
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric so it works on any base image, with or without an /etc/passwd entry.
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["node", "/app/dist/api/healthcheck.js"]
ENTRYPOINT ["node"]
CMD ["/app/dist/api/main.js"]
