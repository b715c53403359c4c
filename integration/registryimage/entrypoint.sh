#!/bin/bash
# Starts Apicurio Registry with in-memory storage on 127.0.0.1, meant for host
# networking. REGISTRY_PORT (default 8080) serves the APIs, the Confluent
# compatible one under /apis/ccompat/v7, and /health/ready (3.0.x has no
# separate management interface). REGISTRY_COMPATIBILITY (default BACKWARD) is
# the global compatibility rule: Apicurio's own default is NONE, which would
# accept any change. The ccompat GET /config still answers NONE, yet the rule
# is enforced (an incompatible version gets HTTP 409). Extra arguments are
# passed to the JVM before -jar.
set -euo pipefail

REGISTRY_HOME=${REGISTRY_HOME:-/opt/apicurio}
PORT=${REGISTRY_PORT:-8080}
COMPATIBILITY=${REGISTRY_COMPATIBILITY:-BACKWARD}

# C1 only and the serial collector: a test registry serves a few dozen
# requests, and on two busy cores it is ready in 2-5 s instead of 4-7 s and
# holds about 135 MiB instead of 250.
exec java \
  -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -XX:MaxRAM=512m \
  -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" \
  -Dapicurio.rules.global.compatibility="$COMPATIBILITY" \
  "$@" \
  -jar "$REGISTRY_HOME/apicurio-registry-app-"*"-runner.jar"
