#!/bin/sh
# Managed by groundwork (vip): keepalived runs this every 2 s; when nothing listens on the port, this host
# goes to FAULT and gives up the VIP. (The tutorial's `ss -lnt | grep PORT` also matches 17443.)
port=${1:?usage: check_port.sh PORT}
ss -Hlnt "sport = :$port" | grep -q . && exit 0
echo "nothing listens on port $port" >&2
exit 1
