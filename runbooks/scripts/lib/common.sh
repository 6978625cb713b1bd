# shellcheck shell=bash
# ---- common: helpers shared by raise-limits.sh, notrack-ports.sh and rollback.sh -----------------
# SSM runs one script per document step, so this file is never shipped on its own: building a
# document (functions/core/runbook/document.ts) replaces each script's include line with this text,
# and a script run as a file sources it. The including script sets DOCUMENT (readonly) first.
export LC_ALL=C
umask 077
readonly STATE_DIR=${CONNTRACK_RESPONDER_STATE_DIR:-/var/lib/conntrack-responder}
readonly ROOT=${CONNTRACK_RESPONDER_ROOT:-}
readonly COMMENT_PREFIX=conntrack-responder
# The init network namespace's inode is a kernel constant (PROC_NET_INIT_INO) since Linux 3.19.
readonly INIT_NET_LINK_CONSTANT='net:[4026531833]'

reasons=()
change_dir=''
init_netns_path=''
own_netns=''

log() { printf '%s: %s\n' "$DOCUMENT" "$*" >&2; }

# How every script ends early: `finish STATUS CODE` is the including script's own (it prints the
# one JSON document); a refusal exits 3 having changed nothing, a failure exits 1. Each script sets
# `trap 'on_error "$LINENO" "$?"' ERR` once its finish is defined.
refuse() {
  reasons+=("$1")
  log "refused: $1"
  finish refused 3
}

fail() {
  reasons+=("$1")
  log "failed: $1"
  finish failed 1
}

on_error() {
  trap - ERR
  fail "unexpected error at line $1 (exit $2); see stderr"
}

# Prints $1 as a JSON string (quotes included); control characters other than \n \r \t become '?'.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=${s//[$'\001'-$'\037']/?}
  printf '"%s"' "$s"
}

# Prints the arguments as a JSON array of strings.
json_array() {
  local out='[' sep='' item
  for item in "$@"; do
    out+="$sep$(json_str "$item")"
    sep=','
  done
  printf '%s]' "$out"
}

# Prints its arguments (already JSON values) as a JSON array.
json_raw_array() {
  local out='[' sep='' item
  for item in "$@"; do
    out+="$sep$item"
    sep=','
  done
  printf '%s]' "$out"
}

is_uint() { [[ $1 =~ ^(0|[1-9][0-9]{0,18})$ ]]; }

# Global conntrack settings live in the initial network namespace. On an instance SSM runs there
# already; in the lab the script runs in a namespace that plays the instance and reaches the
# initial namespace through a process that lives in it (PID 1 when /proc/1/ns is readable).
resolve_init_netns() {
  local init_link candidate link
  own_netns=$(readlink /proc/self/ns/net)
  if init_link=$(readlink /proc/1/ns/net 2>/dev/null); then
    [ "$init_link" = "$own_netns" ] || init_netns_path=/proc/1/ns/net
    return 0
  fi
  [ "$own_netns" = "$INIT_NET_LINK_CONSTANT" ] && return 0
  for candidate in /proc/[0-9]*/ns/net; do
    link=$(readlink "$candidate" 2>/dev/null) || continue
    if [ "$link" = "$INIT_NET_LINK_CONSTANT" ]; then
      init_netns_path=$candidate
      return 0
    fi
  done
  return 1
}

in_init_netns() {
  if [ -z "$init_netns_path" ]; then
    "$@"
  else
    nsenter --net="$init_netns_path" -- "$@"
  fi
}

global_read() { in_init_netns cat "$1"; }

# global_write PATH VALUE: VALUE is always a validated decimal number.
global_write() {
  # shellcheck disable=SC2016 # $1/$2 expand in the inner shell, as positional parameters
  in_init_netns sh -c 'printf "%s\n" "$1" > "$2"' sh "$2" "$1"
}

global_writable() {
  # shellcheck disable=SC2016
  in_init_netns sh -c 'test -w "$1"' sh "$1"
}

# Serialises the remediation scripts on this host (one change at a time).
lock_state_dir() {
  mkdir -p "$STATE_DIR/changes"
  chmod 700 "$STATE_DIR"
  exec 9>>"$STATE_DIR/.lock"
  if ! flock -w 120 9; then
    log "another conntrack-responder change holds $STATE_DIR/.lock"
    return 1
  fi
}

# A ChangeId names one change. `rerun_of_change WANTED` (the change's params text) returns 0 when
# $change_dir already holds that very change (same document, same parameters, same network
# namespace, not rolled back): the run is a re-run. It returns 1 when there is no such change yet,
# and refuses a ChangeId that belongs to anything else. change_id is the including script's.
# shellcheck disable=SC2154
rerun_of_change() {
  local wanted=$1 document
  [ -d "$change_dir" ] || return 1
  document=$(cat "$change_dir/document" 2>/dev/null || true)
  [ "$document" = "$DOCUMENT" ] ||
    refuse "ChangeId $change_id already belongs to a '${document:-unknown}' change: use a new ChangeId"
  [ ! -e "$change_dir/rolled-back" ] ||
    refuse "ChangeId $change_id was rolled back: use a new ChangeId for a new change"
  [ "$(cat "$change_dir/params")" = "$wanted" ] ||
    refuse "ChangeId $change_id was used with other parameters ($(tr '\n' ' ' <"$change_dir/params")): use a new ChangeId"
  [ "$(cat "$change_dir/netns")" = "$own_netns" ] ||
    refuse "ChangeId $change_id was applied in network namespace $(cat "$change_dir/netns"), this run is in $own_netns"
  return 0
}

# Reads "key=value" from the change's params file.
change_param() {
  local line
  while IFS= read -r line; do
    if [ "${line%%=*}" = "$1" ]; then
      printf '%s' "${line#*=}"
      return 0
    fi
  done <"$change_dir/params"
  return 1
}

# Persisted files. Every file a change writes is recorded once, in order, in $change_dir/files:
#   file-created PATH N | file-changed PATH N | link-created PATH TARGET | dir-created PATH
# with files.d/N.orig (the previous content of a changed file) and files.d/N.ours (what we wrote
# last), so rollback removes what the change created and restores what it changed, and leaves
# alone anything someone else edited since.
file_record_index() {
  local kind path rest
  [ -f "$change_dir/files" ] || return 1
  while read -r kind path rest; do
    case $kind in
      file-created | file-changed)
        if [ "$path" = "$1" ]; then
          printf '%s' "$rest"
          return 0
        fi
        ;;
    esac
  done <"$change_dir/files"
  return 1
}

ensure_dir() {
  local dir=$1
  [ -d "$dir" ] && return 0
  ensure_dir "$(dirname "$dir")"
  mkdir "$dir"
  chmod 755 "$dir"
  printf 'dir-created %s\n' "$dir" >>"$change_dir/files"
}

# persist_file PATH MODE CONTENT: returns 0 when it wrote, 1 when the file already had CONTENT.
# Files that existed before are recorded with a copy; CONTENT has no trailing newline.
persist_file() {
  local path=$1 mode=$2 content=$3 n tmp
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
    return 1
  fi
  mkdir -p "$change_dir/files.d"
  ensure_dir "$(dirname "$path")"
  if ! n=$(file_record_index "$path"); then
    n=1
    if [ -f "$change_dir/files" ]; then n=$(($(wc -l <"$change_dir/files") + 1)); fi
    if [ -e "$path" ]; then
      cp -p "$path" "$change_dir/files.d/$n.orig"
      printf 'file-changed %s %s\n' "$path" "$n" >>"$change_dir/files"
    else
      printf 'file-created %s %s\n' "$path" "$n" >>"$change_dir/files"
    fi
  fi
  printf '%s\n' "$content" >"$change_dir/files.d/$n.ours"
  tmp="$path.$COMMENT_PREFIX.$$"
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$path"
  return 0
}

# persist_link PATH TARGET: a symbolic link (systemd's *.wants/), recorded like a file.
persist_link() {
  local path=$1 target=$2
  if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
    return 1
  fi
  if [ -e "$path" ] || [ -L "$path" ]; then
    log "$path exists and is not our link to $target: left alone"
    reasons+=("$path exists and is not our link to $target: left alone")
    return 1
  fi
  ensure_dir "$(dirname "$path")"
  ln -s "$target" "$path"
  printf 'link-created %s %s\n' "$path" "$target" >>"$change_dir/files"
  return 0
}

# Undoes $change_dir/files in reverse order, appending one JSON object per file it removed or
# restored to restored_files_json. A file someone edited since is left alone and reported.
restored_files_json=()
restore_persisted_files() {
  local records=() i kind path rest now
  [ -f "$change_dir/files" ] || return 0
  mapfile -t records <"$change_dir/files"
  for ((i = ${#records[@]} - 1; i >= 0; i--)); do
    read -r kind path rest <<<"${records[i]}"
    case $kind in
      file-created | file-changed)
        if [ ! -e "$path" ] && [ "$kind" = file-created ]; then
          continue
        fi
        now=''
        if [ -f "$path" ]; then now=$(cat "$path"); fi
        if [ "$now" != "$(cat "$change_dir/files.d/$rest.ours")" ]; then
          if [ "$kind" = file-changed ] && [ "$now" = "$(cat "$change_dir/files.d/$rest.orig")" ]; then
            continue
          fi
          reasons+=("$path was edited after this change wrote it: left as it is")
          continue
        fi
        if [ "$kind" = file-created ]; then
          rm -f "$path"
          restored_files_json+=("{\"path\":$(json_str "$path"),\"action\":\"removed\"}")
        else
          cp -p "$change_dir/files.d/$rest.orig" "$path.$COMMENT_PREFIX.$$"
          mv -f "$path.$COMMENT_PREFIX.$$" "$path"
          restored_files_json+=("{\"path\":$(json_str "$path"),\"action\":\"restored\"}")
        fi
        ;;
      link-created)
        if [ -L "$path" ] && [ "$(readlink "$path")" = "$rest" ]; then
          rm -f "$path"
          restored_files_json+=("{\"path\":$(json_str "$path"),\"action\":\"removed\"}")
        fi
        ;;
      dir-created)
        if [ -d "$path" ] && rmdir "$path" 2>/dev/null; then
          restored_files_json+=("{\"path\":$(json_str "$path"),\"action\":\"removed\"}")
        fi
        ;;
    esac
  done
}
# ---- common: end -----------------------------------------------------------------------------
