#!/bin/bash
# Starts a single-node (combined broker + controller) KRaft Kafka broker.
#
# Configuration follows the apache/kafka image: every KAFKA_<NAME> variable
# becomes the server property <name> (lower case, "_" -> ".", "__" -> "_",
# "___" -> "-"), and CLUSTER_ID sets the cluster id used to format storage. Unlike
# the official image, the variables are merged over working defaults, so a bare
# `docker run` works too. KAFKA_PORT (default 9092) and KAFKA_CONTROLLER_PORT
# (default 9093) only shape those defaults; both listen on 127.0.0.1, which is
# meant for host networking.
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
CONFIG_FILE=${KAFKA_HOME}/config/server.properties
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
CLUSTER_ID=${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}

declare -A props=(
  [node.id]=1
  [process.roles]="broker,controller"
  [listeners]="PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}"
  [advertised.listeners]="PLAINTEXT://127.0.0.1:${PORT}"
  [listener.security.protocol.map]="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  [controller.listener.names]=CONTROLLER
  [inter.broker.listener.name]=PLAINTEXT
  [controller.quorum.voters]="1@127.0.0.1:${CONTROLLER_PORT}"
  [offsets.topic.replication.factor]=1
  [transaction.state.log.replication.factor]=1
  [transaction.state.log.min.isr]=1
  [share.coordinator.state.topic.replication.factor]=1
  [share.coordinator.state.topic.min.isr]=1
  [group.initial.rebalance.delay.ms]=0
  [num.partitions]=1
  [log.dirs]=/var/lib/kafka/data
)

# Variables that tune the JVM or this script rather than the broker.
is_reserved() {
  case "$1" in
    KAFKA_PORT | KAFKA_CONTROLLER_PORT | KAFKA_HOME | KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_OPTS | \
      KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_JMX_* | KAFKA_LOG4J_*) return 0 ;;
  esac
  return 1
}

while IFS='=' read -r name value; do
  [[ $name == KAFKA_* ]] || continue
  is_reserved "$name" && continue
  key=${name#KAFKA_}
  key=${key,,}
  key=${key//___/-}
  key=${key//__/@}
  key=${key//_/.}
  key=${key//@/_}
  props[$key]=$value
done < <(env)

# A user who sets only the bootstrap servers (dynamic quorum) must not also get
# the default static voters.
if [[ -n ${KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS:-} && -z ${KAFKA_CONTROLLER_QUORUM_VOTERS:-} ]]; then
  unset 'props[controller.quorum.voters]'
fi

mkdir -p "$(dirname "$CONFIG_FILE")"
{
  echo "# written by $0 at container start"
  for key in $(printf '%s\n' "${!props[@]}" | sort); do
    printf '%s=%s\n' "$key" "${props[$key]}"
  done
} >"$CONFIG_FILE"

CLASSPATH="${KAFKA_HOME}/libs/*"
LOG4J="-Dlog4j2.configurationFile=${KAFKA_HOME}/config/log4j2.properties"

# Format only once: a restarted container keeps its data and metadata log.
first_log_dir=${props[log.dirs]%%,*}
if [[ ! -f ${first_log_dir}/meta.properties ]]; then
  format_args=(format --cluster-id "$CLUSTER_ID" --config "$CONFIG_FILE" --ignore-formatted)
  if [[ -z ${props[controller.quorum.voters]:-} ]]; then
    format_args+=(--standalone)
  fi
  java "$LOG4J" -cp "$CLASSPATH" kafka.tools.StorageTool "${format_args[@]}"
fi

# The JVM defaults favour start-up over peak throughput (C1 only, serial GC):
# a test broker is started and restarted often on a small machine, which this
# makes about a quarter faster. KAFKA_JVM_PERFORMANCE_OPTS overrides them.
# shellcheck disable=SC2086 # the *_OPTS variables hold several JVM flags.
exec java \
  ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true} \
  ${KAFKA_OPTS:-} \
  "$LOG4J" \
  -cp "$CLASSPATH" kafka.Kafka "$CONFIG_FILE"
