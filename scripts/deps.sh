# Shared by scripts/demo and scripts/test: make sure Debian packages are
# installed, installing the missing ones when we can (root), or saying
# exactly what to run when we cannot.
# Usage: ensure_packages CHECK:PACKAGE ... where CHECK is a command name, or
# "pc:NAME" for a pkg-config module.

have() {
  case "$1" in
    pc:*) pkg-config --exists "${1#pc:}" 2>/dev/null ;;
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

ensure_packages() {
  local missing=() spec
  for spec in "$@"; do
    have "${spec%%=*}" || missing+=("${spec#*=}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (sudo)" >&2
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]}; install them with: apt-get install ${missing[*]}" >&2
    return 1
  fi
}

# Building the default features needs a C toolchain, pkg-config, ALSA's
# headers (cpal: the `device` feature) and JACK's (the `jack` feature:
# jack-sys's build script asks pkg-config for `jack` on Linux even though
# libjack is loaded at run time). The embedder's build
# (`--no-default-features`) needs neither.
BUILD_DEPS=(cc=gcc pkg-config=pkg-config pc:alsa=libasound2-dev pc:jack=libjack-jackd2-dev)

# The -dev packages of BUILD_DEPS: what `.ci/run` removes (under CI=true)
# to prove the scripts install them on a machine that lacks them.
BUILD_DEV_PACKAGES=(libasound2-dev libjack-jackd2-dev)
