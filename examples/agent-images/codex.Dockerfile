# Codex on top of berth's image (docs/agents.md). Build with berth's image as the base:
#   scripts/build-agent-image.sh examples/agent-images/codex.Dockerfile berth-codex
# then run berth with WORKER_IMAGE=berth-codex, EGRESS_PROVIDERS=openai and the AGENT_COMMAND
# docs/agents.md gives (Codex pointed at berth's egress proxy by its own -c settings).
ARG BERTH_IMAGE=berth:local
FROM ${BERTH_IMAGE}
USER root
RUN --mount=type=secret,id=ca,required=false NODE_EXTRA_CA_CERTS=/run/secrets/ca \
    npm install -g --no-audit --no-fund @openai/codex@0.169.0 && npm cache clean --force
# Back to berth's unprivileged user; berth runs workers as WORKER_USER (default 10001) anyway.
USER 10001:10001
