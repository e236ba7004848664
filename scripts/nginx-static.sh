#!/usr/bin/env bash
# nginx-static.sh conf DIR PORT: writes DIR/conf/nginx.conf for Debian's nginx
# serving DIR/www on 127.0.0.1:PORT as a plain static web server, with every
# path (pid, logs, temp files) inside DIR so that it runs without root's
# /var and beside other servers. Then: nginx -p DIR -c conf/nginx.conf -g 'daemon off;'
# More configuration, written before this runs, is included when present:
# DIR/conf/server.d/*.conf inside that server block (locations), and
# DIR/conf/http.d/*.conf in the http block (more servers, e.g. TLS).
set -euo pipefail
[[ ${1:-} == conf && $# -eq 3 ]] || { echo "usage: $0 conf DIR PORT" >&2; exit 2; }
dir=$(cd "$2" && pwd)
port=$3
mkdir -p "$dir/conf/server.d" "$dir/conf/http.d" "$dir/www" "$dir/logs" "$dir/tmp"
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
cat >"$dir/conf/nginx.conf" <<CONF
worker_processes 1;
$user_line
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log info;
events { worker_connections 64; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {
        listen 127.0.0.1:$port;
        root $dir/www;
        include $dir/conf/server.d/*.conf;
    }
    include $dir/conf/http.d/*.conf;
}
CONF
nginx -t -p "$dir" -c conf/nginx.conf >"$dir/logs/nginx-t.log" 2>&1 || { cat "$dir/logs/nginx-t.log" >&2; exit 1; }
