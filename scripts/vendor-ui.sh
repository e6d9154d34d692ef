#!/usr/bin/env bash
# Development-time only: fetches the dashboard's third-party browser assets from the npm registry
# into src/parallax_docker/ui/static/vendor/, checked against pinned SHA-512 integrity values.
# Installing or running the service never runs this (the files are committed with the package);
# run it only to change a version, then update the pins below and VENDORED.md.
# Needs npm (Debian's `npm` package) for `npm pack`; nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=src/parallax_docker/ui/static/vendor

# name@version  npm dist.integrity  files to keep (from package/)
PACKAGES=(
  "@xterm/xterm@6.0.0|sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg==|xterm|lib/xterm.mjs css/xterm.css LICENSE"
  "@xterm/addon-fit@0.11.0|sha512-jYcgT6xtVYhnhgxh3QgYDnnNMYTcf8ElbxxFzX0IZo+vabQqSPAjC3c1wJrKB5E19VwQei89QCiZZP86DCPF7g==|addon-fit|lib/addon-fit.mjs LICENSE"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r spec integrity folder files <<<"$entry"
  tarball=$(cd "$work" && npm pack --silent "$spec")
  actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    echo "integrity mismatch for $spec: got $actual" >&2
    exit 1
  fi
  mkdir -p "$work/$folder" "$DEST/$folder"
  tar -xzf "$work/$tarball" -C "$work/$folder"
  for file in $files; do
    # The source-map comment would make a browser's devtools ask for a map we do not ship.
    sed '/^\/\/# sourceMappingURL=/d' "$work/$folder/package/$file" >"$DEST/$folder/$(basename "$file")"
  done
  echo "vendored $spec ($integrity)"
done
(cd "$DEST" && sha256sum */*) >"$DEST/SHA256SUMS"
