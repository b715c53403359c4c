#!/bin/bash
# Builds the single-node KRaft Kafka test image without a container registry and
# prints its tag on stdout (progress and timings go to stderr).
#
#   tag:  sshlateral/kafka:<kafka version>-<first 12 hex of sha256 over the recipe files>
#
# Idempotent: the JRE base image (sshlateral/jre17:bookworm, debootstrap +
# docker import) and the Kafka image are built only when missing. Needs a
# running Docker engine, debootstrap, mvn and network access to the Debian
# mirror and Maven Central.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jre_image=${SSHLATERAL_JRE_IMAGE:-sshlateral/jre17:bookworm}
# Empty: debootstrap's default Debian mirror.
debian_mirror=${SSHLATERAL_DEBIAN_MIRROR:-}
recipe_files=(build.sh Dockerfile entrypoint.sh log4j2.properties pom.xml)

log_name=kafkaimage
# shellcheck source=../imagelib.sh
source "$here/../imagelib.sh"

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
[[ -n $kafka_version ]] || { log "no <kafka.version> in pom.xml"; exit 1; }
recipe_hash=$(recipe_hash "$here" "${recipe_files[@]}")
tag="sshlateral/kafka:${kafka_version}-${recipe_hash}"

build_jre_image() {
  local rootfs
  rootfs=$(mktemp -d /tmp/sshlateral-jre-rootfs.XXXXXX)
  # shellcheck disable=SC2064 # expand now: rootfs is local.
  trap "rm -rf '$rootfs'" RETURN
  debootstrap --variant=minbase --include=openjdk-17-jre-headless bookworm "$rootfs" ${debian_mirror:+"$debian_mirror"} \
    >"$rootfs.log" 2>&1 || { tail -n 40 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  # Package caches and docs are dead weight in a test image.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | docker import - "$jre_image" >/dev/null
}

build_kafka_image() {
  local context
  context=$(mktemp -d /tmp/sshlateral-kafka-context.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$context'" RETURN
  cp "$here/Dockerfile" "$here/entrypoint.sh" "$here/log4j2.properties" "$context/"
  # stdout carries only the tag, so Maven's chatter goes to stderr.
  phase maven-jars mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$context/libs" >&2
  # The classic builder ships with the engine; BuildKit would need buildx.
  phase docker-build env DOCKER_BUILDKIT=0 docker build -q \
    --build-arg "JRE_IMAGE=$jre_image" \
    --label "org.sshlateral.kafka.version=$kafka_version" \
    --label "org.sshlateral.recipe=$recipe_hash" \
    -t "$tag" "$context" >/dev/null
}

if image_exists "$tag"; then
  log "image $tag exists, skipping build"
else
  if image_exists "$jre_image"; then
    log "base image $jre_image exists, skipping debootstrap"
  else
    phase jre-debootstrap-import build_jre_image
  fi
  # Images of older recipes are kept: a developer may still point
  # SSHLATERAL_KAFKA_IMAGE at one, and they share the JRE layers.
  phase kafka-image build_kafka_image
fi
echo "$tag"
