# spell-coven-api in an empty image: one static binary, nothing else.
#
# Build the binary first, then the image, from the repository root:
#   scripts/build-static.sh
#   docker build -f deploy/api.Dockerfile -t spell-coven-api .
# Run (DATA_DIR is /data, a volume; env from a file, see deploy/api.env.example):
#   docker run -d --name spell-coven-api --env-file /etc/spell-coven/api.env \
#     -v spell-coven-data:/data -p 127.0.0.1:3000:3000 --read-only spell-coven-api
#
# Why no HEALTHCHECK: Docker runs a HEALTHCHECK command *inside* the container, and a scratch
# image has no shell, curl or wget to run. Check `GET /health` from outside instead (the
# reverse proxy, the load balancer, Kubernetes `httpGet` probes or `curl` on the host); it
# answers `200 ok` while the hub can serve and `503 {"message"}` naming what is down.
#
# What a scratch image lacks and why the binary does not need it:
# - CA certificates: the webpki roots (Mozilla's list) are compiled in.
# - glibc NSS: the binary is linked against musl, whose resolver reads /etc/resolv.conf and
#   /etc/hosts directly; Docker bind-mounts both into every container.
# - /etc/passwd: the user is numeric.

# Stage 1 only makes the empty, writable /data directory (scratch has no mkdir/chown).
FROM busybox:1.36 AS rootfs
RUN mkdir -p /rootfs/data \
 && chown 10001:10001 /rootfs/data \
 && chmod 0700 /rootfs/data

FROM scratch
COPY --from=rootfs --chown=10001:10001 /rootfs/data /data
COPY out/static/spell-coven-api /usr/local/bin/spell-coven-api
# Numeric, non-root, not 0; owns /data.
USER 10001:10001
ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    LOG_FORMAT=json
VOLUME ["/data"]
# 3000: public API + WebSocket (put a TLS reverse proxy in front).
# METRICS_ADDR is off by default; if you set it (e.g. 0.0.0.0:9100), publish it only on a
# private network.
EXPOSE 3000
# SIGTERM: the hub closes WebSockets with 1001, finishes requests, saves state, exits 0
# within 10 s; `docker stop` waits 10 s by default, so give it more: `docker stop -t 20`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/spell-coven-api"]
