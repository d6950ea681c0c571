#!/bin/bash
# Container healthcheck: GET a path from nginx on the loopback interface, expect a 200.
#   nginx-healthcheck            nginx itself is up (/nginx-health, answered by nginx)
#   nginx-healthcheck /healthz   nginx has resolved the upstream and a web replica answers
# Uses bash's /dev/tcp, so the image needs no curl or wget.
set -o errexit -o pipefail -o nounset
path=${1:-/nginx-health}
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nX-Request-ID: container-healthcheck\r\n\r\n' "$path" >&3
read -r -t 2 status_line <&3
[[ $status_line == *" 200 "* ]]
