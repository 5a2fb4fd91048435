# An agent CLI on top of berth's image (docs/agents.md). Build with berth's image as the base:
#   docker build -f examples/agent-images/claude-code.Dockerfile --build-arg BERTH_IMAGE=berth:local -t berth-claude .
# then run berth with WORKER_IMAGE=berth-claude and e.g.
#   AGENT_COMMAND_REVIEW="claude -p 'Review the pull request checked out here' --output-format json"
# Behind a TLS-intercepting proxy add: --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
ARG BERTH_IMAGE=berth:local
FROM ${BERTH_IMAGE}
USER root
RUN --mount=type=secret,id=ca,required=false NODE_EXTRA_CA_CERTS=/run/secrets/ca \
    npm install -g --no-audit --no-fund @anthropic-ai/claude-code@2.1.332 && npm cache clean --force
# Back to berth's unprivileged user; berth runs workers as WORKER_USER (default 10001) anyway.
USER 10001:10001
