#!/bin/bash
# Builds the Apicurio Registry test image without a container registry and
# prints its tag on stdout (progress and timings go to stderr).
#
#   tag:  sshlateral/apicurio-registry:<apicurio version>-<first 12 hex of sha256 over the recipe files>
#
# Idempotent: built only when missing. The base is the JRE 17 image of
# ../kafkaimage/build.sh (sshlateral/jre17:bookworm, debootstrap + docker
# import), which that script builds when it is missing, so run this one after
# it. Apicurio 3.0.x is the newest line that runs on Java 17 (3.1 and later
# need 21, which bookworm does not package). Needs a running Docker engine, mvn
# and network access to Maven Central.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jre_image=${SSHLATERAL_JRE_IMAGE:-sshlateral/jre17:bookworm}
apicurio_version=3.0.9
recipe_files=(build.sh Dockerfile entrypoint.sh)

log_name=registryimage
# shellcheck source=../imagelib.sh
source "$here/../imagelib.sh"

recipe_hash=$(recipe_hash "$here" "${recipe_files[@]}")
tag="sshlateral/apicurio-registry:${apicurio_version}-${recipe_hash}"

build_registry_image() {
  local context
  context=$(mktemp -d /tmp/sshlateral-registry-context.XXXXXX)
  # shellcheck disable=SC2064 # expand now: context is local.
  trap "rm -rf '$context'" RETURN
  cp "$here/Dockerfile" "$here/entrypoint.sh" "$context/"
  # The "all" classifier is the runnable Quarkus app (runner jar + lib/); the
  # plain jar is only a library. stdout carries only the tag.
  phase maven-app mvn -q -B -Dstyle.color=never dependency:copy \
    "-Dartifact=io.apicurio:apicurio-registry-app:${apicurio_version}:tar.gz:all" \
    -DoutputDirectory="$context" >&2
  mv "$context/apicurio-registry-app-${apicurio_version}-all.tar.gz" "$context/app.tar.gz"
  # The classic builder ships with the engine; BuildKit would need buildx.
  phase docker-build env DOCKER_BUILDKIT=0 docker build -q \
    --build-arg "JRE_IMAGE=$jre_image" \
    --label "org.sshlateral.apicurio.version=$apicurio_version" \
    --label "org.sshlateral.recipe=$recipe_hash" \
    -t "$tag" "$context" >/dev/null
}

if image_exists "$tag"; then
  log "image $tag exists, skipping build"
else
  image_exists "$jre_image" || { log "base image $jre_image missing: run ../kafkaimage/build.sh first"; exit 1; }
  phase registry-image build_registry_image
fi
echo "$tag"
