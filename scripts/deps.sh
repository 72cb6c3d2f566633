#!/usr/bin/env bash
# Installs the Debian packages memcreep needs to build and test, only those
# that are missing. Idempotent; needs root (or sudo) only when something is
# missing. Usage: scripts/deps.sh [build|test|bench]...
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libunwind-dev libdw-dev libelf-dev libnghttp2-dev libssl-dev
            libjansson-dev zlib1g-dev)
test_pkgs=(libcmocka-dev python3 python3-scipy python3-httpx python3-fastapi python3-uvicorn clang libclang-rt-14-dev clang-format git nginx-light openssl
           chromium golang-go prometheus python3-prometheus-client libpython3.11-testsuite strace util-linux)
bench_pkgs=(heaptrack time wrk nghttp2-client nginx-light python3 python3-httpx)

want=()
for set in "${@:-build}"; do
  case "$set" in
    build) want+=("${build_pkgs[@]}") ;;
    test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    bench) want+=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "deps.sh: unknown package set '$set' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# De-duplicate while keeping order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# A base with a dependency left missing stops every install: repair it first.
if ! $sudo apt-get check >/dev/null 2>&1; then
  $sudo apt-get install -y -qq --fix-broken >/dev/null
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
