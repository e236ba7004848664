#!/usr/bin/env bash
# Fetches a Debian source package (the release this machine runs) into DEST
# and prints the unpacked source directory. Used by the firmware build for the
# third-party code the MCU needs (mbedTLS for MD5/SHA-256, zlib for deflate):
# nothing third-party is committed, and what is built is what Debian ships,
# with Debian's patches applied.
#
#   fetch-debian-source.sh PACKAGE DEST
#
# The system's apt configuration is left alone: a private deb-src list and
# private list/cache directories live under DEST/.apt. apt checks the files
# against the signed Release/Sources indexes (debian-archive-keyring).
# An unpacked tree from an earlier run is reused (no network then).
set -euo pipefail
pkg=${1:?package}
dest=${2:?destination directory}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

existing=$(find "$dest" -maxdepth 1 -type d -name "$pkg-[0-9]*" | sort | tail -n 1)
if [[ -n "$existing" && -f "$existing/.pf-complete" ]]; then
    echo "$existing"
    exit 0
fi

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
apt_dir="$dest/.apt"
mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
# The deb-src entries mirror the machine's own Debian entries (same mirror,
# suites and keyring): the archives this machine is set up to use, no others.
src_list="$apt_dir/etc/sources.list.d/debian-src.sources"
: > "$src_list"
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    # deb822 stanzas signed by Debian's archive keyring, as deb-src.
    awk -v RS= -v ORS='\n\n' '/debian-archive-keyring/ { sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f" >> "$src_list"
done
if [[ -f /etc/apt/sources.list ]]; then
    # one-line entries: "deb [opts] URI SUITE COMPONENTS" of the Debian suites
    awk -v suite="$suite" '$1 == "deb" && $0 ~ (" " suite "([-/][a-z]+)? ") { $1 = "deb-src"; print }' \
        /etc/apt/sources.list | sed 's/^/# one-line: /' > "$apt_dir/oneline.txt"
    if [[ -s "$apt_dir/oneline.txt" ]]; then
        mkdir -p "$apt_dir/etc/sources.list.d"
        sed 's/^# one-line: //' "$apt_dir/oneline.txt" > "$apt_dir/etc/sources.list.d/debian-src.list"
    fi
fi
if [[ ! -s "$src_list" && ! -s "$apt_dir/etc/sources.list.d/debian-src.list" ]]; then
    echo "fetch-debian-source: no Debian archive found in this machine's apt sources" >&2
    exit 1
fi
opts=(-q -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
      -o "APT::Sandbox::User=$(id -un)" -o "Debug::NoLocking=1")

log="$apt_dir/$pkg.log"
if [[ ! -f "$apt_dir/lists/.updated" ]]; then
    if ! timeout 300 apt-get "${opts[@]}" update >"$log" 2>&1; then
        echo "fetch-debian-source: 'apt-get update' of the deb-src index failed (see $log)" >&2
        tail -n 5 "$log" >&2
        exit 1
    fi
    touch "$apt_dir/lists/.updated"
fi
command -v dpkg-source >/dev/null || { echo "fetch-debian-source: dpkg-source missing (apt-get install dpkg-dev)" >&2; exit 1; }
if ! (cd "$dest" && timeout 300 apt-get "${opts[@]}" source "$pkg" >>"$log" 2>&1); then
    echo "fetch-debian-source: 'apt-get source $pkg' failed (see $log)" >&2
    tail -n 5 "$log" >&2
    exit 1
fi
dir=$(find "$dest" -maxdepth 1 -type d -name "$pkg-[0-9]*" | sort | tail -n 1)
[[ -n "$dir" ]] || { echo "fetch-debian-source: no $pkg-* directory after apt-get source" >&2; exit 1; }
touch "$dir/.pf-complete"
echo "$dir"
