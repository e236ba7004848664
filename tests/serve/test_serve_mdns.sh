#!/bin/bash
# mDNS: `peerflash serve` advertises each --ota-port target (espota) and
# --arduino-ota target (arduinoOTA over HTTP) as _arduino._tcp with the TXT
# keys the Arduino IDE reads, through Debian's avahi-daemon
# (started here, with a private D-Bus), and python3-zeroconf finds them.
# Runs in its own network and mount namespace (unshare): only lo exists, so
# nothing is sent on any real network, and the avahi run directory is private.
PF=${1:?usage: $0 path/to/peerflash}
if [ -z "${PF_IN_NETNS:-}" ]; then
    command -v avahi-daemon >/dev/null && command -v dbus-daemon >/dev/null ||
        { echo "SKIP: avahi-daemon or dbus-daemon is not installed (scripts/install-deps.sh)"; exit 77; }
    /usr/bin/python3 -c 'import zeroconf' 2>/dev/null || { echo "SKIP: python3-zeroconf is not installed"; exit 77; }
    unshare -n -m true 2>/dev/null || { echo "SKIP: cannot make a private network namespace (needs root)"; exit 77; }
    PF_IN_NETNS=1 exec unshare -n -m bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
cd "$DIR" || exit 1
ip link set lo up || die "cannot bring lo up"
mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon || die "cannot make a private /run/avahi-daemon"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$DIR/system_bus_socket
spawn dbus-daemon --config-file=/usr/share/dbus-1/system.conf --address="$DBUS_SYSTEM_BUS_ADDRESS" --nofork --nopidfile \
    >dbus.log 2>&1
wait_file "$DIR/system_bus_socket" 10 || die "dbus-daemon did not start"
cat >avahi.conf <<'CONF'
[server]
host-name=pf-serve-test
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
CONF
spawn avahi-daemon -f "$DIR/avahi.conf" --no-drop-root --no-chroot --no-rlimits --no-proc-title >avahi.log 2>&1
for _ in $(seq 600); do grep -q "Server startup complete" avahi.log && break; sleep 0.05; done
grep -q "Server startup complete" avahi.log || die "avahi-daemon did not start: $(tail -3 avahi.log)"

spawn "$PF" sim stm32 --port "$DIR/stm" --flash stm.flash --chip G07xxB 2>stm.log
spawn "$PF" sim esp32 --port "$DIR/esp" --chip esp32 --flash esp.flash --flash-size 4MB 2>esp.log
wait_file "$DIR/stm" 20 && wait_file "$DIR/esp" 20 || die "sims"
spawn "$PF" sim stm32 --port "$DIR/stm2" --flash stm2.flash --chip G07xxB 2>stm2.log
wait_file "$DIR/stm2" 20 || die "sim stm2"
start_serve serve.log --target stm32 --port "$DIR/stm" --name bluepill --ota-port 8266 --board genericSTM32F103C \
    --target esp --port "$DIR/esp" --ota-port 3232 \
    --target stm32 --port "$DIR/stm2" --name uno --board uno --arduino-ota
HTTP_PORT=${URL##*:}
for _ in $(seq 600); do grep -q "mdns: advertised" serve.log && break; sleep 0.05; done
grep -q "mdns: advertised as _arduino._tcp" serve.log && ok "avahi confirms the records" || fail "not advertised: $(cat serve.log)"

$PY - "$HTTP_PORT" <<'PY' && ok "python3-zeroconf finds the espota targets and the arduinoOTA one (HTTP port, endpoints)" || fail "zeroconf"
import threading, time, sys
from zeroconf import Zeroconf, ServiceBrowser, ServiceStateChange, IPVersion
zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
found, done = {}, threading.Event()
def changed(zeroconf, service_type, name, state_change):
    if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info:
            found[name] = (info.port, {k.decode(): (v or b"").decode() for k, v in info.properties.items()},
                           info.parsed_addresses())
            if len(found) >= 3:
                done.set()
browser = ServiceBrowser(zc, "_arduino._tcp.local.", handlers=[changed])
done.wait(40)
browser.cancel()
zc.close()
print(found)
b = found.get("bluepill._arduino._tcp.local.")
e = found.get("esp._arduino._tcp.local.")
assert b and e, found
assert b[0] == 8266 and e[0] == 3232
assert b[1] == {"board": "genericSTM32F103C", "tcp_check": "no", "ssh_upload": "no", "auth_upload": "no"}, b
assert e[1]["board"] == "esp" and e[1]["auth_upload"] == "no"
assert "127.0.0.1" in b[2]
u = found.get("uno._arduino._tcp.local.")
assert u and u[0] == int(sys.argv[1]), u  # arduinoOTA's -port is the SRV port: the HTTP API's
assert u[1] == {"board": "uno", "tcp_check": "no", "ssh_upload": "no", "auth_upload": "no",
                "endpoint_upload": "/api/targets/uno/arduino/upload", "endpoint_sync": "/api/targets/uno/arduino/sync",
                "endpoint_reset": "/api/targets/uno/arduino/reset", "sync_return": "200:SYNC"}, u
PY
kill -TERM $SERVE_PID
wait $SERVE_PID
[ $? -eq 0 ] && ok "the daemon stops cleanly with mDNS on" || fail "stop"
exit $FAILED
