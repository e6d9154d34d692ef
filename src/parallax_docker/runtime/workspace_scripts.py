"""The shell run inside an agent (as its own user) to snapshot and diff its workspace.

Fixed text: every value arrives as a positional parameter. POSIX sh with find, stat and
sha256sum (busybox has them); git only when the image has it. Names holding a newline are left
out of snapshots (they cannot be told apart in ``find``'s output).
"""

from __future__ import annotations

# snapshot ROOT HASH_MAX_KB: "root REAL\n", "git HEAD\n" (in a work tree), then "stat\n" with
# "TYPE|SIZE|MTIME|./PATH" lines, "hash\n" with sha256sum lines, "end\n".
SNAPSHOT = r"""
set -f
cd -P -- "$1" 2>/dev/null || { printf 'none\n'; exit 0; }
printf 'root %s\n' "$(pwd -P)"
if command -v git >/dev/null 2>&1 &&
  [ "$(git -c safe.directory='*' rev-parse --is-inside-work-tree 2>/dev/null)" = true ]; then
  printf 'git %s\n' "$(git -c safe.directory='*' rev-parse -q --verify HEAD 2>/dev/null)"
fi
printf 'stat\n'
find . -name .git -prune -o \( -type f -o -type l \) ! -path '*
*' -exec stat -c '%F|%s|%Y|%n' -- {} + 2>/dev/null
printf 'hash\n'
find . -name .git -prune -o -type f ! -path '*
*' -size -"$2"k -exec sha256sum -- {} + 2>/dev/null
printf 'end\n'
"""

# git-diff ROOT BASE: "head SHA\nbase SHA\n", then commits since BASE ("SHA\x1fAUTHOR\x1fDATE
# \x1fSUBJECT\x1e" each), "\0\0", `git diff --name-status -z` of the work tree (untracked files
# included through a throwaway index) against BASE, "\0\0", the unified diff. BASE empty: the
# empty tree. Exit 66 when ROOT is not in a git work tree.
GIT_DIFF = r"""
set -f
cd -P -- "$1" 2>/dev/null || exit 65
g() { git -c safe.directory='*' -c core.quotepath=off "$@"; }
command -v git >/dev/null 2>&1 || exit 66
[ "$(g rev-parse --is-inside-work-tree 2>/dev/null)" = true ] || exit 66
head=$(g rev-parse -q --verify HEAD 2>/dev/null)
empty=$(g hash-object -t tree /dev/null)
base=$2
if [ -z "$base" ] || ! g cat-file -e "$base^{commit}" 2>/dev/null; then base=$empty; fi
printf 'head %s\nbase %s\n' "$head" "$base"
format='%H%x1f%an%x1f%aI%x1f%s%x1e'
if [ -n "$head" ] && [ "$base" != "$empty" ]; then
  g log -n 500 --format="$format" "$base..HEAD" -- 2>/dev/null
elif [ -n "$head" ]; then
  g log -n 500 --format="$format" HEAD -- 2>/dev/null
fi
printf '\0\0'
index=$(mktemp) || exit 70
trap 'rm -f "$index"' EXIT
real=$(g rev-parse --git-path index)
if [ -f "$real" ]; then cp -- "$real" "$index"; else rm -f -- "$index"; fi
GIT_INDEX_FILE=$index g add -N -- . >/dev/null 2>&1
GIT_INDEX_FILE=$index g diff --relative --name-status -z -M "$base" -- 2>/dev/null
printf '\0\0'
GIT_INDEX_FILE=$index g diff --relative -M --no-color --no-ext-diff "$base" -- 2>/dev/null
exit 0
"""
