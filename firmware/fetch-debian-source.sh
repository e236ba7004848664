#!/usr/bin/env bash
# Fetches a Debian source package into DEST and prints the unpacked source
# directory. Used by the firmware build for the third-party code the MCU needs
# (mbedTLS for MD5/SHA-256, zlib for deflate): nothing third-party is
# committed, and what is built is what Debian ships, with Debian's patches.
#
#   fetch-debian-source.sh PACKAGE DEST
#
# Which version: first the one this machine has installed (the source version
# of its installed binary packages, from dpkg-query), then the newest in each
# suite of this machine's Debian archives, in the order apt lists them. An
# archive may list a source it cannot serve (the security suite answers 404
# for sources its index names), so every candidate is tried before giving up,
# and the failure names each one with the archive's answer.
#
# The system's apt configuration is left alone: a private deb-src list and
# private list/cache directories live under DEST/.apt. apt checks the files
# against the signed Release/Sources indexes (debian-archive-keyring).
# An unpacked tree from an earlier run is reused (no network then).
#
# PF_APT_GET overrides the apt-get command (the test of the fallback order).
set -euo pipefail
pkg=${1:?package}
dest=${2:?destination directory}
apt_get=${PF_APT_GET:-apt-get}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

existing=$(find "$dest" -maxdepth 1 -type d -name "$pkg-[0-9]*" | sort | tail -n 1)
if [[ -n "$existing" && -f "$existing/.pf-complete" ]]; then
    echo "$existing"
    exit 0
fi

say() { echo "fetch-debian-source: $*" >&2; }

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
apt_dir="$dest/.apt"
mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
# The deb-src entries mirror the machine's own Debian entries (same mirror,
# suites and keyring): the archives this machine is set up to use, no others.
src_list="$apt_dir/etc/sources.list.d/debian-src.sources"
one_line="$apt_dir/etc/sources.list.d/debian-src.list"
: > "$src_list"
: > "$one_line"
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    # deb822 stanzas signed by Debian's archive keyring, as deb-src.
    awk -v RS= -v ORS='\n\n' '/debian-archive-keyring/ { sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f" >> "$src_list"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    # one-line entries: "deb [opts] URI SUITE COMPONENTS" of this release's suites
    awk -v suite="$codename" '$1 == "deb" && $0 ~ (" " suite "([-/][a-z]+)? ") { $1 = "deb-src"; print }' "$f" >> "$one_line"
done
if [[ ! -s "$src_list" && ! -s "$one_line" ]]; then
    say "no Debian archive for '$codename' found in this machine's apt sources (/etc/apt/sources.list{,.d})"
    exit 1
fi
# The suites those entries name, in their order, without repeats.
mapfile -t suites < <(
    { awk '/^Suites:/ { for (i = 2; i <= NF; i++) print $i }' "$src_list"
      sed 's/\[[^]]*\]//' "$one_line" | awk '{ print $3 }'   # deb-src URI SUITE ...
    } | awk 'NF && !seen[$0]++')

opts=(-q -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
      -o "APT::Sandbox::User=$(id -un)" -o "Debug::NoLocking=1")

log="$apt_dir/$pkg.log"
: > "$log"
if [[ ! -f "$apt_dir/lists/.updated" ]]; then
    if ! timeout 300 "$apt_get" "${opts[@]}" update >>"$log" 2>&1; then
        say "'apt-get update' of the deb-src indexes (suites: ${suites[*]:-none}) failed (log: $log)"
        tail -n 5 "$log" >&2
        exit 1
    fi
    touch "$apt_dir/lists/.updated"
fi
command -v dpkg-source >/dev/null || { say "dpkg-source missing (apt-get install dpkg-dev)"; exit 1; }

# Candidates: the installed version first (what the host links is what the
# MCU builds), then each suite's newest.
installed=$(dpkg-query -W -f='${source:Package}\t${source:Version}\n' 2>/dev/null |
            awk -F'\t' -v p="$pkg" '$1 == p { print $2 }' | sort -u | head -n 1 || true)
candidates=()
[[ -n "$installed" ]] && candidates+=("$pkg=$installed")
for s in "${suites[@]}"; do candidates+=("$pkg/$s"); done

tried=()
for spec in "${candidates[@]}"; do
    # Each attempt unpacks into a scratch directory, so a half-downloaded
    # attempt never leaves files that the next one or a later run could use.
    work="$dest/.try"
    rm -rf "$work" && mkdir -p "$work"
    echo "=== apt-get source $spec" >>"$log"
    if (cd "$work" && timeout 300 "$apt_get" "${opts[@]}" source "$spec" >>"$log" 2>&1); then
        dir=$(find "$work" -maxdepth 1 -type d -name "$pkg-[0-9]*" | sort | tail -n 1)
        if [[ -n "$dir" ]]; then
            name=$(basename "$dir")
            rm -rf "${dest:?}/$name"
            mv "$dir" "$dest/$name"
            rm -rf "$work"
            touch "$dest/$name/.pf-complete"
            [[ ${#tried[@]} -eq 0 ]] || say "$pkg: using $spec after: ${tried[*]}"
            echo "$dest/$name"
            exit 0
        fi
        tried+=("$spec (no $pkg-* directory unpacked)")
        continue
    fi
    # The archive's answer for this candidate: apt's first "E:" line (it has
    # the URL and the HTTP status), else the last line it printed.
    answer=$(sed -n "/^=== apt-get source ${spec//\//\\/}\$/,\$p" "$log" | tail -n +2)
    why=$(grep -m1 '^E:' <<<"$answer" || tail -n 1 <<<"$answer")
    tried+=("$spec (${why:-failed})")
done
rm -rf "$dest/.try"
say "could not fetch the source of '$pkg' from this machine's Debian archives."
say "installed version: ${installed:-none installed}; suites: ${suites[*]:-none}"
for t in "${tried[@]}"; do say "  tried $t"; done
[[ ${#tried[@]} -gt 0 ]] || say "  nothing to try: no installed version and no suite"
say "full log: $log"
exit 1
