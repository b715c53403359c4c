# sshlateral runtime image: one static binary on an empty base, built
# without any registry access.
#
# Build (from the repository root; see docs/operations.md):
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o bin/sshlateral ./cmd/sshlateral
#   docker build -t sshlateral:dev .
#
# scratch has no CA certificates: give the brokers' CA with --tls-ca
# (SSHLATERAL_TLS_CA), or mount a bundle and point SSL_CERT_FILE at it.
# To bake the host's bundle in, copy it to bin/ca-certificates.crt, allow
# it in .dockerignore and uncomment the COPY line below.
#
# With registry access the binary can instead be built in a stage of its own
# (then also allow the sources in .dockerignore):
#   FROM golang:1.26 AS build
#   WORKDIR /src
#   COPY go.mod go.sum ./
#   RUN go mod download
#   COPY . .
#   RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sshlateral ./cmd/sshlateral
# and below: COPY --from=build /out/sshlateral /sshlateral
FROM scratch
COPY bin/sshlateral /sshlateral
# COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The distroless "nonroot" user; no passwd file is needed for a numeric id.
USER 65532:65532
# /metrics, /healthz, /readyz (--http-addr)
EXPOSE 9090
ENTRYPOINT ["/sshlateral"]
CMD ["run"]
