#!/usr/bin/env bash
# Pin the base image of Dockerfile and Dockerfile.cuda (their `ARG *_IMAGE=tag` lines) to the
# digest the tag has now, as `tag@sha256:...`. Run it where an image registry is reachable,
# before building for production; run it again to move to a newer build of the same tag.
#   deploy/docker/pin-base-images.sh
# Needs `docker buildx` (Docker 23 or newer).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

digest_of() {  # the digest of the tag's manifest list (all platforms) or manifest
    docker buildx imagetools inspect "$1" --format '{{json .Manifest}}' \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])'
}

for dockerfile in "$here/Dockerfile" "$here/Dockerfile.cuda"; do
    while IFS='=' read -r name reference; do
        tag=${reference%%@*}
        digest=$(digest_of "$tag")
        if [[ ! $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
            echo "no digest for $tag (got: $digest)" >&2
            exit 1
        fi
        sed -i "s|^ARG $name=.*|ARG $name=$tag@$digest|" "$dockerfile"
        echo "$(basename "$dockerfile"): $tag@$digest"
    done < <(grep -oE '^ARG [A-Z_]+_IMAGE=[^[:space:]]+' "$dockerfile" | cut -c5-)
done
