# sshlateral runtime image: one static binary on an empty base, built
# without any registry access.
#
# Build (from the repository root; see docs/operations.md). The version and
# commit are stamped into the binary (`sshlateral version`, the
# sshlateral_build_info metric) and into the image labels:
#   VERSION=$(git describe --tags --always --dirty) COMMIT=$(git rev-parse HEAD)
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT" -o bin/sshlateral ./cmd/sshlateral
#   docker build --build-arg VERSION=$VERSION --build-arg COMMIT=$COMMIT -t sshlateral:$VERSION .
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
#   ARG VERSION=dev COMMIT=dev
#   RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT" -o /out/sshlateral ./cmd/sshlateral
# and below: COPY --from=build /out/sshlateral /sshlateral
FROM scratch
ARG VERSION=dev
ARG COMMIT=dev
LABEL org.opencontainers.image.title="sshlateral" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$COMMIT"
COPY bin/sshlateral /sshlateral
# COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The distroless "nonroot" user; no passwd file is needed for a numeric id.
USER 65532:65532
# /metrics, /healthz, /readyz (--http-addr)
EXPOSE 9090
ENTRYPOINT ["/sshlateral"]
CMD ["run"]
