#!/usr/bin/env bash
# host-sampler: samples the conntrack table's usage and counters once per interval and writes one
# compact, versioned line per sample to standard output (the journal, when systemd runs it), so
# that the kernel log's shipping path carries it to the detect function (issue 13).
#
# One file, two roles:
# - As the SSM document (no argument; parameters SSM_Action, SSM_IntervalSeconds): installs,
#   updates or removes the sampler: a copy of this very script under /usr/local/lib and a systemd
#   service that runs it at boot and restarts it if it dies. Prints one JSON object. Exit 0: done
#   or unchanged; 3: refused (nothing changed); 1: failed.
# - `host-sampler.sh run`: the sampler itself, a loop of shell builtins (no process is started
#   per sample: reading a few /proc files and printing a line; its CPU cost per sample is
#   measured by bench/sampler). `host-sampler.sh once` prints one sample and exits.
#   The one exception: on an EC2 instance, one `ethtool -S` per ENA interface per sample (below).
#
# The line (format version 1; readers ignore keys they do not know, so keys may be added without a
# new version; a changed meaning of a key gets a new version):
#   conntrack-responder-sample v=1 seq=12 t=1763700000.123 boot=1f0e2d3c ns=4026531840 count=1234
#     max=262144 drop=0 early_drop=0 insert_failed=0 search_restart=0 cpus=2
# count/max: nf_conntrack_count/max; the counters: /proc/net/stat/nf_conntrack summed over CPUs,
# cumulative since the module was loaded (a counter this kernel lacks is left out; a damaged CPU
# line is left out of the sums and of cpus, the number of CPU lines summed); seq: samples since
# this sampler started; boot: the first 8 hex digits of the kernel's boot id (counters restart at
# a reboot); ns: the network namespace's inode. Without nf_conntrack only `loaded=0` follows ns.
# The table itself is never read.
#
# EC2's own connection tracking (issue 14), after the rest of any of those lines, per ENA interface
# (at most 8, numbered from 0 in the order written):
#   ena.0=eth0 ena.0.exceeded=41 ena.0.available=136812
# conntrack_allowance_exceeded and conntrack_allowance_available as the ENA driver counts them
# (cumulative since the driver was last reset; `available` only on Nitro with ENA >= 2.8.1: a
# counter the driver lacks is left out, and an interface with neither is not written). The driver
# has no sysfs file for them: `ethtool -S` (no privilege needed to read statistics) is the source,
# run for the interfaces whose device's driver is `ena` (device/uevent), found at start and again
# every ENA_DISCOVER_EVERY samples (an ENI attached later). Interface names outside
# [A-Za-z0-9._-] are skipped (EC2's are eth*, ens*, enp*s*, enX*). Nothing is written on a host
# without ENA or without ethtool.
#
# Not parameters (lab, tests and bench): CONNTRACK_RESPONDER_PROC (a directory laid out like /proc
# to read instead of it), CONNTRACK_SAMPLER_INTERVAL (seconds, fractions allowed; default 60),
# CONNTRACK_SAMPLER_SAMPLES (stop after this many samples; default 0: never),
# CONNTRACK_RESPONDER_ROOT (install under this directory; systemctl is then left alone),
# CONNTRACK_RESPONDER_SYS (a directory laid out like /sys to read instead of it),
# CONNTRACK_RESPONDER_ENA_STATS (as in collect-diagnostics: a directory holding, per interface name,
# what `ethtool -S` prints for it: the ENA counter source of hosts without an ENA device, the lab
# and the twin; every interface of the namespace with a file there is read instead of ethtool).
# shellcheck disable=SC2317 # lib/common.sh defines helpers that not every script calls
set -euo pipefail
set -o errtrace
readonly DOCUMENT=host-sampler

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh

readonly SAMPLE_TAG=conntrack-responder-sample
readonly FORMAT_VERSION=1
readonly UNIT_NAME=conntrack-responder-sampler.service
readonly INSTALLED_SCRIPT=/usr/local/lib/conntrack-responder/host-sampler
readonly UNIT_FILE=/etc/systemd/system/$UNIT_NAME
readonly WANTS_LINK=/etc/systemd/system/multi-user.target.wants/$UNIT_NAME
readonly UNIT_MARKER='# conntrack-responder host sampler'
readonly MAX_INTERVAL_SECONDS=3600
readonly MAX_ENA_INTERFACES=8
readonly ENA_DISCOVER_EVERY=10

# ---- the sampler ---------------------------------------------------------------------------------

proc=${CONNTRACK_RESPONDER_PROC:-/proc}
sys=${CONNTRACK_RESPONDER_SYS:-/sys}
ena_stats=${CONNTRACK_RESPONDER_ENA_STATS:-}
# The interfaces whose allowance counters are read each sample (see discover_ena).
ena_devices=()
ena_source=none
boot=''
netns=''
seq=0
# Column of each counter in /proc/net/stat/nf_conntrack, from its header (names, not positions:
# the columns differ between kernel versions). Empty until the header has been read.
col_drop='' col_early_drop='' col_insert_failed='' col_search_restart=''

is_hex() { case $1 in '' | *[!0-9a-f]*) return 1 ;; *) [ "${#1}" -le 16 ] ;; esac; }
is_count() { case $1 in '' | *[!0-9]*) return 1 ;; *) [ "${#1}" -le 18 ] ;; esac; }

read_stat_header() {
  local names=() i
  read -r -a names 2>/dev/null <"$proc/net/stat/nf_conntrack" || return 1
  # A column this kernel does not have points past the end of every line: its key is left out.
  col_early_drop=999 col_insert_failed=999 col_search_restart=999
  # Positional-parameter numbers ($1 is the first column) once a CPU line is split with `set --`.
  for i in "${!names[@]}"; do
    case ${names[i]} in
      drop) col_drop=$((i + 1)) ;;
      early_drop) col_early_drop=$((i + 1)) ;;
      insert_failed) col_insert_failed=$((i + 1)) ;;
      search_restart) col_search_restart=$((i + 1)) ;;
    esac
  done
  [ -n "$col_drop" ]
}

# Which interfaces have ENA counters: those driven by `ena` (ethtool's source), or, with
# CONNTRACK_RESPONDER_ENA_STATS, those with a file there. Builtins only: a glob and a read each.
discover_ena() {
  local path name line driver
  ena_devices=()
  [ "$ena_source" != none ] || return 0
  for path in "$sys"/class/net/*; do
    [ "${#ena_devices[@]}" -lt "$MAX_ENA_INTERFACES" ] || break
    name=${path##*/}
    if [ "$name" = lo ] || ! [[ $name =~ ^[A-Za-z0-9._-]{1,15}$ ]]; then continue; fi
    if [ "$ena_source" = files ]; then
      if [ -f "$ena_stats/$name" ]; then ena_devices+=("$name"); fi
      continue
    fi
    driver=''
    if [ -r "$path/device/uevent" ]; then
      while IFS= read -r line; do
        case $line in DRIVER=*) driver=${line#DRIVER=} && break ;; esac
      done 2>/dev/null <"$path/device/uevent" || true
    fi
    if [ "$driver" = ena ]; then ena_devices+=("$name"); fi
  done
}

# Reads `ethtool -S` output on standard input into exceeded/available (empty when absent).
read_ena_counters() {
  local key value rest
  while read -r key value rest; do
    case $key in
      conntrack_allowance_exceeded:) exceeded=$value ;;
      conntrack_allowance_available:) available=$value ;;
    esac
  done
}

# Sets ena_text to the ENA part of a line (with its leading space), or nothing. Not printed into
# a command substitution: that would start a process per sample and forget what discover_ena found.
ena_text=''
ena_fields() {
  local name index=0 text='' exceeded available
  if [ "$ena_source" != none ] && [ $(((seq - 1) % ENA_DISCOVER_EVERY)) = 0 ]; then discover_ena; fi
  for name in ${ena_devices[@]+"${ena_devices[@]}"}; do
    exceeded='' available=''
    if [ "$ena_source" = files ]; then
      read_ena_counters 2>/dev/null <"$ena_stats/$name" || true
    else
      read_ena_counters < <(ethtool -S "$name" 2>/dev/null) || true
    fi
    # 15 digits: every reader takes it as an exact number; a value it would refuse is left out.
    [[ $exceeded =~ ^[0-9]{1,15}$ ]] || exceeded=''
    [[ $available =~ ^[0-9]{1,15}$ ]] || available=''
    [ -n "$exceeded$available" ] || continue
    text+=" ena.$index=$name"
    [ -z "$exceeded" ] || text+=" ena.$index.exceeded=$exceeded"
    [ -z "$available" ] || text+=" ena.$index.available=$available"
    index=$((index + 1))
  done
  ena_text=$text
}

# Prints one sample line. Only builtins: one `read` or `mapfile` per file, arithmetic in the shell.
sample_once() {
  local count='' max='' lines=() line drop=0 early_drop=0 insert_failed=0 search_restart=0 cpus=0 t d e i r
  seq=$((seq + 1))
  if [ -n "${EPOCHREALTIME:-}" ]; then
    t=${EPOCHREALTIME%???}
  else
    printf -v t '%(%s)T' -1
  fi
  local head="$SAMPLE_TAG v=$FORMAT_VERSION seq=$seq t=$t boot=$boot ns=$netns" ena
  # EC2 tracks connections whether or not the guest does: every form of the line carries them.
  ena_fields
  ena=$ena_text
  # `|| true`: a value without a final newline is still read (read only reports the missing end).
  read -r count 2>/dev/null <"$proc/sys/net/netfilter/nf_conntrack_count" || true
  read -r max 2>/dev/null <"$proc/sys/net/netfilter/nf_conntrack_max" || true
  if ! is_count "$count" || ! is_count "$max"; then
    printf '%s loaded=0%s\n' "$head" "$ena"
    return 0
  fi
  if [ -z "$col_drop" ] && ! read_stat_header; then
    # CONFIG_NF_CONNTRACK_PROCFS off: the count and the limit are still worth a line.
    printf '%s count=%s max=%s%s\n' "$head" "$count" "$max" "$ena"
    return 0
  fi
  # One line per CPU after the header; the per-line work is what grows with the CPU count, so it
  # is kept to one word split and one pattern test (bench/sampler).
  mapfile -t -s 1 lines 2>/dev/null <"$proc/net/stat/nf_conntrack" || true
  set -f
  for line in ${lines[@]+"${lines[@]}"}; do
    # shellcheck disable=SC2086 # splitting the line into its columns is the point
    set -- $line
    d=${!col_drop:-} e=${!col_early_drop:-0} i=${!col_insert_failed:-0} r=${!col_search_restart:-0}
    case "$d:$e:$i:$r" in
      :* | *::* | *[!0-9a-f:]*) continue ;;
    esac
    cpus=$((cpus + 1))
    drop=$((drop + 16#$d)) early_drop=$((early_drop + 16#$e))
    insert_failed=$((insert_failed + 16#$i)) search_restart=$((search_restart + 16#$r))
  done
  set +f
  local counters="drop=$drop"
  [ "$col_early_drop" = 999 ] || counters+=" early_drop=$early_drop"
  [ "$col_insert_failed" = 999 ] || counters+=" insert_failed=$insert_failed"
  [ "$col_search_restart" = 999 ] || counters+=" search_restart=$search_restart"
  printf '%s count=%s max=%s %s cpus=%s%s\n' "$head" "$count" "$max" "$counters" "$cpus" "$ena"
}

sampler_identity() {
  local id='' link
  read -r id 2>/dev/null <"$proc/sys/kernel/random/boot_id" || true
  id=${id//-/}
  is_hex "${id:0:8}" && boot=${id:0:8}
  : "${boot:=unknown}"
  link=$(readlink "$proc/self/ns/net" 2>/dev/null || true)
  netns=${link//[!0-9]/}
  : "${netns:=unknown}"
}

run_sampler() {
  local mode=$1 interval=${CONNTRACK_SAMPLER_INTERVAL:-60} samples=${CONNTRACK_SAMPLER_SAMPLES:-0} sleep_fd
  [[ $interval =~ ^[0-9]{1,4}(\.[0-9]{1,3})?$ ]] ||
    { log "CONNTRACK_SAMPLER_INTERVAL '$interval' is not a number of seconds (0.001-$MAX_INTERVAL_SECONDS)"; exit 2; }
  [[ $samples =~ ^[0-9]{1,9}$ ]] ||
    { log "CONNTRACK_SAMPLER_SAMPLES '$samples' is not a whole number"; exit 2; }
  [ "$mode" = run ] || samples=1
  if [ "${interval//[.0]/}" = '' ] && [ "$samples" = 0 ]; then
    log 'an interval of 0 needs CONNTRACK_SAMPLER_SAMPLES (it would spin forever)'
    exit 2
  fi
  sampler_identity
  if [ -n "$ena_stats" ]; then
    ena_source=files
  elif command -v ethtool >/dev/null 2>&1; then
    ena_source=ethtool
  fi
  trap 'exit 0' TERM INT
  # `read -t` on a pipe nobody writes to is a sleep without starting a process every interval.
  exec {sleep_fd}<> <(:)
  while :; do
    sample_once
    [ "$samples" = 0 ] || [ "$seq" -lt "$samples" ] || break
    read -r -t "$interval" -u "$sleep_fd" _ || true
  done
}

case ${1:-} in
  run | once)
    run_sampler "$1"
    exit 0
    ;;
  '') ;;
  *)
    log "unknown argument '$1' (run, once, or none for the SSM document)"
    exit 2
    ;;
esac

# ---- the SSM document: install, update or remove the sampler --------------------------------------

action=${SSM_Action:-}
interval_param=${SSM_IntervalSeconds:-60}
status=''
files_json=()
systemd_running=false
service_active=null

finish() {
  local code=$2
  status=$1
  printf '{"document":"%s","action":%s,"status":"%s","reasons":%s,' \
    "$DOCUMENT" "$(json_str "$action")" "$status" "$(json_array ${reasons[@]+"${reasons[@]}"})"
  printf '"intervalSeconds":%s,"unit":"%s","script":"%s","systemd":%s,"active":%s,"files":%s}\n' \
    "$(if is_uint "$interval_param"; then echo "$interval_param"; else echo null; fi)" \
    "$UNIT_NAME" "$INSTALLED_SCRIPT" "$systemd_running" "$service_active" \
    "$(json_raw_array ${files_json[@]+"${files_json[@]}"})"
  exit "$code"
}

trap 'on_error "$LINENO" "$?"' ERR

file_record() { files_json+=("{\"path\":$(json_str "$1"),\"action\":\"$2\"}"); }

# write_if_changed PATH MODE CONTENT: returns 0 when it wrote (created or updated), 1 when unchanged.
write_if_changed() {
  local path=$ROOT$1 mode=$2 content=$3 how=created tmp
  if [ -f "$path" ]; then
    if [ "$(cat "$path")" = "$content" ]; then return 1; fi
    how=updated
  fi
  mkdir -p "$(dirname "$path")"
  tmp="$path.$COMMENT_PREFIX.$$"
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$path"
  file_record "$1" "$how"
}

unit_text() {
  cat <<EOF
$UNIT_MARKER (installed by the $DOCUMENT SSM document; remove it with Action=remove)
[Unit]
Description=conntrack-responder host sampler: conntrack usage and counters, one line per interval

[Service]
Type=simple
ExecStart=$INSTALLED_SCRIPT run
Environment=CONNTRACK_SAMPLER_INTERVAL=$interval_param
# One resident loop of shell builtins: far cheaper per sample than a timer starting a process.
Restart=always
RestartSec=10
# The detect function and the CloudWatch agent's journald collection find the lines by this unit.
SyslogIdentifier=conntrack-responder-sampler
StandardOutput=journal
StandardError=journal
SyslogLevel=info
# It only reads world-readable /proc files: no user of its own, no capabilities.
DynamicUser=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
Nice=10

[Install]
WantedBy=multi-user.target
EOF
}

systemctl_quiet() { systemctl "$@" >/dev/null 2>&1; }

install_sampler() {
  local changed=false script_text
  script_text=$(cat "${BASH_SOURCE[0]}")
  if write_if_changed "$INSTALLED_SCRIPT" 755 "$script_text"; then changed=true; fi
  if write_if_changed "$UNIT_FILE" 644 "$(unit_text)"; then changed=true; fi
  if [ ! -L "$ROOT$WANTS_LINK" ]; then
    [ ! -e "$ROOT$WANTS_LINK" ] || fail "$WANTS_LINK exists and is not a link: left alone"
    mkdir -p "$(dirname "$ROOT$WANTS_LINK")"
    ln -s "$UNIT_FILE" "$ROOT$WANTS_LINK"
    file_record "$WANTS_LINK" created
    changed=true
  fi
  if [ "$systemd_running" = true ]; then
    if [ "$changed" = true ]; then
      systemctl daemon-reload || fail 'systemctl daemon-reload failed'
      systemctl restart "$UNIT_NAME" || fail "systemctl restart $UNIT_NAME failed (journalctl -u $UNIT_NAME)"
    elif ! systemctl_quiet is-active "$UNIT_NAME"; then
      systemctl start "$UNIT_NAME" || fail "systemctl start $UNIT_NAME failed (journalctl -u $UNIT_NAME)"
      changed=true
    fi
    if systemctl_quiet is-active "$UNIT_NAME"; then service_active=true; else service_active=false; fi
  fi
  if [ "$changed" = true ]; then finish installed 0; fi
  finish unchanged 0
}

# Removes only what install wrote: the unit (recognised by its marker line), its link, the script.
remove_sampler() {
  local removed=false
  if [ -f "$ROOT$UNIT_FILE" ] && [[ $(head -n 1 "$ROOT$UNIT_FILE") != "$UNIT_MARKER"* ]]; then
    refuse "$UNIT_FILE was not written by this document: left alone"
  fi
  if [ "$systemd_running" = true ] && [ -f "$UNIT_FILE" ]; then
    systemctl_quiet stop "$UNIT_NAME" || true
  fi
  if [ -L "$ROOT$WANTS_LINK" ] && [ "$(readlink "$ROOT$WANTS_LINK")" = "$UNIT_FILE" ]; then
    rm -f "$ROOT$WANTS_LINK"
    file_record "$WANTS_LINK" removed
    removed=true
  fi
  local path
  for path in "$UNIT_FILE" "$INSTALLED_SCRIPT"; do
    if [ -f "$ROOT$path" ]; then
      rm -f "$ROOT$path"
      file_record "$path" removed
      removed=true
    fi
  done
  rmdir "$ROOT$(dirname "$INSTALLED_SCRIPT")" 2>/dev/null || true
  if [ "$systemd_running" = true ]; then
    systemctl daemon-reload || fail 'systemctl daemon-reload failed'
    systemctl_quiet reset-failed "$UNIT_NAME" || true
    service_active=false
  fi
  if [ "$removed" = true ]; then finish removed 0; fi
  finish absent 0
}

validate_parameters() {
  [[ $action =~ ^(install|remove)$ ]] || refuse "Action '$action' is invalid: expected install or remove"
  if ! [[ $interval_param =~ ^[1-9][0-9]{0,3}$ ]] || [ "$interval_param" -gt "$MAX_INTERVAL_SECONDS" ]; then
    refuse "IntervalSeconds '$interval_param' is invalid: expected a whole number from 1 to $MAX_INTERVAL_SECONDS"
  fi
}

validate_parameters
if [ -z "$ROOT" ]; then
  [ "$(id -u)" = 0 ] || refuse 'must run as root (SSM Run Command does)'
  # sd_booted(3): systemd is the init system when this directory exists.
  if [ -d /run/systemd/system ]; then
    systemd_running=true
  elif [ "$action" = install ]; then
    refuse 'systemd is not running here: nothing would start the sampler at boot'
  fi
fi
if [ "$action" = install ]; then install_sampler; fi
remove_sampler
