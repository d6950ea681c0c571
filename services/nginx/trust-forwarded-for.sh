#!/bin/sh
# Behind a load balancer (an AWS ALB), every connection comes from the balancer, so the
# per-client limits would count all clients as one. NGINX_REAL_IP_FROM lists the
# balancer's addresses (CIDRs, space-separated; in AWS the VPC's range): from those,
# and only those, nginx takes the client address from X-Forwarded-For. Empty: off, and
# X-Forwarded-For is never believed. Runs from /docker-entrypoint.d; writes an http-level
# include that nginx.conf picks up from conf.d.
set -eu

out=/etc/nginx/conf.d/real-ip.conf
ranges=${NGINX_REAL_IP_FROM:-}

if [ -z "$ranges" ]; then
  rm -f "$out" 2>/dev/null || true
  exit 0
fi

{
  echo "# Written at start from NGINX_REAL_IP_FROM by trust-forwarded-for.sh."
  for range in $ranges; do
    # An address or CIDR of digits, dots, colons and hex: anything else is a typo that
    # nginx would otherwise report far from its cause.
    case "$range" in
      *[!0-9A-Fa-f.:/]* | "")
        echo "trust-forwarded-for: NGINX_REAL_IP_FROM holds '$range', not an address or CIDR" >&2
        exit 1
        ;;
    esac
    echo "set_real_ip_from $range;"
  done
  echo "real_ip_header X-Forwarded-For;"
  # Walk X-Forwarded-For from the right past every trusted address: the first untrusted
  # one is the client, whatever a client wrote at the left of the header.
  echo "real_ip_recursive on;"
} >"$out.tmp"
mv "$out.tmp" "$out"
