# Sourced by the esptool-js tests: installs esptool-js (pinned by
# js/package-lock.json) from the npm registry into $npm_dir once, under a
# lock so that parallel tests share it. Exits 77 (skipped) only when node is
# missing or the registry cannot be reached.
# needs: src (tests/esp), npm_dir (a build folder)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: node/npm not installed (Debian package nodejs)"; exit 77
fi
mkdir -p "$npm_dir"
(
    flock 9
    cd "$npm_dir" || exit 1
    if [ ! -f node_modules/esptool-js/package.json ] || ! cmp -s package-lock.json "$src/js/package-lock.json"; then
        cp "$src/js/package.json" "$src/js/package-lock.json" .
        timeout 180 npm ci --no-audit --no-fund >npm.log 2>&1 || exit 77
    fi
    cp "$src"/js/*.mjs .
) 9>"$npm_dir/.lock"
rc=$?
if [ $rc -eq 77 ]; then
    echo "SKIP: npm ci of esptool-js failed (registry unreachable?):"; tail -5 "$npm_dir/npm.log"; exit 77
fi
[ $rc -eq 0 ] || exit $rc
