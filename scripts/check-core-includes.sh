#!/bin/sh
# Fails when the portable core (src/core, include/ota) includes anything but
# <stdint.h> <stddef.h> <stdbool.h> <string.h> and its own "ota/..." headers, when
# its headers include each other in a cycle, or when one transport (native,
# arduino) includes another: they meet only in the update pipeline (docs/design.md).
set -eu
root=${1:-.}
bad=$(grep -HnE '^[[:space:]]*#[[:space:]]*include' "$root"/src/core/*.c "$root"/src/core/*.h "$root"/include/ota/*.h 2>/dev/null \
  | grep -vE '#[[:space:]]*include[[:space:]]*(<(stdint|stddef|stdbool|string)\.h>|"(ota/)?[a-z_]+\.h"|OTA_CFG_USER_FILE)' || true)
if [ -n "$bad" ]; then
  echo "core includes outside the allowed set (stdint.h stddef.h stdbool.h string.h ota/*.h):"
  echo "$bad"
  exit 1
fi
python3 - "$root" <<'PY'
import os, re, sys
root = sys.argv[1]
inc = os.path.join(root, "include", "ota")
graph = {}
for name in sorted(os.listdir(inc)):
    if name.endswith(".h"):
        text = open(os.path.join(inc, name)).read()
        graph[name] = set(re.findall(r'^\s*#\s*include\s*"ota/([a-z_]+\.h)"', text, re.M))
state = {}
def visit(h, path):
    if state.get(h) == 1:
        sys.exit("include cycle in the core: " + " -> ".join(path[path.index(h):] + [h]))
    if state.get(h) == 2:
        return
    state[h] = 1
    for d in sorted(graph.get(h, ())):
        visit(d, path + [h])
    state[h] = 2
for h in graph:
    visit(h, [])
transports = {"native", "arduino"}
for t in transports:
    for f in (os.path.join(root, "src", "core", t + ".c"), os.path.join(inc, t + ".h")):
        text = open(f).read()
        for other in transports - {t}:
            if re.search(r'#\s*include\s*"ota/%s\.h"' % other, text):
                sys.exit("%s includes ota/%s.h: transports meet only in ota/update.h" % (f, other))
PY
n=$(ls "$root"/src/core/*.c | wc -l)
echo "core include check: $n source files, only freestanding headers, no include cycle, no transport including another: 1 passed, 0 failed"
