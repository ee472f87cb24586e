#!/bin/sh
# The kprim demo, run inside the test VM (make demo): short narrated scenes.
set -e
say() { printf '\n== %s\n' "$*"; }
say "kprim is loaded: /dev/kprim answers the API handshake"
kprimctl list
