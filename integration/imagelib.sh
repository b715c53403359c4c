# Helpers shared by the test image recipes (kafkaimage/build.sh,
# registryimage/build.sh); sourced, not run. The caller sets log_name.

log() { printf '%s: %s\n' "$log_name" "$*" >&2; }

# phase NAME CMD...: runs CMD and reports its wall time.
phase() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  log "phase ${name}: $((SECONDS - start))s"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# recipe_hash DIR FILE...: the first 12 hex of sha256 over the files (and
# this library), which tags the image by the content of its recipe.
recipe_hash() {
  local dir=$1
  shift
  (cd "$dir" && cat "$@" ../imagelib.sh | sha256sum | cut -c1-12)
}
