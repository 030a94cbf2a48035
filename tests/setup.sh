#!/usr/bin/env bash
# Real BitTorrent clients the interoperability tests run against, and the browser the
# verifying loader's tests drive, and the tools of the network test bed (peerweb.tools.netbed:
# iproute2 for namespaces and veth, nftables for NAT and cut links) (Debian packages).
set -euo pipefail
need=()
command -v aria2c >/dev/null || need+=(aria2)
command -v mktorrent >/dev/null || need+=(mktorrent)
command -v qbittorrent-nox >/dev/null || need+=(qbittorrent-nox)
command -v transmission-cli >/dev/null || need+=(transmission-cli)
command -v chromium >/dev/null || need+=(chromium)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v tcpdump >/dev/null || need+=(tcpdump)  # the private-site test records loopback traffic
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing ${need[*]} for the interoperability and browser tests" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
