# shellcheck shell=bash
# Sourced by scripts/build-wasm and scripts/test-wasm: installs what the WASM
# package needs when it is missing, and exports WB_VERSION (the pinned
# wasm-bindgen version: wasm/Cargo.toml is the one source, checked against
# Cargo.lock).
#   wasm_tools    the wasm32 target, wasm-bindgen-cli $WB_VERSION, wasm/node_modules

wasm_log() { printf '==> %s\n' "$*" >&2; }
wasm_die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

wasm_tools() {
  WB_VERSION="$(sed -n 's/^wasm-bindgen = { version = "=\([0-9][0-9.]*\)".*/\1/p' wasm/Cargo.toml)"
  [[ -n "$WB_VERSION" ]] || wasm_die "wasm/Cargo.toml does not pin wasm-bindgen with \"=X.Y.Z\""
  local locked
  locked="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
  [[ "$locked" == "$WB_VERSION" ]] || wasm_die "Cargo.lock has wasm-bindgen $locked, wasm/Cargo.toml pins $WB_VERSION"
  export WB_VERSION

  command -v node >/dev/null || wasm_die "node (>= 20) is required (apt-get install nodejs npm)"
  command -v npm >/dev/null || wasm_die "npm is required (apt-get install npm)"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    wasm_log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  if [[ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]]; then
    wasm_log "cargo install wasm-bindgen-cli --version $WB_VERSION (takes a few minutes)"
    # Not --locked: the CLI's own lockfile names a crate version the registry lacks.
    cargo install wasm-bindgen-cli --version "$WB_VERSION"
  fi
  [[ "$(wasm-bindgen --version | awk '{print $2}')" == "$WB_VERSION" ]] ||
    wasm_die "wasm-bindgen on PATH is not $WB_VERSION: $(command -v wasm-bindgen)"
  command -v wasm-bindgen-test-runner >/dev/null ||
    wasm_die "wasm-bindgen-test-runner is missing (it comes with wasm-bindgen-cli)"
  if [[ ! -f wasm/node_modules/.package-lock.json || wasm/package-lock.json -nt wasm/node_modules/.package-lock.json ]]; then
    wasm_log "npm ci (wasm/)"
    (cd wasm && npm ci --no-audit --no-fund)
  fi
}
