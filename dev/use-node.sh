# Source this file (`. dev/use-node.sh`) to put a Node >= 22.12 first on PATH.
# wrangler and vitest need it; where the system Node is older, a Node 24 LTS is installed once
# from the npm registry (the `node` package carries the real binary) into .tools/node.
# POSIX sh, so npm scripts (run by sh from the package root) can source it too.
if [ -n "${BASH_SOURCE:-}" ]; then
  _celeriac_root="$(cd "$(dirname "$BASH_SOURCE")/.." && pwd)"
else
  _celeriac_root="$PWD"
fi
_celeriac_node_ok() {
  command -v node >/dev/null 2>&1 && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 22 || (a === 22 && b >= 12) ? 0 : 1)'
}
if [ -x "$_celeriac_root/.tools/node/node_modules/node/bin/node" ]; then
  PATH="$_celeriac_root/.tools/node/node_modules/node/bin:$PATH"
  export PATH
fi
if ! _celeriac_node_ok; then
  echo "[celeriac] system Node $(node --version 2>/dev/null || echo none) is older than 22.12; installing Node 24 from the npm registry into .tools/node" >&2
  npm install --silent --no-save --no-audit --no-fund --prefix "$_celeriac_root/.tools/node" node@24 >&2 &&
    PATH="$_celeriac_root/.tools/node/node_modules/node/bin:$PATH" && export PATH
  _celeriac_node_ok || { echo "[celeriac] could not provide Node >= 22.12" >&2; return 1 2>/dev/null || exit 1; }
fi
unset -f _celeriac_node_ok
unset _celeriac_root
