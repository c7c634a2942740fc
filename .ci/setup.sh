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

if ! command -v nats-server >/dev/null; then
    say "installing nats-server from Debian's packages (tests and the demo start their own servers)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
say "$(nats-server --version)"

need_mdbook() {
    [ "${LATTICE_NEED_MDBOOK:-0}" = 1 ] || return 1
    ! command -v mdbook >/dev/null || ! mdbook --version | grep -q 'v0\.5\.'
}
if need_mdbook; then
    say "installing mdbook 0.5 with cargo (the guide in book/ is built with it)"
    cargo install mdbook --version '^0.5' --locked --quiet
fi
