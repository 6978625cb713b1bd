#!/usr/bin/env bash
# raise-limits: raises nf_conntrack_max (and optionally the hash size and conntrack timeouts)
# within a memory budget, after saving the previous values under a change id for rollback.
#
# Parameters (environment, from the SSM document): SSM_ChangeId, SSM_MaxEntries, SSM_HashSize,
# SSM_Timeouts, SSM_MemoryBudgetPercent, SSM_Persist. Not parameters (lab and tests only):
# CONNTRACK_RESPONDER_STATE_DIR, CONNTRACK_RESPONDER_ROOT.
# Prints one JSON object on stdout. Exit 0: applied or unchanged; 3: refused (nothing changed);
# 1: failed.
# shellcheck disable=SC2317 # lib/common.sh defines helpers that not every script calls
set -euo pipefail
set -o errtrace
readonly DOCUMENT=raise-limits

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh

readonly INT_MAX=2147483647
# Every entry also carries a kmalloc'ed extension area (NAT, helper, acct, ...), preallocated at
# 128 bytes (NF_CT_EXT_PREALLOC).
readonly EXTENSION_BYTES=128
# When /proc/slabinfo cannot be read: the largest slab object seen on x86_64 (384) plus the extension.
readonly DEFAULT_ENTRY_BYTES=512
# HZ is at most 1000 and timeouts are kept in jiffies in an int.
readonly MAX_TIMEOUT_SECONDS=2147483
readonly NETFILTER=/proc/sys/net/netfilter
readonly MAX_PATH=$NETFILTER/nf_conntrack_max
readonly BUCKETS_PATH=$NETFILTER/nf_conntrack_buckets
readonly HASHSIZE_PARAM=/sys/module/nf_conntrack/parameters/hashsize
readonly SYSCTL_FILE=$ROOT/etc/sysctl.d/90-conntrack-responder.conf
readonly MODPROBE_FILE=$ROOT/etc/modprobe.d/conntrack-responder.conf
readonly MODULES_LOAD_FILE=$ROOT/etc/modules-load.d/conntrack-responder.conf

change_id=${SSM_ChangeId:-}
max_entries=${SSM_MaxEntries:-}
hash_size=${SSM_HashSize:-}
timeouts_param=${SSM_Timeouts:-}
budget_percent=${SSM_MemoryBudgetPercent:-5}
persist=${SSM_Persist:-false}

changes=()
owners_json=()
persisted_json=()
timeout_names=()
timeout_values=()
before_max='' before_buckets='' after_max='' after_buckets='' count=''
mem_total_bytes='' entry_bytes='' entry_bytes_source='' budget_bytes='' cost_bytes=''
hash_write_path=''
# Indexed like timeout_names (bash 4.2 has no namerefs, so no associative arrays passed around).
before_timeouts=()
after_timeouts=()

# timeouts_json before|after
timeouts_json() {
  local out='{' sep='' i value
  for ((i = 0; i < ${#timeout_names[@]}; i++)); do
    if [ "$1" = before ]; then value=${before_timeouts[i]:-null}; else value=${after_timeouts[i]:-null}; fi
    out+="$sep$(json_str "${timeout_names[i]}"):$value"
    sep=','
  done
  printf '%s}' "$out"
}

num_or_null() { if [ -n "$1" ]; then printf '%s' "$1"; else printf 'null'; fi; }

finish() {
  local status=$1 code=$2
  [ -n "$change_dir" ] && [ -d "$change_dir" ] || change_dir=''
  printf '{"document":"%s","changeId":%s,"status":"%s","reasons":%s,' \
    "$DOCUMENT" "$(json_str "$change_id")" "$status" "$(json_array ${reasons[@]+"${reasons[@]}"})"
  printf '"changes":%s,' "$(json_array ${changes[@]+"${changes[@]}"})"
  printf '"before":{"nf_conntrack_max":%s,"nf_conntrack_buckets":%s,"timeouts":%s},' \
    "$(num_or_null "$before_max")" "$(num_or_null "$before_buckets")" "$(timeouts_json before)"
  printf '"after":{"nf_conntrack_max":%s,"nf_conntrack_buckets":%s,"timeouts":%s},' \
    "$(num_or_null "$after_max")" "$(num_or_null "$after_buckets")" "$(timeouts_json after)"
  printf '"nf_conntrack_count":%s,' "$(num_or_null "$count")"
  printf '"memory":{"memTotalBytes":%s,"entryBytes":%s,"entryBytesSource":%s,"budgetPercent":%s,' \
    "$(num_or_null "$mem_total_bytes")" "$(num_or_null "$entry_bytes")" \
    "$(json_str "$entry_bytes_source")" "$(num_or_null "$(is_uint "$budget_percent" && echo "$budget_percent")")"
  printf '"budgetBytes":%s,"maxEntriesBytes":%s},' "$(num_or_null "$budget_bytes")" "$(num_or_null "$cost_bytes")"
  printf '"hashSizeWrittenTo":%s,' "$(if [ -n "$hash_write_path" ]; then json_str "$hash_write_path"; else printf null; fi)"
  printf '"persist":{"requested":%s,"files":%s},' \
    "$(if [ "$persist" = true ]; then echo true; else echo false; fi)" \
    "$(json_raw_array ${persisted_json[@]+"${persisted_json[@]}"})"
  printf '"owners":%s,' "$(json_raw_array ${owners_json[@]+"${owners_json[@]}"})"
  printf '"stateDir":%s}\n' "$(if [ -n "$change_dir" ]; then json_str "$change_dir"; else printf null; fi)"
  exit "$code"
}

# refuse/fail/on_error (lib/common.sh) end through finish, so the trap is set only now.
trap 'on_error "$LINENO" "$?"' ERR

validate_parameters() {
  [[ $change_id =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ ]] ||
    refuse "ChangeId '$change_id' is invalid: expected 1-64 letters, digits and dashes, not starting with a dash"
  [[ $max_entries =~ ^[0-9]{1,10}$ ]] ||
    refuse "MaxEntries '$max_entries' is invalid: expected a decimal number from 1 to $INT_MAX"
  max_entries=$((10#$max_entries))
  [ "$max_entries" -ne 0 ] ||
    refuse "MaxEntries 0 means 'no limit' to the kernel: the table could then grow until memory runs out"
  [ "$max_entries" -le "$INT_MAX" ] ||
    refuse "MaxEntries $max_entries is above $INT_MAX, the largest value the kernel accepts"
  if [ -n "$hash_size" ]; then
    [[ $hash_size =~ ^[1-9][0-9]{0,9}$ ]] ||
      refuse "HashSize '$hash_size' is invalid: expected empty or a decimal number from 1 to $INT_MAX"
    [ "$hash_size" -le "$INT_MAX" ] || refuse "HashSize $hash_size is above $INT_MAX"
    local granularity
    granularity=$(bucket_granularity)
    # Compared after the kernel's rounding: a 1:1 size rounded up to whole pages is fine.
    [ $(((hash_size + granularity - 1) / granularity)) -le $(((max_entries + granularity - 1) / granularity)) ] ||
      refuse "HashSize $hash_size is larger than MaxEntries $max_entries: more buckets than entries only wastes memory"
  fi
  [[ $budget_percent =~ ^([1-9]|[1-4][0-9]|50)$ ]] ||
    refuse "MemoryBudgetPercent '$budget_percent' is invalid: expected a whole number from 1 to 50"
  [[ $persist =~ ^(true|false)$ ]] || refuse "Persist '$persist' is invalid: expected true or false"
  local pair name seconds known
  if [ -n "$timeouts_param" ]; then
    # read takes the first line only: a second one would be dropped unseen.
    [[ $timeouts_param != *$'\n'* ]] || refuse "Timeouts is invalid: it holds a line break"
    local -a pairs
    IFS=',' read -r -a pairs <<<"$timeouts_param"
    [ "${#pairs[@]}" -le 16 ] || refuse "Timeouts has ${#pairs[@]} pairs: at most 16 are allowed"
    for pair in "${pairs[@]}"; do
      [[ $pair =~ ^([a-z][a-z0-9_]{0,63})=([1-9][0-9]{0,9})$ ]] ||
        refuse "Timeouts entry '$pair' is invalid: expected name=seconds, e.g. tcp_timeout_time_wait=30"
      name=${BASH_REMATCH[1]}
      seconds=${BASH_REMATCH[2]}
      [[ $name == *timeout* ]] ||
        refuse "Timeouts entry '$name' is not a conntrack timeout (its name must contain 'timeout')"
      [ -f "$NETFILTER/nf_conntrack_$name" ] ||
        refuse "Timeouts entry '$name': net.netfilter.nf_conntrack_$name does not exist on this kernel"
      [ "$seconds" -le "$MAX_TIMEOUT_SECONDS" ] ||
        refuse "Timeouts entry '$name=$seconds' is above $MAX_TIMEOUT_SECONDS seconds"
      for known in ${timeout_names[@]+"${timeout_names[@]}"}; do
        [ "$known" != "$name" ] || refuse "Timeouts names '$name' twice"
      done
      timeout_names+=("$name")
      timeout_values+=("$seconds")
    done
  fi
}

read_memory_figures() {
  local kb objsize
  kb=$(awk '$1 == "MemTotal:" { print $2; exit }' /proc/meminfo)
  is_uint "$kb" || fail "cannot read MemTotal from /proc/meminfo"
  mem_total_bytes=$((kb * 1024))
  # The cache is "nf_conntrack" on current kernels and "nf_conntrack_<address>" (one per netns)
  # on old ones such as RHEL 7; "nf_conntrack_expect" is a different object.
  objsize=$(awk '($1 == "nf_conntrack" || $1 ~ /^nf_conntrack_[0-9a-f]+$/) && $4 ~ /^[0-9]+$/ { print $4; exit }' \
    /proc/slabinfo 2>/dev/null || true)
  if is_uint "${objsize:-}" && [ "$objsize" -gt 0 ]; then
    entry_bytes=$((objsize + EXTENSION_BYTES))
    entry_bytes_source="slabinfo: ${objsize}-byte nf_conntrack object + ${EXTENSION_BYTES}-byte extension"
  else
    entry_bytes=$DEFAULT_ENTRY_BYTES
    entry_bytes_source="default: /proc/slabinfo unreadable, assumed ${DEFAULT_ENTRY_BYTES} bytes per entry"
  fi
  budget_bytes=$((mem_total_bytes * budget_percent / 100))
  cost_bytes=$((max_entries * entry_bytes))
}

# The kernel allocates buckets in whole pages of list heads, rounding a request up.
bucket_granularity() {
  local page bits
  page=$(getconf PAGESIZE 2>/dev/null || echo 4096)
  bits=$(getconf LONG_BIT 2>/dev/null || echo 64)
  is_uint "$page" || page=4096
  if [ "$bits" = 32 ]; then echo $((page / 4)); else echo $((page / 8)); fi
}

add_owner() { # kind detail
  owners_json+=("{\"kind\":$(json_str "$1"),\"detail\":$(json_str "$2")}")
}

detect_owners() {
  local comm name id f key value keys=() real seen=' '
  for comm in /proc/[0-9]*/comm; do
    name=''
    read -r name 2>/dev/null <"$comm" || continue
    if [ "$name" = kube-proxy ]; then
      add_owner kube-proxy "kube-proxy (pid ${comm//[!0-9]/}) sets nf_conntrack_max from conntrack.maxPerCore/min, the hash size and the TCP timeouts when it starts; change its configuration too, or it may undo this"
      break
    fi
  done
  if [ -f "$ROOT/etc/os-release" ]; then
    id=$(awk -F= '$1 == "ID" { gsub(/"/, "", $2); print $2; exit }' "$ROOT/etc/os-release")
    if [ "$id" = bottlerocket ]; then
      add_owner bottlerocket "Bottlerocket sets net.netfilter.nf_conntrack_max and timeouts through its settings API (settings.kernel.sysctl); runtime changes here do not survive a reboot"
    fi
  fi
  keys=(net.netfilter.nf_conntrack_max net.nf_conntrack_max net.netfilter.nf_conntrack_buckets)
  for name in ${timeout_names[@]+"${timeout_names[@]}"}; do keys+=("net.netfilter.nf_conntrack_$name"); done
  local files=()
  for f in "$ROOT"/etc/sysctl.d/*.conf "$ROOT"/run/sysctl.d/*.conf "$ROOT"/usr/local/lib/sysctl.d/*.conf \
    "$ROOT"/usr/lib/sysctl.d/*.conf "$ROOT"/lib/sysctl.d/*.conf "$ROOT"/etc/sysctl.conf; do
    [ -f "$f" ] || continue
    [ "$f" != "$SYSCTL_FILE" ] || continue
    real=$(readlink -f "$f")
    case $seen in *" $real "*) continue ;; esac
    seen+="$real "
    files+=("$f")
  done
  if [ "${#files[@]}" -gt 0 ]; then
    while IFS=$'\t' read -r f key value; do
      local after=false base=${f##*/}
      if [[ $f == */etc/sysctl.conf || $base > ${SYSCTL_FILE##*/} ]]; then after=true; fi
      owners_json+=("{\"kind\":\"sysctl.d\",\"detail\":$(json_str "$f sets $key = $value$(if [ "$after" = true ]; then echo ', applied after our file at boot'; else echo ', applied before our file at boot'; fi)"),\"file\":$(json_str "$f"),\"key\":$(json_str "$key"),\"value\":$(json_str "$value"),\"appliedAfterOurs\":$after}")
    done < <(awk -v keys="${keys[*]}" '
      BEGIN { n = split(keys, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
      {
        line = $0; sub(/^[ \t]+/, "", line)
        if (line == "" || line ~ /^[#;]/) next
        eq = index(line, "="); if (eq == 0) next
        key = substr(line, 1, eq - 1); value = substr(line, eq + 1)
        gsub(/[ \t]/, "", key); sub(/^-/, "", key); gsub(/\//, ".", key)
        gsub(/^[ \t]+|[ \t]+$/, "", value)
        if (key in want) printf "%s\t%s\t%s\n", FILENAME, key, value
      }' "${files[@]}")
  fi
  files=()
  for f in "$ROOT"/etc/modprobe.d/*.conf "$ROOT"/run/modprobe.d/*.conf "$ROOT"/usr/lib/modprobe.d/*.conf \
    "$ROOT"/lib/modprobe.d/*.conf; do
    [ -f "$f" ] && [ "$f" != "$MODPROBE_FILE" ] && files+=("$f")
  done
  if [ -n "$hash_size" ] && [ "${#files[@]}" -gt 0 ]; then
    while IFS=$'\t' read -r f value; do
      add_owner modprobe.d "$f sets options nf_conntrack $value (applied when the module loads)"
    done < <(awk '$1 == "options" && $2 == "nf_conntrack" && /hashsize=/ {
        for (i = 3; i <= NF; i++) if ($i ~ /^hashsize=/) printf "%s\t%s\n", FILENAME, $i }' "${files[@]}")
  fi
}

# Change record: params (identity of the change), values (what was there before, written once),
# after (what each write left), netns.
open_change() {
  change_dir=$STATE_DIR/changes/$change_id
  local wanted
  wanted=$(printf 'MaxEntries=%s\nHashSize=%s\nTimeouts=%s\nMemoryBudgetPercent=%s' \
    "$max_entries" "$hash_size" "$timeouts_param" "$budget_percent")
  if rerun_of_change "$wanted"; then
    return 0
  fi
  local tmp=$change_dir.tmp.$$ name i
  mkdir -p "$tmp"
  printf '%s\n' "$DOCUMENT" >"$tmp/document"
  printf '%s\n' "$wanted" >"$tmp/params"
  printf '%s\n' "$own_netns" >"$tmp/netns"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$tmp/created"
  {
    printf 'global nf_conntrack_max %s\n' "$before_max"
    if [ -n "$hash_size" ]; then printf 'global nf_conntrack_buckets %s\n' "$before_buckets"; fi
    for ((i = 0; i < ${#timeout_names[@]}; i++)); do
      name=${timeout_names[i]}
      printf 'netns nf_conntrack_%s %s\n' "$name" "${before_timeouts[i]}"
    done
  } >"$tmp/values"
  : >"$tmp/after"
  mv "$tmp" "$change_dir"
}

record_after() { printf '%s %s %s\n' "$1" "$2" "$3" >>"$change_dir/after"; }

apply_max() {
  if [ "$before_max" -eq "$max_entries" ]; then
    after_max=$before_max
    return 0
  fi
  log "setting nf_conntrack_max $before_max -> $max_entries"
  global_write "$MAX_PATH" "$max_entries" || fail "writing nf_conntrack_max=$max_entries failed"
  after_max=$(global_read "$MAX_PATH")
  record_after global nf_conntrack_max "$after_max"
  [ "$after_max" = "$max_entries" ] || fail "nf_conntrack_max reads $after_max after writing $max_entries"
  changes+=("nf_conntrack_max $before_max -> $after_max")
}

apply_hash_size() {
  after_buckets=$before_buckets
  [ -n "$hash_size" ] || return 0
  local granularity rounded
  granularity=$(bucket_granularity)
  rounded=$(((hash_size + granularity - 1) / granularity * granularity))
  # Satisfied when the table already has what the request becomes after the kernel's rounding
  # (or, on kernels that do not round, exactly the request).
  if [ "$before_buckets" -ge "$hash_size" ] && [ "$before_buckets" -le "$rounded" ]; then
    return 0
  fi
  if global_writable "$BUCKETS_PATH"; then
    hash_write_path=$BUCKETS_PATH
  elif in_init_netns test -e "$HASHSIZE_PARAM"; then
    hash_write_path=$HASHSIZE_PARAM
  else
    fail "neither $BUCKETS_PATH nor $HASHSIZE_PARAM is writable: cannot resize the hash table"
  fi
  printf '%s\n' "$hash_write_path" >"$change_dir/hash-path"
  if [ "$count" -gt 100000 ]; then
    reasons+=("resizing the hash table rehashes $count entries with packet processing paused for a moment")
  fi
  log "setting the hash size $before_buckets -> $hash_size through $hash_write_path"
  global_write "$hash_write_path" "$hash_size" || fail "writing $hash_size to $hash_write_path failed"
  after_buckets=$(global_read "$BUCKETS_PATH")
  record_after global nf_conntrack_buckets "$after_buckets"
  [ "$after_buckets" -ge "$hash_size" ] ||
    fail "nf_conntrack_buckets reads $after_buckets after writing $hash_size to $hash_write_path"
  changes+=("nf_conntrack_buckets $before_buckets -> $after_buckets")
}

apply_timeouts() {
  local i name value now
  for ((i = 0; i < ${#timeout_names[@]}; i++)); do
    name=${timeout_names[i]}
    value=${timeout_values[i]}
    if [ "${before_timeouts[i]}" = "$value" ]; then
      after_timeouts[i]=$value
      continue
    fi
    log "setting nf_conntrack_$name ${before_timeouts[i]} -> $value"
    printf '%s\n' "$value" >"$NETFILTER/nf_conntrack_$name" || fail "writing nf_conntrack_$name=$value failed"
    now=$(cat "$NETFILTER/nf_conntrack_$name")
    after_timeouts[i]=$now
    record_after netns "nf_conntrack_$name" "$now"
    [ "$now" = "$value" ] || fail "nf_conntrack_$name reads $now after writing $value"
    changes+=("nf_conntrack_$name ${before_timeouts[i]} -> $now")
  done
}

persist_settings() {
  [ "$persist" = true ] || return 0
  local content line key i kept=() header
  header='# Written by conntrack-responder (raise-limits). Undo with its rollback document and the change id.'
  # Keep the lines other changes wrote for other keys; ours replace theirs for the same key.
  local -A ours=()
  ours[net.netfilter.nf_conntrack_max]=$max_entries
  for ((i = 0; i < ${#timeout_names[@]}; i++)); do
    ours[net.netfilter.nf_conntrack_${timeout_names[i]}]=${timeout_values[i]}
  done
  if [ -f "$SYSCTL_FILE" ]; then
    while IFS= read -r line; do
      [ "$line" != "$header" ] || continue
      key=${line%%=*}
      key=${key//[[:space:]]/}
      if [ -n "${ours[$key]+set}" ]; then continue; fi
      kept+=("$line")
    done <"$SYSCTL_FILE"
  fi
  content=$header
  for line in ${kept[@]+"${kept[@]}"}; do content+=$'\n'"$line"; done
  content+=$'\n'"net.netfilter.nf_conntrack_max = $max_entries"
  for ((i = 0; i < ${#timeout_names[@]}; i++)); do
    content+=$'\n'"net.netfilter.nf_conntrack_${timeout_names[i]} = ${timeout_values[i]}"
  done
  if persist_file "$SYSCTL_FILE" 644 "$content"; then changes+=("wrote $SYSCTL_FILE"); fi
  persisted_json+=("$(json_str "$SYSCTL_FILE")")
  # systemd-sysctl runs before nf_conntrack is loaded unless something loads it first.
  if persist_file "$MODULES_LOAD_FILE" 644 "$(printf '%s\n%s' '# Written by conntrack-responder: load nf_conntrack early so sysctl.d can set its limits at boot.' nf_conntrack)"; then
    changes+=("wrote $MODULES_LOAD_FILE")
  fi
  persisted_json+=("$(json_str "$MODULES_LOAD_FILE")")
  if [ -n "$hash_size" ]; then
    # modprobe.d's hashsize also sets max to 8 x hashsize at load; sysctl.d then sets our max.
    if persist_file "$MODPROBE_FILE" 644 "$(printf '%s\n%s' '# Written by conntrack-responder (raise-limits).' "options nf_conntrack hashsize=$after_buckets")"; then
      changes+=("wrote $MODPROBE_FILE")
    fi
    persisted_json+=("$(json_str "$MODPROBE_FILE")")
    if [ -d /sys/module/nf_conntrack ] && [ ! -e /sys/module/nf_conntrack/initstate ]; then
      reasons+=("nf_conntrack is built into this kernel: modprobe.d does not apply, add nf_conntrack.hashsize=$after_buckets to the kernel command line")
    fi
  fi
}

main() {
  validate_parameters
  [ -f "$MAX_PATH" ] ||
    refuse "nf_conntrack is not loaded ($MAX_PATH is missing): there is no conntrack table to raise"
  resolve_init_netns || fail "cannot reach the initial network namespace, where nf_conntrack_max is written"
  if [ -n "$init_netns_path" ] && ! command -v nsenter >/dev/null 2>&1; then
    fail "nsenter (util-linux) is needed to write the global settings from this network namespace"
  fi
  lock_state_dir || fail "could not lock $STATE_DIR"

  before_max=$(global_read "$MAX_PATH")
  before_buckets=$(global_read "$BUCKETS_PATH")
  count=$(cat "$NETFILTER/nf_conntrack_count")
  local i name
  for ((i = 0; i < ${#timeout_names[@]}; i++)); do
    name=${timeout_names[i]}
    before_timeouts[i]=$(cat "$NETFILTER/nf_conntrack_$name")
  done

  [ "$max_entries" -ge "$before_max" ] ||
    refuse "MaxEntries $max_entries is below the current nf_conntrack_max $before_max: this document never lowers it"
  read_memory_figures
  # Only a higher limit lets the table grow: a timeouts-only or hash-only change at the current
  # limit costs no new entries, so it is not held to the budget (that limit is already in force).
  if [ "$max_entries" -gt "$before_max" ] && [ "$cost_bytes" -gt "$budget_bytes" ]; then
    refuse "MaxEntries $max_entries x $entry_bytes bytes = $cost_bytes bytes exceeds the memory budget of $budget_percent% of MemTotal ($budget_bytes bytes)"
  fi
  if [ -n "$hash_size" ]; then
    local granularity rounded
    granularity=$(bucket_granularity)
    rounded=$(((hash_size + granularity - 1) / granularity * granularity))
    [ "$before_buckets" -le "$rounded" ] ||
      refuse "HashSize $hash_size is below the current $before_buckets buckets: this document never shrinks the hash table"
  fi
  for ((i = 0; i < ${#timeout_names[@]}; i++)); do
    if [ "${timeout_names[i]}" = tcp_timeout_established ] && [ "${timeout_values[i]}" -lt 3600 ]; then
      reasons+=("tcp_timeout_established=${timeout_values[i]} is short: idle connections that outlive it lose their entry, and NATed ones break")
    fi
  done
  detect_owners

  open_change
  apply_max
  apply_hash_size
  apply_timeouts
  persist_settings

  if [ "${#changes[@]}" -gt 0 ]; then finish applied 0; fi
  finish unchanged 0
}

main
