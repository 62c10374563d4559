#!/usr/bin/env bash
# Run a command so that its DDS traffic stays on this machine: inside a private network namespace that has only
# loopback (needs root or unprivileged user namespaces); otherwise fall back to ROS's localhost-only discovery.
set -euo pipefail
if [ "${MAHMR_NO_NETNS:-0}" != "1" ] && unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && exec "$@"' bash "$@"
elif [ "${MAHMR_NO_NETNS:-0}" != "1" ] && unshare -rn true 2>/dev/null; then
  exec unshare -rn bash -c 'ip link set lo up && exec "$@"' bash "$@"
fi
echo "[isolated] no network namespace available: using ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" >&2
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1
exec "$@"
