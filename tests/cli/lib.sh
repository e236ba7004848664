# Helpers for CLI tests: expect an exit status and a message, count results.
passed=0
failed=0
expect() { # expect STATUS PATTERN -- command...
    local want=$1 pattern=$2
    shift 3
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [[ $rc -ne $want ]]; then
        echo "FAIL: '$*' exited $rc, expected $want; output: $out" >&2
        failed=$((failed + 1))
    elif [[ -n $pattern ]] && ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: '$*' output lacks /$pattern/: $out" >&2
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}
finish() {
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
