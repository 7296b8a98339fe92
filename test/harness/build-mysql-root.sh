#!/usr/bin/env bash
# Builds, once, a minimal Debian sid file tree holding MySQL's server (Debian stable ships only MariaDB), for the
# test harness to run mysqld in with chroot. Needs root and debootstrap. Prints the tree's path when it is ready.
#
#   usage: build-mysql-root.sh [DIR]   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tributary/mysql-root)
set -euo pipefail

dest="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/tributary/mysql-root}"
ready() { [ -f "$dest/.complete" ] && [ -d "$dest/var/lib/tributary-template/mysql" ]; }
if ready; then echo "$dest"; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "building the MySQL tree needs root (debootstrap and chroot)" >&2; exit 3; }
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 3; }

mkdir -p "$(dirname "$dest")"
# One build at a time: test files start servers in parallel.
exec 9>"$dest.lock"
flock 9
if ready; then echo "$dest"; exit 0; fi

# The Debian mirror apt already uses (deb822 .sources or a one-line sources.list).
mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)"
if [ -z "$mirror" ]; then
  mirror="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

work="$dest.partial"
rm -rf "$work"
echo "building MySQL tree from $mirror (about a minute, once)" >&2
debootstrap --variant=minbase sid "$work" "$mirror" >&2
# The sid Release file can read as expired on a snapshot mirror.
chroot "$work" apt-get -o Acquire::Check-Valid-Until=false -qq update >&2
chroot "$work" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  mysql-server-core mysql-client-core >&2
chroot "$work" apt-get clean
# mysqld drops root for this account; the -core packages do not create it.
chroot "$work" sh -c 'getent passwd mysql >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin mysql'
# An initialized data directory that each throwaway server copies (initializing one takes several seconds).
chroot "$work" mysqld --no-defaults --initialize-insecure --user=mysql --datadir=/var/lib/tributary-template >&2
touch "$work/.complete"
rm -rf "$dest"
mv "$work" "$dest"
echo "$dest"
