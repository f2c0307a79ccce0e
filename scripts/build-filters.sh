#!/usr/bin/env bash
# Builds every proxy-wasm filter crate of the repository for wasm32-wasip1 and
# wasm32-unknown-unknown (release, default target dir) and copies the modules to
#   target/filters/<lib>.wasm          (from wasm32-wasip1)
#   target/filters/<lib>.unknown.wasm  (from wasm32-unknown-unknown)
# Idempotent: adds the two rustup targets only when missing. Prints one line per module with its
# size; exits non-zero if a build fails or a module lacks the proxy-wasm ABI marker export.
#
# Debug info is left out of these builds (CARGO_PROFILE_RELEASE_DEBUG/STRIP below): it would be
# ~75 % of each module. The `name` section stays, so traps still show function names.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Filter crates: "<directory> <lib name>" (the package name is read from the crate's Cargo.toml).
# Directories without a Cargo.toml are skipped with a note.
FILTERS=(
    "examples/proxy-wasm/basics pw_basics"
    "examples/proxy-wasm/http-authz pw_http_authz"
    "tests/filters/hostile hostile"
    "examples/filters/allow-list allow_list"
    "examples/filters/path-rewrite path_rewrite"
    "examples/filters/path-counter path_counter"
)
TARGETS=(wasm32-wasip1 wasm32-unknown-unknown)
OUT=target/filters
ABI_MARKER=proxy_abi_version_0_2_1

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed)
    for t in "${TARGETS[@]}"; do
        if ! grep -qx "$t" <<<"$installed"; then
            rustup target add "$t" >/dev/null
            echo "build-filters: installed rustup target $t"
        fi
    done
else
    echo "build-filters: rustup not found; assuming ${TARGETS[*]} are installed" >&2
fi

pkgs=()
libs=()
for entry in "${FILTERS[@]}"; do
    read -r dir lib <<<"$entry"
    if [ ! -f "$dir/Cargo.toml" ]; then
        echo "build-filters: skipping $dir (no such crate yet)"
        continue
    fi
    # First `name = "..."` of the [package] table.
    pkg=$(awk -F'"' '/^\[/ { in_pkg = ($0 == "[package]") } in_pkg && /^name *=/ { print $2; exit }' \
        "$dir/Cargo.toml")
    if [ -z "$pkg" ]; then
        echo "build-filters: FAILED: no package name in $dir/Cargo.toml" >&2
        exit 1
    fi
    pkgs+=(-p "$pkg")
    libs+=("$lib")
done
if [ ${#libs[@]} -eq 0 ]; then
    echo "build-filters: no filter crates found" >&2
    exit 1
fi

# Prints the export names of a wasm module (one per line); empty output if python3 is missing.
wasm_exports() {
    command -v python3 >/dev/null 2>&1 || return 0
    python3 - "$1" <<'PY'
import sys

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7F) << s; s += 7
        if x < 0x80:
            return r, i

b = open(sys.argv[1], "rb").read()
if b[:4] != b"\0asm":
    sys.exit("not a wasm module: " + sys.argv[1])
i = 8
while i < len(b):
    sid = b[i]; i += 1
    size, i = leb(b, i)
    end = i + size
    if sid == 7:
        n, i = leb(b, i)
        for _ in range(n):
            ln, i = leb(b, i)
            print(b[i:i + ln].decode("utf-8", "replace")); i += ln
            i += 1  # kind
            _, i = leb(b, i)  # index
    i = end
PY
}

# Cargo's output directory: the default `target`, unless CARGO_TARGET_DIR says otherwise.
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"
failed=0
for t in "${TARGETS[@]}"; do
    echo "build-filters: cargo build --release --target $t ${pkgs[*]}"
    if ! CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
        cargo build --release --target "$t" "${pkgs[@]}"; then
        echo "build-filters: FAILED: build for $t" >&2
        failed=1
        continue
    fi
    suffix=.wasm
    [ "$t" = wasm32-unknown-unknown ] && suffix=.unknown.wasm
    for lib in "${libs[@]}"; do
        src="$target_dir/$t/release/$lib.wasm"
        dst="$OUT/$lib$suffix"
        if [ ! -f "$src" ]; then
            echo "build-filters: FAILED: $src was not produced" >&2
            failed=1
            continue
        fi
        cp "$src" "$dst"
        note=""
        if command -v python3 >/dev/null 2>&1; then
            exports=$(wasm_exports "$dst") || exports=""
            if grep -qx "$ABI_MARKER" <<<"$exports"; then
                note=" (exports $ABI_MARKER)"
            else
                echo "build-filters: FAILED: $dst does not export $ABI_MARKER" >&2
                failed=1
            fi
        fi
        printf '%-40s %9d bytes%s\n' "$dst" "$(wc -c <"$dst")" "$note"
    done
done
exit "$failed"
