#!/usr/bin/env bash
# Build a Debian bookworm minbase root filesystem for the ragctl test images
# and pack it into a tarball that `docker import` can take.
#
# usage: mkrootfs.sh MIRROR_URL WORK_DIR OUT_TAR
#   MIRROR_URL  Debian mirror (read from this machine's apt sources by build.sh)
#   WORK_DIR    scratch directory for the root filesystem (wiped first)
#   OUT_TAR     tarball to write
# Runs as root. Packages come from packages.txt beside this script.
set -euo pipefail

mirror="$1"; rootfs="$(realpath -m "$2")"; out="$(realpath -m "$3")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_dir="$(dirname "$rootfs")/debs"

log() { printf '[mkrootfs %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

unmount_all() {
  # Unmount anything left mounted below the rootfs (deepest first).
  if [ -d "$rootfs" ]; then
    local m
    for m in $( (findmnt -rn -o TARGET | grep -F "$rootfs/" | sort -r) || true); do
      umount -l "$m" 2>/dev/null || true
    done
  fi
}
trap unmount_all EXIT

unmount_all
rm -rf --one-file-system "$rootfs"
mkdir -p "$rootfs" "$cache_dir"

mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/packages.txt")

log "debootstrap --variant=minbase bookworm from $mirror"
keyring=()
[ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
  || keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
debootstrap --variant=minbase "${keyring[@]}" --cache-dir="$cache_dir" bookworm "$rootfs" "$mirror" >&2

# Never start services while installing into the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
# The postgres entrypoint creates its own cluster in $PGDATA.
mkdir -p "$rootfs/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$rootfs/etc/postgresql-common/createcluster.d/ragctl-test.conf"
# Keep images small.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/ragctl-test-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$rootfs/etc/apt/apt.conf.d/90ragctl-test"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"

mount -t proc proc "$rootfs/proc"
log "installing ${#pkgs[@]} packages: ${pkgs[*]}"
chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
  sh -c 'apt-get update -q && apt-get install -y -q "$@" && apt-get clean' sh "${pkgs[@]}" >&2
umount "$rootfs/proc"

# Trim: apt lists, caches, logs, docs dpkg installed before the exclude rule.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
: >"$rootfs/etc/resolv.conf"
# No cluster must have been created.
rm -rf "$rootfs"/etc/postgresql/15/main "$rootfs"/var/lib/postgresql/15/main

log "packing $out"
tar --numeric-owner -C "$rootfs" -cf "$out.tmp" .
mv "$out.tmp" "$out"
rm -rf --one-file-system "$rootfs"
log "rootfs tarball: $(du -h "$out" | cut -f1)"
