#!/bin/bash
# Container healthcheck: asks nginx's own /nginx-health on the loopback interface.
# Uses bash's /dev/tcp, so the image needs no curl or wget.
set -o errexit -o pipefail -o nounset
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /nginx-health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 2 status_line <&3
[[ $status_line == *" 200 "* ]]
