#!/usr/bin/env bash
# rollback: undoes exactly what one raise-limits or notrack-ports change saved under its change id:
# the sysctls (global ones in the initial network namespace) and the hash size it set, the rules
# and tables it added, and the files it persisted. Values, rules and files that someone else
# changed since are left alone and reported.
#
# Parameters (environment, from the SSM document): SSM_ChangeId. Not parameters (lab and tests
# only): CONNTRACK_RESPONDER_STATE_DIR, CONNTRACK_RESPONDER_ROOT.
# Prints one JSON object on stdout. Exit 0: rolled back or nothing left to undo; 3: refused
# (unknown change id; nothing changed); 1: failed.
# shellcheck disable=SC2317 # lib/common.sh defines helpers that not every script calls
set -euo pipefail
set -o errtrace
readonly DOCUMENT=rollback

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh

readonly NETFILTER=/proc/sys/net/netfilter

change_id=${SSM_ChangeId:-}
rolled_back_document=''
restored_json=()
matches_saved=null

finish() {
  local status=$1 code=$2
  [ -n "$change_dir" ] && [ -d "$change_dir" ] || change_dir=''
  printf '{"document":"%s","changeId":%s,"status":"%s","reasons":%s,"change":%s,' \
    "$DOCUMENT" "$(json_str "$change_id")" "$status" "$(json_array ${reasons[@]+"${reasons[@]}"})" \
    "$(if [ -n "$rolled_back_document" ]; then json_str "$rolled_back_document"; else printf null; fi)"
  printf '"restored":%s,"files":%s,"rulesetMatchesSaved":%s,"stateDir":%s}\n' \
    "$(json_raw_array ${restored_json[@]+"${restored_json[@]}"})" \
    "$(json_raw_array ${restored_files_json[@]+"${restored_files_json[@]}"})" "$matches_saved" \
    "$(if [ -n "$change_dir" ]; then json_str "$change_dir"; else printf null; fi)"
  exit "$code"
}

# refuse/fail/on_error (lib/common.sh) end through finish, so the trap is set only now.
trap 'on_error "$LINENO" "$?"' ERR

# ---- raise-limits -----------------------------------------------------------------------------
last_after() { # key -> the value the change last wrote, if any
  awk -v key="$1" '$2 == key { value = $3; found = 1 } END { if (found) print value; exit !found }' \
    "$change_dir/after"
}

rollback_limits() {
  resolve_init_netns || fail "cannot reach the initial network namespace, where nf_conntrack_max is written"
  local scope key before now after path write_path
  while read -r scope key before; do
    [ -n "$key" ] || continue
    if ! [[ $key =~ ^nf_conntrack_[a-z0-9_]+$ ]] || ! is_uint "$before"; then
      fail "$change_dir/values is damaged: '$scope $key $before'"
    fi
    path=$NETFILTER/$key
    if [ "$scope" = global ]; then now=$(global_read "$path"); else now=$(cat "$path"); fi
    if [ "$now" = "$before" ]; then continue; fi
    if ! after=$(last_after "$key") || [ "$now" != "$after" ]; then
      reasons+=("$key is $now, not the ${after:-value} this change set: someone changed it since, left as it is")
      continue
    fi
    write_path=$path
    if [ "$key" = nf_conntrack_buckets ] && [ -f "$change_dir/hash-path" ]; then
      write_path=$(cat "$change_dir/hash-path")
      [[ $write_path == "$NETFILTER/nf_conntrack_buckets" || $write_path == /sys/module/nf_conntrack/parameters/hashsize ]] ||
        fail "$change_dir/hash-path is damaged"
    fi
    log "restoring $key $now -> $before"
    if [ "$scope" = global ]; then
      global_write "$write_path" "$before" || fail "writing $before to $write_path failed"
      now=$(global_read "$path")
    else
      printf '%s\n' "$before" >"$path" || fail "writing $before to $path failed"
      now=$(cat "$path")
    fi
    [ "$now" = "$before" ] || fail "$key reads $now after restoring $before"
    restored_json+=("{\"kind\":\"sysctl\",\"name\":$(json_str "$key"),\"from\":$after,\"to\":$before}")
    if [ "$key" = nf_conntrack_max ]; then
      local count
      count=$(cat "$NETFILTER/nf_conntrack_count" 2>/dev/null || echo 0)
      if is_uint "$count" && [ "$count" -ge "$before" ]; then
        reasons+=("this namespace holds $count entries, at or above the restored nf_conntrack_max $before: new flows are dropped until entries expire")
      fi
    fi
  done <"$change_dir/values"
}

# ---- notrack-ports ----------------------------------------------------------------------------
nft_table_has_content() { # family table: anything besides empty chains
  nft list table "$1" "$2" 2>/dev/null | awk '
    /^table / || /^\tchain .*\{$/ || /^\t\ttype / || /^\t*\}$/ || /^[ \t]*$/ { next }
    { found = 1 } END { exit !found }'
}

# Save text on stdin -> the raw and filter tables without comments and counters. A table with no
# rule, no user chain and only ACCEPT policies is dropped: a legacy table stays registered once
# used, and an empty one filters nothing.
normalised_iptables() {
  awk '
    /^#/ { next }
    /^\*/ { name = $0; body = ""; content = 0; next }
    name != "*raw" && name != "*filter" { next }
    /^COMMIT/ { if (content) printf "%s\n%sCOMMIT\n", name, body; name = ""; next }
    /^:/ { sub(/\[[0-9]+:[0-9]+\]/, "[0:0]"); if ($2 != "ACCEPT") content = 1 }
    /^-/ { content = 1 }
    { body = body $0 "\n" }'
}

normalised_nft() {
  sed -e 's/ # handle [0-9]*$//' -e 's/packets [0-9]* bytes [0-9]*/packets 0 bytes 0/' | grep -v '^#' || true
}

rollback_notrack() {
  local backend records=() i kind a b c rest bin family table chain handle
  backend=$(cat "$change_dir/backend")
  [ -f "$change_dir/rules" ] && mapfile -t records <"$change_dir/rules"
  for ((i = ${#records[@]} - 1; i >= 0; i--)); do
    read -r kind a b c rest <<<"${records[i]}"
    case $kind in
      ipt)
        bin=$a table=$b chain=$c
        [[ $bin =~ ^ip6?tables(-legacy|-nft)?$ ]] || fail "$change_dir/rules is damaged: '${records[i]}'"
        local -a words
        read -r -a words <<<"$rest"
        if "$bin" -w -t "$table" -C "$chain" "${words[@]}" 2>/dev/null; then
          "$bin" -w -t "$table" -D "$chain" "${words[@]}" || fail "$bin -t $table -D $chain $rest failed"
          restored_json+=("{\"kind\":\"rule\",\"backend\":$(json_str "$backend"),\"binary\":$(json_str "$bin"),\"table\":$(json_str "$table"),\"chain\":$(json_str "$chain"),\"rule\":$(json_str "$rest"),\"action\":\"removed\"}")
        fi
        ;;
      nft)
        family=$a table=$b chain=$c
        local handles
        handles=$(nft -a list chain "$family" "$table" "$chain" 2>/dev/null |
          awk -v comment="comment \"$COMMENT_PREFIX:$change_id\"" 'index($0, comment) && match($0, / # handle [0-9]+$/) {
            print substr($0, RSTART + 10) }') || true
        for handle in $handles; do
          nft delete rule "$family" "$table" "$chain" handle "$handle" ||
            fail "nft delete rule $family $table $chain handle $handle failed"
          restored_json+=("{\"kind\":\"rule\",\"backend\":\"nftables\",\"family\":$(json_str "$family"),\"table\":$(json_str "$table"),\"chain\":$(json_str "$chain"),\"handle\":$handle,\"action\":\"removed\"}")
        done
        ;;
      created-table)
        # Only a table this change brought into existence, and only once nothing else is in it.
        family=$b table=$c
        if nft list table "$family" "$table" >/dev/null 2>&1; then
          if nft_table_has_content "$family" "$table"; then
            reasons+=("table $family $table holds rules added since this change: left in place")
          else
            nft delete table "$family" "$table" || fail "nft delete table $family $table failed"
            restored_json+=("{\"kind\":\"table\",\"family\":$(json_str "$family"),\"name\":$(json_str "$table"),\"action\":\"removed\"}")
          fi
        fi
        ;;
      *) fail "$change_dir/rules is damaged: '${records[i]}'" ;;
    esac
  done
  compare_with_saved "$backend"
}

# Reports whether the raw and filter tables are back to what the change saved (they differ when
# someone else changed them in between; a legacy raw table, once registered, stays as an empty table).
compare_with_saved() {
  local backend=$1 saved fam save_bin same=true
  for saved in "$change_dir"/ruleset.before/iptables-*.save; do
    [ -f "$saved" ] || continue
    fam=${saved##*/iptables-}
    fam=${fam%.save}
    if [ "$backend" = iptables-legacy ]; then
      save_bin=iptables-legacy-save
      command -v "$save_bin" >/dev/null 2>&1 || save_bin=iptables-save
    else
      save_bin=iptables-nft-save
      command -v "$save_bin" >/dev/null 2>&1 || save_bin=iptables-save
    fi
    [ "$fam" = ipv6 ] && save_bin=ip6${save_bin#ip}
    if [ "$(normalised_iptables <"$saved")" != "$("$save_bin" 2>/dev/null | normalised_iptables)" ]; then
      same=false
      reasons+=("the $fam raw/filter rules differ from the copy saved before the change (something else changed them since)")
    fi
  done
  if [ -f "$change_dir/ruleset.before/nftables.ruleset" ] && command -v nft >/dev/null 2>&1; then
    if [ "$(normalised_nft <"$change_dir/ruleset.before/nftables.ruleset")" != "$(nft list ruleset 2>/dev/null | normalised_nft)" ]; then
      same=false
      reasons+=("the nftables ruleset differs from the copy saved before the change (changed by something else since)")
    fi
  fi
  matches_saved=$same
}

main() {
  [[ $change_id =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ ]] ||
    refuse "ChangeId '$change_id' is invalid: expected 1-64 letters, digits and dashes, not starting with a dash"
  if [ ! -d "$STATE_DIR/changes/$change_id" ]; then
    refuse "unknown ChangeId $change_id: nothing was saved under $STATE_DIR/changes/$change_id"
  fi
  lock_state_dir || fail "could not lock $STATE_DIR"
  change_dir=$STATE_DIR/changes/$change_id
  rolled_back_document=$(cat "$change_dir/document" 2>/dev/null || true)
  if [ -e "$change_dir/rolled-back" ]; then
    reasons+=("change $change_id was already rolled back at $(cat "$change_dir/rolled-back")")
    finish unchanged 0
  fi
  own_netns=$(readlink /proc/self/ns/net)
  [ "$(cat "$change_dir/netns")" = "$own_netns" ] ||
    refuse "change $change_id was applied in network namespace $(cat "$change_dir/netns"), this run is in $own_netns"
  case $rolled_back_document in
    raise-limits) rollback_limits ;;
    notrack-ports) rollback_notrack ;;
    *) fail "$change_dir/document names no known change ('$rolled_back_document')" ;;
  esac
  restore_persisted_files
  if [ -z "$ROOT" ] && [ "$rolled_back_document" = notrack-ports ] && [ "${#restored_files_json[@]}" -gt 0 ] &&
    command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || reasons+=("systemctl daemon-reload failed")
  fi
  date -u +%Y-%m-%dT%H:%M:%SZ >"$change_dir/rolled-back"
  finish rolled-back 0
}

main
