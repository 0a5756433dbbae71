#!/bin/sh
# The demo's source registry: serves plain until demo-setup has registered it with
# Ferry and written a configuration with notifications, then serves with that.
set -e
CONFIG=/shared/source-config.yml
if [ ! -f "$CONFIG" ]; then
  registry serve /etc/docker/registry/config.yml &
  plain=$!
  while [ ! -f "$CONFIG" ]; do sleep 1; done
  kill "$plain"
  wait "$plain" || true
fi
exec registry serve "$CONFIG"
