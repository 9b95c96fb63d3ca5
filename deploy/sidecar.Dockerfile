# vwstream alone, to run beside the official, unmodified Vaultwarden image
# (deploy/compose.sidecar.yml): the static binary, CA certificates and an empty
# /tmp, nothing else. Build from the repository root:
#   docker build -f deploy/sidecar.Dockerfile -t vwstream .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/vwstream ./cmd/vwstream \
 && mkdir -m 1777 /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tmp /tmp
COPY --from=build /out/vwstream /vwstream
# The status endpoint stays on loopback inside this container; healthcheck
# reads it. Vaultwarden runs in its own container: its /alive is not probed.
ENV STATUS_ADDR=127.0.0.1:8081 \
    STATUS_FILE=/tmp/sync-status.json
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["/vwstream", "healthcheck", "--no-vaultwarden"]
ENTRYPOINT ["/vwstream"]
CMD ["run"]
