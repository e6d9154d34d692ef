# parallax-files: file operations inside an agent, run as the agent's own user.
# $1 is the operation; paths arrive absolute and lexically clean ("~" stands for $HOME).
# Every path is resolved here, inside the container, and must lie in /workspace or $HOME.
# Exit codes the service maps: 64 outside, 65 missing, 66 not a file or folder, 67 conflict,
# 68 no space left, 69 too large, 70 folder not empty, 71 bad archive, 72 permission denied.
set -f
umask 022
fail() { printf '%s\n' "$2" >&2; exit "$1"; }
expand() {
  case $1 in
    "~") printf '%s' "$HOME" ;;
    "~/"*) printf '%s/%s' "${HOME%/}" "${1#"~/"}" ;;
    *) printf '%s' "$1" ;;
  esac
}
roots=
for r in /workspace "$HOME"; do
  [ -n "$r" ] || continue
  real=$(cd -P -- "$r" 2>/dev/null && pwd -P) || continue
  [ "$real" = / ] || roots="$roots$real
"
done
# Is $1 in one of the roots? (Its own spelling of them too, for the first, lexical look.)
inside() {
  old=$IFS; IFS='
'
  for r in $roots /workspace ${HOME:+"$HOME"}; do
    [ "$r" = / ] && continue
    case $1 in "$r" | "$r"/*) IFS=$old; return 0 ;; esac
  done
  IFS=$old
  return 1
}
# Is the resolved path $1 in one of the resolved roots?
really_inside() {
  old=$IFS; IFS='
'
  for r in $roots; do
    case $1 in "$r" | "$r"/*) IFS=$old; return 0 ;; esac
  done
  IFS=$old
  return 1
}
# Enter folder $1 (following links) and check where that really is.
enter() {
  inside "$1" || fail 64 "outside the agent's workspace and home"
  cd -P -- "$1" 2>/dev/null || {
    if [ -e "$1" ]; then fail 67 "not a folder"; else fail 65 "no such file or folder"; fi
  }
  here=$(pwd -P)
  really_inside "$here" || fail 64 "outside the agent's workspace and home"
}
# The nearest existing ancestor of $1 (itself when it exists).
existing() {
  probe=$1
  while [ ! -e "$probe" ] && [ ! -L "$probe" ]; do
    probe=${probe%/*}
    [ -n "$probe" ] || probe=/
  done
  printf '%s' "$probe"
}
# Make folder $1 (and its parents) after checking where its nearest existing ancestor is.
make_dir() {
  enter "$(existing "$1")"
  mkdir -p -- "$1" 2>/dev/null || fail 72 "cannot make the folder"
  enter "$1"
}
# The folder holding stage $2 of target folder $1: the target's nearest ancestor that has it.
find_stage() {
  probe=$1
  while :; do
    if [ -d "$probe/$2" ] && [ ! -L "$probe/$2" ]; then
      printf '%s' "$probe"
      return 0
    fi
    [ "$probe" != / ] || return 1
    probe=${probe%/*}
    [ -n "$probe" ] || probe=/
  done
}
no_space() {
  case $1 in *"No space left"* | *"Disk quota"*) return 0 ;; esac
  return 1
}
# Move everything in stage folder $1 into folder $2; with $3 = check, only look for a
# non-folder that would replace a folder (nothing is changed then).
merge() {
  local src dst item
  src=$1 dst=$2
  set +f
  for item in "$src"/* "$src"/.[!.]* "$src"/..?*; do
    [ -e "$item" ] || [ -L "$item" ] || continue
    target=$dst/${item##*/}
    if [ -d "$item" ] && [ ! -L "$item" ] && [ -d "$target" ] && [ ! -L "$target" ]; then
      merge "$item" "$target" "$3" || return 1
    elif [ -d "$target" ] && [ ! -L "$target" ]; then
      [ -d "$item" ] && [ ! -L "$item" ] || { printf '%s\n' "${target#./}" >&2; return 1; }
    elif [ "$3" != check ]; then
      rm -f -- "$target" 2>/dev/null
      mv -f -- "$item" "$target" || return 1
    fi
  done
  set -f
  return 0
}
op=$1
shift
case $op in
read)
  # read PATH MAX_BYTES: "ok file SIZE\n" then the bytes, or "ok dir SIZE\n" then a tar of
  # the folder's contents.
  path=$(expand "$1")
  inside "$path" || fail 64 "outside the agent's workspace and home"
  if [ -d "$path" ]; then
    enter "$path"
    [ -r . ] && [ -x . ] || fail 72 "permission denied"
    kb=$(du -sk . 2>/dev/null | cut -f1)
    [ "$((kb * 1024))" -le "$2" ] || fail 69 "$((kb * 1024))"
    printf 'ok dir %s\n' "$((kb * 1024))"
    exec tar -cf - .
  fi
  [ -e "$path" ] || [ -L "$path" ] || fail 65 "no such file or folder"
  [ -e "$path" ] || fail 64 "a link that leads nowhere"
  [ -f "$path" ] || fail 66 "not a regular file or folder"
  exec 3<"$path" 2>/dev/null || fail 72 "permission denied"
  real=$(readlink /proc/self/fd/3)
  really_inside "$real" || fail 64 "outside the agent's workspace and home"
  [ -f /proc/self/fd/3 ] || fail 66 "not a regular file or folder"
  size=$(stat -L -c %s /proc/self/fd/3)
  [ "$size" -le "$2" ] || fail 69 "$size"
  printf 'ok file %s\n' "$size"
  # Exactly the size announced, even if the file grows meanwhile.
  exec head -c "$size" <&3
  ;;
list)
  # list PATH LIMIT: "ok REALPATH\n", then per entry "TYPE/SIZE/MTIME/MODE\0NAME\0TARGET\0".
  enter "$(expand "$1")"
  [ -r . ] || fail 72 "permission denied"
  printf 'ok %s\n' "$here"
  set +f
  set --  "$2"
  limit=$1
  shift
  for item in * .[!.]* ..?*; do
    [ -e "$item" ] || [ -L "$item" ] || continue
    if [ "$#" -ge "$limit" ]; then more=1; break; fi
    set -- "$@" "$item"
  done
  set -f
  for item in "$@"; do
    meta=$(stat -c '%F/%s/%Y/%a' -- "$item" 2>/dev/null) || continue
    target=
    [ -L "$item" ] && target=$(readlink -- "$item")
    printf '%s\0%s\0%s\0' "$meta" "$item" "$target"
  done
  [ -z "${more:-}" ] || printf 'more\0'
  ;;
stage)
  # stage DIR STAGE [NAME]: stdin into STAGE/NAME, or (no NAME) a tar unpacked into STAGE;
  # STAGE is made in DIR's nearest existing ancestor, so that nothing shows before the commit.
  enter "$(existing "$(expand "$1")")"
  [ -w . ] || fail 72 "the folder is not writable"
  mkdir -m 700 -- "$2" 2>/dev/null || fail 72 "cannot write in the folder"
  if [ -n "${3:-}" ]; then
    err=$(cat >"$2/$3" 2>&1) || {
      rm -rf -- "$2"
      no_space "$err" && fail 68 "no space left"
      fail 72 "cannot write the file"
    }
  else
    err=$(tar -x -o -f - -C "$2" 2>&1) || {
      rm -rf -- "$2"
      no_space "$err" && fail 68 "no space left"
      fail 71 "$err"
    }
  fi
  printf 'ok\n'
  ;;
commit)
  # commit DIR STAGE: make DIR and move what STAGE holds into it (folders merged, files
  # replaced); nothing moves when a file would replace a folder.
  dir=$(expand "$1")
  base=$(find_stage "$dir" "$2") || fail 65 "nothing staged"
  enter "$base"
  staged=$here/$2
  merge "$staged" "$dir" check || { rm -rf -- "$staged"; fail 67 "a file would replace a folder"; }
  make_dir "$dir"
  merge "$staged" . || { rm -rf -- "$staged"; fail 72 "could not move everything into place"; }
  rm -rf -- "$staged"
  printf 'ok\n'
  ;;
discard)
  # discard DIR STAGE
  base=$(find_stage "$(expand "$1")" "$2") || { printf 'ok\n'; exit 0; }
  enter "$base"
  rm -rf -- "$2"
  printf 'ok\n'
  ;;
remove)
  # remove PATH RECURSIVE(0|1): the entry itself, never what a link leads to.
  path=$(expand "$1")
  name=${path##*/}
  parent=${path%/*}
  enter "${parent:-/}"
  [ -e "$name" ] || [ -L "$name" ] || fail 65 "no such file or folder"
  if [ -d "$name" ] && [ ! -L "$name" ]; then
    if [ "$2" = 1 ]; then
      rm -rf -- "$name" 2>/dev/null || fail 72 "permission denied"
    else
      rmdir -- "$name" 2>/dev/null || fail 70 "the folder is not empty"
    fi
  else
    rm -f -- "$name" 2>/dev/null || fail 72 "permission denied"
  fi
  printf 'ok\n'
  ;;
*)
  fail 2 "unknown operation"
  ;;
esac
