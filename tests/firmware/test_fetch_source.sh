#!/usr/bin/env bash
# The firmware's third-party sources come from Debian source packages. An
# archive can list a source it cannot serve (bookworm-security answered 404
# for zlib's .dsc and broke every fresh build), so the fetch must try the
# installed version, then each suite, and name every attempt when all fail.
# A stand-in apt-get (PF_APT_GET) plays the archive; the machine's own apt
# sources and dpkg database give the suites and the installed version.
source "$(dirname "$0")/lib.sh"
fetch=$PF_SRC/firmware/fetch-debian-source.sh
pkg=zlib   # installed on every Debian machine (zlib1g)
installed=$(dpkg-query -W -f='${source:Package}\t${source:Version}\n' 2>/dev/null |
            awk -F'\t' -v p=$pkg '$1 == p { print $2 }' | sort -u | head -n 1)
[[ -n $installed ]] || skip "no package built from the $pkg source is installed"

# fake apt-get: 'update' succeeds; 'source SPEC' succeeds only for a SPEC
# listed in $tmp/serves (unpacking a $pkg-1.0 tree), else answers like a 404.
cat >"$tmp/apt-get" <<'SH'
#!/usr/bin/env bash
for a; do last=$a; done
case " $* " in
*" update "*) exit 0 ;;
*" source "*)
    echo "$last" >>"$FAKE_DIR/asked"
    if grep -qxF -- "$last" "$FAKE_DIR/serves" 2>/dev/null; then
        mkdir -p "${last%%[=/]*}-1.0" && echo "$last" >"${last%%[=/]*}-1.0/origin"
        exit 0
    fi
    echo "Err:1 http://archive.invalid $last (dsc)"
    echo "  404  Not Found"
    echo "E: Failed to fetch http://archive.invalid/pool/$last.dsc  404  Not Found"
    exit 100 ;;
esac
exit 1
SH
chmod +x "$tmp/apt-get"
export PF_APT_GET=$tmp/apt-get FAKE_DIR=$tmp

run_fetch() { # run_fetch DEST: output in $out, stderr in $err, status in $rc
    : >"$tmp/asked"
    out=$(bash "$fetch" $pkg "$1" 2>"$tmp/err")
    rc=$?
    err=$(cat "$tmp/err")
}
expect() { # expect NAME CONDITION...
    local name=$1
    shift
    if "$@"; then
        echo "ok: $name"
        passed=$((passed + 1))
    else
        echo "FAIL: $name"$'\n'"  stdout: $out"$'\n'"  stderr: $err"$'\n'"  asked: $(tr '\n' ' ' <"$tmp/asked")"
        failed=$((failed + 1))
    fi
}

# 1. The installed version is served: it is the one taken, and first asked.
echo "$pkg=$installed" >"$tmp/serves"
run_fetch "$tmp/d1"
expect "installed version is fetched first" \
    test $rc -eq 0 -a "$(head -n 1 "$tmp/asked")" = "$pkg=$installed" -a "$(cat "$out/origin" 2>/dev/null)" = "$pkg=$installed"
expect "the tree is marked complete" test -f "$out/.pf-complete"

# 2. A second run reuses the tree and asks the archive nothing.
run_fetch "$tmp/d1"
expect "an unpacked tree is reused without asking" test $rc -eq 0 -a ! -s "$tmp/asked" -a -d "$out"

# 3. The installed version 404s (the security suite's case): the suites are
#    tried in order and the first that serves is used, with a note saying so.
mapfile -t suites < <(bash -c '
    for f in /etc/apt/sources.list.d/*.sources; do [[ -f $f ]] && awk -v RS= "/debian-archive-keyring/" "$f"; done |
        awk "/^Suites:/ { for (i = 2; i <= NF; i++) print \$i }"' | awk '!seen[$0]++')
if [[ ${#suites[@]} -ge 1 ]]; then
    last_suite=${suites[${#suites[@]}-1]}
    echo "$pkg/$last_suite" >"$tmp/serves"
    run_fetch "$tmp/d2"
    expect "falls back to suite $last_suite when the installed version 404s" \
        test $rc -eq 0 -a "$(cat "$out/origin" 2>/dev/null)" = "$pkg/$last_suite"
    expect "it says which candidate it used and what failed before" \
        grep -qF "using $pkg/$last_suite after: $pkg=$installed (" <<<"$err"
    expect "no scratch directory is left behind" test ! -e "$tmp/d2/.try"
else
    echo "note: this machine's apt sources have no deb822 Debian suites; fallback case not run"
fi

# 4. Nothing is served: exit 1, and the message names every candidate with
#    the archive's answer and the log.
: >"$tmp/serves"
run_fetch "$tmp/d3"
expect "fails when no candidate is served" test $rc -eq 1 -a -z "$out"
expect "the failure names the installed version it tried" grep -qF "tried $pkg=$installed (" <<<"$err"
expect "the failure quotes the archive's 404" grep -q "404  Not Found" <<<"$err"
for s in "${suites[@]}"; do
    expect "the failure names suite $s" grep -qF "tried $pkg/$s (" <<<"$err"
done
expect "the failure points at the full log" grep -q "full log: .*/\.apt/$pkg\.log" <<<"$err"
expect "nothing half-fetched is left to be reused" test -z "$(find "$tmp/d3" -maxdepth 1 -name "$pkg-*")"
finish
