#!/bin/sh
# Fails when the portable core (src/core, include/ota) includes anything but
# <stdint.h> <stddef.h> <stdbool.h> <string.h> and its own "ota/..." headers.
set -eu
root=${1:-.}
bad=$(grep -HnE '^[[:space:]]*#[[:space:]]*include' "$root"/src/core/*.c "$root"/src/core/*.h "$root"/include/ota/*.h 2>/dev/null \
  | grep -vE '#[[:space:]]*include[[:space:]]*(<(stdint|stddef|stdbool|string)\.h>|"(ota/)?[a-z_]+\.h"|OTA_CFG_USER_FILE)' || true)
if [ -n "$bad" ]; then
  echo "core includes outside the allowed set (stdint.h stddef.h stdbool.h string.h ota/*.h):"
  echo "$bad"
  exit 1
fi
n=$(ls "$root"/src/core/*.c | wc -l)
echo "core include check: $n source files, only freestanding headers: 1 passed, 0 failed"
