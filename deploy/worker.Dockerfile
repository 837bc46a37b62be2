# spell-coven-worker in an empty image: one static binary, nothing else.
#
# Build the binary first, then the image, from the repository root:
#   scripts/build-static.sh
#   docker build -f deploy/worker.Dockerfile -t spell-coven-worker .
# Run exactly ONE worker per bot token and guild (see deploy/GUIDE.md):
#   docker run -d --name spell-coven-worker --env-file /etc/spell-coven/worker.env \
#     -v spell-coven-worker-state:/state --read-only --restart on-failure spell-coven-worker
#
# Why no HEALTHCHECK: Docker runs a HEALTHCHECK command *inside* the container, and a scratch
# image has no shell, curl or wget. Set HEALTH_ADDR (default here: 0.0.0.0:9101) and probe
# `GET /health` from outside (JSON: state, session, seq, ackedSeq, heartbeatRttMs,
# outboxDepth, lastDeliveryError).
#
# TLS roots (webpki/Mozilla) are compiled in; DNS uses musl's resolver, which reads the
# /etc/resolv.conf and /etc/hosts that Docker mounts into every container. No glibc NSS.

# Stage 1 only makes the empty, writable /state directory (scratch has no mkdir/chown).
FROM busybox:1.36 AS rootfs
RUN mkdir -p /rootfs/state \
 && chown 10001:10001 /rootfs/state \
 && chmod 0700 /rootfs/state

FROM scratch
COPY --from=rootfs --chown=10001:10001 /rootfs/state /state
COPY out/static/spell-coven-worker /usr/local/bin/spell-coven-worker
USER 10001:10001
# The session checkpoint lives on the volume so a restarted container RESUMEs.
ENV WORKER_STATE_FILE=/state/worker-state.json \
    HEALTH_ADDR=0.0.0.0:9101 \
    LOG_FORMAT=json
VOLUME ["/state"]
# 9101: GET /health and GET /metrics (HEALTH_ADDR). Keep it on a private network.
EXPOSE 9101
# SIGTERM: close the gateway resumably (4000), flush up to 5 s, save the session, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/spell-coven-worker"]
