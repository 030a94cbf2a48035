#!/usr/bin/env bash
# Baseline tools the benchmarks compare against, and the network bed's ip and nft (Debian packages).
set -euo pipefail
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v aria2c >/dev/null || need+=(aria2)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
