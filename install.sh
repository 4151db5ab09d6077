#!/bin/sh
# Installs `ssmbak` and `s3bak` from a GitHub release, with nothing but curl and a shell:
#
#   curl -fsSL https://raw.githubusercontent.com/newvoll/ssmbak-rs/main/install.sh | sh
#
# It picks the archive for this machine (Linux or macOS, x86_64 or aarch64), checks it against
# its published SHA-256 sum, and installs both binaries. Settings (environment):
#   SSMBAK_VERSION      the release, e.g. 0.2.0 (default: the latest)
#   SSMBAK_INSTALL_DIR  where the binaries go (default: ~/.local/bin)
#   SSMBAK_REPO_URL     the repository (default: the one below; a mirror, or the tests)
# Each archive also has a build-provenance attestation: see the end of this script's output.
set -eu

repo_url="${SSMBAK_REPO_URL:-https://github.com/newvoll/ssmbak-rs}"
install_dir="${SSMBAK_INSTALL_DIR:-$HOME/.local/bin}"

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

command -v curl >/dev/null 2>&1 || fail "curl is needed"

case "$(uname -s)" in
    Linux) os=unknown-linux-gnu ;;
    Darwin) os=apple-darwin ;;
    *) fail "no release for $(uname -s): build from source (cargo install ssmbak)" ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) cpu=x86_64 ;;
    aarch64 | arm64) cpu=aarch64 ;;
    *) fail "no release for $(uname -m): build from source (cargo install ssmbak)" ;;
esac
target="$cpu-$os"

version="${SSMBAK_VERSION:-}"
if [ -z "$version" ]; then
    # The latest release's page redirects to its tag.
    latest=$(curl -fsSLI -o /dev/null -w '%{url_effective}' "$repo_url/releases/latest") ||
        fail "cannot reach $repo_url/releases/latest"
    version="${latest##*/v}"
    case "$version" in
        *[!0-9.]* | "") fail "cannot tell the latest release from $latest" ;;
    esac
fi

name="ssmbak-$version-$target"
base="$repo_url/releases/download/v$version"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "downloading $name.tar.gz (release $version)"
curl -fsSL -o "$work/$name.tar.gz" "$base/$name.tar.gz" || fail "cannot download $base/$name.tar.gz"
curl -fsSL -o "$work/$name.tar.gz.sha256" "$base/$name.tar.gz.sha256" ||
    fail "cannot download $base/$name.tar.gz.sha256"

expected=$(cut -d ' ' -f 1 "$work/$name.tar.gz.sha256")
if command -v sha256sum >/dev/null 2>&1; then
    actual=$(sha256sum "$work/$name.tar.gz" | cut -d ' ' -f 1)
else
    actual=$(shasum -a 256 "$work/$name.tar.gz" | cut -d ' ' -f 1)
fi
[ -n "$expected" ] && [ "$expected" = "$actual" ] ||
    fail "$name.tar.gz does not match its published SHA-256 sum: nothing installed"

tar -xzf "$work/$name.tar.gz" -C "$work"
mkdir -p "$install_dir"
for bin in ssmbak s3bak; do
    [ -f "$work/$name/$bin" ] || fail "$name.tar.gz holds no $bin: nothing installed"
done
for bin in ssmbak s3bak; do
    cp "$work/$name/$bin" "$install_dir/$bin.new"
    chmod 0755 "$install_dir/$bin.new"
    mv -f "$install_dir/$bin.new" "$install_dir/$bin"
done

echo "installed ssmbak and s3bak $version into $install_dir"
case ":$PATH:" in
    *":$install_dir:"*) ;;
    *) echo "add $install_dir to your PATH" ;;
esac
echo "to check where it was built: gh attestation verify $name.tar.gz --repo ${repo_url#https://github.com/}"
