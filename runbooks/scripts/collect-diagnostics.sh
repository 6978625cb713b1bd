#!/usr/bin/env bash
# collect-diagnostics: prints one JSON document (schema version 1, runbooks/diagnostics-schema.md)
# describing this host's conntrack state, in the network namespace the script runs in.
# Read-only: it changes nothing. Parameters (SSM String parameters, ENV_VAR interpolation):
#   SSM_SampleSeconds  pause between the two counter samples, 1-59 (default 3)
#   SSM_TopN           length of every top-N list, 1-50 (default 10)
# Test-only environment (never set by SSM):
#   CONNTRACK_RESPONDER_PROC_NET  replaces /proc/net for the conntrack table and its counters, so a
#                                 test can make /proc/net/nf_conntrack look missing (conntrack -L/-S path)
#   CONNTRACK_RESPONDER_ROOT      prefix for configuration files read (sysctl.d, modprobe.d, ...)
#   CONNTRACK_RESPONDER_ENA_STATS a directory holding, per interface name, what `ethtool -S` prints
#                                 for it: the ENA counter source of hosts without an ENA device (the
#                                 lab and the local twin); interfaces without a file are not asked
set -euo pipefail
export LC_ALL=C TZ=UTC
PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin

readonly OUTPUT_LIMIT=23500 # SSM keeps the first 24,000 characters of stdout; keep a margin
readonly PROC_NET=${CONNTRACK_RESPONDER_PROC_NET:-/proc/net}
readonly ROOT=${CONNTRACK_RESPONDER_ROOT:-}
readonly ENA_STATS=${CONNTRACK_RESPONDER_ENA_STATS:-}

die() {
  printf 'collect-diagnostics: %s\n' "$*" >&2
  exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# shellcheck source-path=SCRIPTDIR source=lib/legacy-rules.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/legacy-rules.sh"  # conntrack-responder:include lib/legacy-rules.sh

# mawk (the default awk of Debian and Ubuntu) runs the table pass markedly faster than gawk; every
# program here is POSIX awk, so use it wherever it is installed.
if have mawk; then awk() { mawk "$@"; }; fi

# Sets NUMBER instead of printing it: a command substitution would fork (this script keeps the
# processes it starts few, its CPU time is benchmarked against reading the table with cat).
NUMBER=0
number_param() { # name value default min max → NUMBER
  local value=${2:-$3}
  # Globs, not [[ =~ ]]: bash compiles a regular expression on every test.
  [[ -n $value && ${#value} -le 3 && $value != *[!0-9]* ]] || die "parameter $1 must be a whole number from $4 to $5, got '$value'"
  ((10#$value >= $4 && 10#$value <= $5)) || die "parameter $1 must be from $4 to $5, got $value"
  NUMBER=$((10#$value))
}

number_param SampleSeconds "${SSM_SampleSeconds:-}" 3 1 59
SAMPLE_SECONDS=$NUMBER
number_param TopN "${SSM_TopN:-}" 10 1 50
TOP_N=$NUMBER
readonly SAMPLE_SECONDS TOP_N

WORK=$(mktemp -d "${TMPDIR:-/tmp}/collect-diagnostics.XXXXXX") || die "cannot create a temporary directory"
readonly WORK
trap 'rm -rf "$WORK"' EXIT
readonly FACTS=$WORK/facts
: >"$FACTS"

# One fact per line: fields separated by tabs; tabs, CR and LF inside a field become spaces.
fact() {
  local line='' field first=1
  for field in "$@"; do
    field=${field//$'\t'/ }
    field=${field//$'\n'/ }
    field=${field//$'\r'/ }
    if ((first)); then line=$field; first=0; else line+=$'\t'$field; fi
  done
  printf '%s\n' "$line" >>"$FACTS"
}

warn() { fact warning "$*"; }

# Helpers set LINE / NOW instead of printing: command substitutions would fork a subshell each.
LINE=''
read_first_line() { # file → LINE (empty when unreadable)
  LINE=''
  if [[ -r $1 ]]; then IFS= read -r LINE <"$1" 2>/dev/null || true; fi
}

# Centiseconds since boot (a monotonic clock on every Linux, without GNU date) → NOW.
NOW=0
uptime_cs() {
  local up _
  read -r up _ </proc/uptime
  up=${up/./}
  NOW=$((10#$up))
}

# ---------------------------------------------------------------------------------------------
# Host
DIST_ID=''
collect_host() {
  local hostname kernel memtotal=0 cpus='' key value netns inode ranges=()
  read_first_line /proc/sys/kernel/hostname
  hostname=$LINE
  read_first_line /proc/sys/kernel/osrelease
  kernel=$LINE
  [[ -n $kernel ]] || kernel=$(uname -r 2>/dev/null || true)
  fact host hostname "${hostname:-unknown}"
  fact host kernel "${kernel:-unknown}"
  if [[ -r /etc/os-release ]]; then
    while IFS='=' read -r key value; do
      value=${value#\"}
      value=${value%\"}
      value=${value#\'}
      value=${value%\'}
      case $key in
      ID)
        DIST_ID=$value
        fact host distId "$value"
        ;;
      VERSION_ID) fact host distVersionId "$value" ;;
      PRETTY_NAME) fact host distPrettyName "$value" ;;
      esac
    done </etc/os-release
  fi
  # Online CPUs from /sys/devices/system/cpu/online ("0-3,6,8-9"), else /proc/cpuinfo.
  read_first_line /sys/devices/system/cpu/online
  local range first last
  cpus=0
  IFS=',' read -r -a ranges <<<"$LINE"
  for range in ${ranges[@]+"${ranges[@]}"}; do
    first=${range%%-*} last=${range#*-}
    if [[ $range == *-* && -n $first && -n $last && $first$last != *[!0-9]* ]]; then
      cpus=$((cpus + 10#$last - 10#$first + 1))
    elif [[ -n $range && $range != *[!0-9]* ]]; then
      cpus=$((cpus + 1))
    fi
  done
  ((cpus > 0)) || cpus=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null || true)
  [[ $cpus == [1-9]* && $cpus != *[!0-9]* ]] || cpus=1
  fact host cpuCount "$cpus"
  while read -r key value _; do
    if [[ $key == MemTotal: ]]; then memtotal=$((value * 1024)); break; fi
  done </proc/meminfo
  fact host memTotalBytes "$memtotal"
  netns=$(readlink /proc/self/ns/net 2>/dev/null || true)
  inode=${netns#net:\[}
  inode=${inode%\]}
  if [[ $netns == "net:[$inode]" && -n $inode && $inode != *[!0-9]* ]]; then fact host netnsInode "$inode"; fi
  # TCP keepalive (per namespace): the longest a kept-alive idle connection goes without a packet,
  # which bounds how short EC2's idle tracking timeout may safely be (docs/sizing.md).
  read_first_line /proc/sys/net/ipv4/tcp_keepalive_time
  fact host keepaliveTime "$LINE"
  read_first_line /proc/sys/net/ipv4/tcp_keepalive_intvl
  fact host keepaliveInterval "$LINE"
  read_first_line /proc/sys/net/ipv4/tcp_keepalive_probes
  fact host keepaliveProbes "$LINE"
}

# ---------------------------------------------------------------------------------------------
# Sysctls: every conntrack one, including the alias in init_net and the old ip_conntrack names.
CONNTRACK_LOADED=0
collect_sysctls() {
  local files=() file readable=()
  [[ -r /proc/sys/net/netfilter/nf_conntrack_max ]] && CONNTRACK_LOADED=1
  fact conntrack loaded "$CONNTRACK_LOADED"
  ((CONNTRACK_LOADED)) || warn "nf_conntrack is not loaded: no conntrack sysctls, counters or table"
  shopt -s nullglob
  files=(/proc/sys/net/netfilter/*conntrack* /proc/sys/net/nf_conntrack_max
    /proc/sys/net/ipv4/netfilter/ip_conntrack* /proc/sys/net/ipv4/ip_conntrack_max)
  shopt -u nullglob
  for file in ${files[@]+"${files[@]}"}; do
    [[ -f $file && -r $file ]] && readable+=("$file")
  done
  # One awk over every file: a bash loop costs more than the process (about 50 files).
  ((${#readable[@]})) || return 0
  awk 'FNR == 1 && $0 ~ /^-?[0-9]+$/ {
    name = substr(FILENAME, 11); gsub("/", ".", name); printf "sysctl\t%s\t%s\n", name, $0
  }' "${readable[@]}" >>"$FACTS" || warn "reading the conntrack sysctls failed"
}

# ---------------------------------------------------------------------------------------------
# Counters: /proc/net/stat/nf_conntrack (hex, one line per CPU, named by its header) or conntrack -S.
# shellcheck disable=SC2016 # awk programs are single-quoted on purpose
readonly STAT_AWK='
function hex(s,   i, n, v, c) {
  s = tolower(s); v = 0; n = length(s)
  for (i = 1; i <= n; i++) {
    c = index("0123456789abcdef", substr(s, i, 1))
    if (c == 0) return -1
    v = v * 16 + c - 1
  }
  return v
}
NR == 1 { for (i = 1; i <= NF; i++) col[i] = $i; ncol = NF; next }
{
  for (i = 1; i <= ncol && i <= NF; i++) {
    v = hex($i)
    if (v < 0) continue
    if (col[i] == "entries") { if (!got) { entries = v; got = 1 } }
    else sum[col[i]] += v
  }
}
END {
  for (k in sum) printf "stat\t%s\t%s\t%.0f\n", label, k, sum[k]
  if (got) printf "stat\t%s\tentries\t%.0f\n", label, entries
}'

# conntrack -S names the same counters differently; use the /proc names.
# shellcheck disable=SC2016
readonly STAT_TOOL_AWK='
BEGIN { m["clash_resolve"] = "clashres"; m["chaintoolong"] = "chainlength"; m["error"] = "icmp_error" }
{
  for (i = 1; i <= NF; i++) {
    eq = index($i, "=")
    if (!eq) continue
    k = substr($i, 1, eq - 1); v = substr($i, eq + 1)
    if (k == "cpu" || v !~ /^[0-9]+$/) continue
    if (k in m) k = m[k]
    sum[k] += v
  }
}
END { for (k in sum) printf "stat\t%s\t%s\t%.0f\n", label, k, sum[k] }'

STATS_SOURCE=unavailable
sample_stats() { # label
  ((CONNTRACK_LOADED)) || return 0
  if [[ -r $PROC_NET/stat/nf_conntrack ]]; then
    STATS_SOURCE=procfs
    awk -v label="$1" "$STAT_AWK" "$PROC_NET/stat/nf_conntrack" >>"$FACTS" || warn "cannot read $PROC_NET/stat/nf_conntrack"
  elif have conntrack; then
    STATS_SOURCE=conntrack-tool
    { conntrack -S 2>/dev/null || warn "conntrack -S failed"; } | awk -v label="$1" "$STAT_TOOL_AWK" >>"$FACTS"
  else
    [[ $1 == second ]] || warn "no $PROC_NET/stat/nf_conntrack and no conntrack tool: counters unavailable"
  fi
}

# ENA allowance counters (EC2's own connection tracking, outside the guest kernel).
ENA_CANDIDATES=()
find_ena_candidates() {
  local dev name physical=() virtual=()
  for dev in /sys/class/net/*; do
    name=${dev##*/}
    [[ $name == lo || ! -e $dev ]] && continue
    if [[ -e $dev/device ]]; then physical+=("$name"); else virtual+=("$name"); fi
  done
  # ENA interfaces are PCI devices: look at those first, and bound the number of ethtool calls.
  ENA_CANDIDATES=(${physical[@]+"${physical[@]}"} ${virtual[@]+"${virtual[@]}"})
  ENA_CANDIDATES=(${ENA_CANDIDATES[@]+"${ENA_CANDIDATES[@]:0:8}"})
}

# shellcheck disable=SC2016
readonly ENA_AWK='
$1 == "@dev" { dev = $2; next }
$1 == "conntrack_allowance_exceeded:" && $2 ~ /^[0-9]+$/ { printf "ena\t%s\t%s\texceeded\t%s\n", label, dev, $2 }
$1 == "conntrack_allowance_available:" && $2 ~ /^[0-9]+$/ { printf "ena\t%s\t%s\tavailable\t%s\n", label, dev, $2 }'

# The second sample asks only the interfaces that had the counters in the first one: one ethtool
# call per interface instead of two on every host that is not an EC2 instance.
sample_ena() { # label
  local dev line found=()
  ((${#ENA_CANDIDATES[@]})) || return 0
  [[ -n $ENA_STATS ]] || have ethtool || return 0
  for dev in ${ENA_CANDIDATES[@]+"${ENA_CANDIDATES[@]}"}; do
    printf '@dev %s\n' "$dev"
    if [[ -z $ENA_STATS ]]; then
      ethtool -S "$dev" 2>/dev/null || true
    elif [[ -r $ENA_STATS/$dev ]]; then
      cat "$ENA_STATS/$dev" 2>/dev/null || true
    fi
  done | awk -v label="$1" "$ENA_AWK" >"$WORK/ena"
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$FACTS"
    dev=${line#ena$'\t'*$'\t'} # ena <label> <dev> <counter> <value>
    dev=${dev%%$'\t'*}
    [[ " ${found[*]-} " == *" $dev "* ]] || found+=("$dev")
  done <"$WORK/ena"
  ENA_CANDIDATES=(${found[@]+"${found[@]}"})
  # The MAC address is what ties a guest interface to its ENI (DescribeNetworkInterfaces MacAddress).
  if [[ $1 == first ]]; then
    for dev in ${found[@]+"${found[@]}"}; do
      read_first_line "/sys/class/net/$dev/address"
      fact ena first "$dev" mac "$LINE"
    done
  fi
}

# ---------------------------------------------------------------------------------------------
# Entry size: the nf_conntrack slab object (old kernels name the cache nf_conntrack_<address>).
collect_entry_size() {
  local size
  if [[ -r /proc/slabinfo ]]; then
    size=$(awk '$1 == "nf_conntrack" || $1 ~ /^nf_conntrack_[0-9a-f]+$/ { if ($4 ~ /^[0-9]+$/) { print $4; exit } }' \
      /proc/slabinfo 2>/dev/null || true)
    if [[ -n $size && $size != *[!0-9]* ]]; then fact conntrack entryBytes "$size"; return 0; fi
  fi
  ((CONNTRACK_LOADED)) && warn "conntrack entry size unknown: no nf_conntrack cache in /proc/slabinfo"
  return 0
}

# ---------------------------------------------------------------------------------------------
# Local addresses (both IPv6 spellings: /proc/net/nf_conntrack prints them uncompressed).
# shellcheck disable=SC2016
readonly LOCAL_AWK='
function expand6(a,   parts, n, left, right, i, out, g, nl, nr, k) {
  if (index(a, ".")) return ""
  n = split(a, parts, "::")
  nl = (parts[1] == "") ? 0 : split(parts[1], left, ":")
  nr = (n < 2 || parts[2] == "") ? 0 : split(parts[2], right, ":")
  out = ""; k = 0
  for (i = 1; i <= nl; i++) { g = left[i]; while (length(g) < 4) g = "0" g; out = out (k++ ? ":" : "") g }
  for (i = 0; i < 8 - nl - nr; i++) out = out (k++ ? ":" : "") "0000"
  for (i = 1; i <= nr; i++) { g = right[i]; while (length(g) < 4) g = "0" g; out = out (k++ ? ":" : "") g }
  return tolower(out)
}
{
  for (i = 1; i < NF; i++) {
    if ($i != "inet" && $i != "inet6") continue
    a = $(i + 1); sub(/\/.*/, "", a)
    print "localaddr\t" a
    if ($i == "inet6") { e = expand6(a); if (e != "" && e != a) print "localaddr\t" e }
  }
}'

collect_local_addresses() {
  if have ip; then
    ip -o addr show 2>/dev/null | awk "$LOCAL_AWK" >>"$FACTS" || warn "ip addr failed: local addresses unknown"
  else
    warn "ip (iproute2) not found: local addresses unknown, flows cannot be classified"
  fi
}

# ---------------------------------------------------------------------------------------------
# Listening sockets with their process (ss), or ports only from /proc/net/{tcp,udp}{,6}.
# shellcheck disable=SC2016
readonly SS_AWK='
($1 == "Netid" || $1 == "State") { next }
$1 == "tcp" || $1 == "udp" {
  local = $5; c = 0
  for (i = length(local); i > 0; i--) if (substr(local, i, 1) == ":") { c = i; break }
  if (!c) next
  port = substr(local, c + 1); addr = substr(local, 1, c - 1)
  if (port !~ /^[0-9]+$/) next
  sub(/%.*/, "", addr); gsub(/[][]/, "", addr)
  proc = ""
  u = index($0, "users:((\"")
  if (u) { rest = substr($0, u + 9); e = index(rest, "\",pid="); if (e) proc = substr(rest, 1, e - 1); gsub(/\t/, " ", proc) }
  printf "listener\t%s\t%s\t%s\t%s\n", $1, addr, port, proc
}'

# shellcheck disable=SC2016
readonly PROC_SOCKETS_AWK='
function hexv(s,   i, v) { v = 0; s = toupper(s); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return v }
function addr4(h) { return hexv(substr(h, 7, 2)) "." hexv(substr(h, 5, 2)) "." hexv(substr(h, 3, 2)) "." hexv(substr(h, 1, 2)) }
function addr6(h,   w, i, out, word) {
  out = ""
  for (w = 0; w < 4; w++) {
    word = substr(h, w * 8 + 1, 8)
    word = substr(word, 7, 2) substr(word, 5, 2) substr(word, 3, 2) substr(word, 1, 2)
    out = out (w ? ":" : "") tolower(substr(word, 1, 4)) ":" tolower(substr(word, 5, 4))
  }
  return out
}
FNR == 1 { proto = FILENAME; sub(/.*\//, "", proto); v6 = (proto ~ /6$/); sub(/6$/, "", proto); next }
(proto == "tcp" && $4 == "0A") || (proto == "udp" && $4 == "07") {
  split($2, la, ":")
  printf "listener\t%s\t%s\t%d\t\n", proto, (v6 ? addr6(la[1]) : addr4(la[1])), hexv(la[2])
}'

collect_listeners() {
  local out=$WORK/listeners files=() f
  if have ss && ss -ltunp >"$out" 2>/dev/null; then
    awk "$SS_AWK" "$out" >>"$FACTS"
  elif have ss && ss -ltun >"$out" 2>/dev/null; then
    warn "ss -p failed: listening sockets without process names"
    awk "$SS_AWK" "$out" >>"$FACTS"
  else
    warn "ss not found: listening ports read from /proc/net without process names"
    for f in tcp tcp6 udp udp6; do [[ -r /proc/net/$f ]] && files+=("/proc/net/$f"); done
    ((${#files[@]})) && awk "$PROC_SOCKETS_AWK" "${files[@]}" >>"$FACTS"
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------
# The table, in one streaming pass. The facts file comes first (local addresses, listeners).
# Remote ports and addresses use Misra-Gries summaries (at most PCAP/ACAP keys): exact while the
# distinct keys fit, lower bounds flagged "approximate" beyond, in bounded memory either way.
# shellcheck disable=SC2016
readonly TABLE_AWK='
BEGIN {
  ACAP = 4096; PCAP = 8192
  PORTED["tcp"] = PORTED["udp"] = PORTED["sctp"] = PORTED["dccp"] = PORTED["udplite"] = 1
}
FNR == NR {
  if (substr($0, 1, 10) == "localaddr\t") LOCAL[substr($0, 11)] = 1
  else if (substr($0, 1, 9) == "listener\t") { split($0, f, "\t"); LISTEN[f[2] " dport=" f[4]] = 1 }
  next
}
FNR == 1 { o = ($1 == "ipv4" || $1 == "ipv6") ? 2 : 0 }
{
  # Fast path for "[l3 l3num] l4 l4num ttl [STATE] src=.. dst=.. sport=.. dport=..": states are
  # upper-case, so a field sorting below "a" is a state and "src=..." is not.
  st = $(o + 4)
  if (st < "a") s = o + 5; else { s = o + 4; st = "" }
  if (substr($s, 1, 4) != "src=") {
    s = 0
    for (i = 1; i <= NF; i++) if (substr($i, 1, 4) == "src=") { s = i; break }
    if (s < 2) { unparsed++; next }
    st = $(s - 1); if (st !~ /^[A-Z]/) st = ""
  }
  p = $(o + 1)
  # No state field: a protocol without states, or an [OFFLOAD]ed flow printed without its timeout.
  if (st == "" && $(s - 1) >= "A") st = $(s - 1)
  if (st == "") st = index($0, "[UNREPLIED]") ? "UNREPLIED" : index($0, "[ASSURED]") ? "ASSURED" : "REPLIED"
  dst = substr($(s + 1), 5)
  remote = substr($s, 5)
  # Exact counters per (direction, protocol, state[, listening port]); states, directions and
  # service ports are summed from them at the end, which keeps the per-line work small.
  ks = p " " st
  if (dst in LOCAL) {
    k = p " " $(s + 3)
    if (k in LISTEN) EL[st " " k]++; else EI[ks]++
  } else if (remote in LOCAL) {
    EO[ks]++
    remote = dst
    if (p in PORTED) {
      k = ks " " $(s + 3)
      if (++OP[k] == 1 && ++opn > PCAP) opdec()
    }
  } else EF[ks]++
  if (++RA[remote] == 1 && ++ran > ACAP) radec()
}
# Misra-Gries step: every counter loses one; the survivors go back in after a whole-array delete
# (much cheaper than deleting thousands of keys one by one).
function radec(   k, m, keep, val) {
  approx = 1; m = 0
  for (k in RA) if (RA[k] > 1) { keep[++m] = k; val[m] = RA[k] - 1 }
  delete RA
  for (ran = 0; ran < m; ) { ran++; RA[keep[ran]] = val[ran] }
}
function opdec(   k, m, keep, val) {
  approx = 1; m = 0
  for (k in OP) if (OP[k] > 1) { keep[++m] = k; val[m] = OP[k] - 1 }
  delete OP
  for (opn = 0; opn < m; ) { opn++; OP[keep[opn]] = val[opn] }
}
# The n largest entries of arr, ties by key, in one pass: OUT[tag, 1..n].
function top(arr, n, tag,   k, v, c, i) {
  c = 0
  for (k in arr) {
    v = arr[k]
    if (c == n && (v < TV[c] || (v == TV[c] && k > TK[c]))) continue
    if (c < n) c++
    for (i = c; i > 1 && (TV[i - 1] < v || (TV[i - 1] == v && TK[i - 1] > k)); i--) { TV[i] = TV[i - 1]; TK[i] = TK[i - 1] }
    TV[i] = v; TK[i] = k
  }
  for (i = 1; i <= c; i++) OUT[tag, i] = TK[i]
  return c
}
END {
  split("SYN_SENT SYN_SENT2 SYN_RECV FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE", names, " ")
  for (i in names) SHORT[names[i]] = 1
  for (k in EL) {
    split(k, f, " "); v = EL[k]; p = f[2]; pk = p " " substr(f[3], 7)
    DIR["inboundToListener"] += v; STATE[p " " f[1]] += v
    LP[pk] += v; if (f[1] in SHORT || p == "udp" || p == "udplite") LPS[pk] += v; if (f[1] == "TIME_WAIT") LPT[pk] += v
  }
  for (k in EI) { DIR["inboundOther"] += EI[k]; STATE[k] += EI[k] }
  for (k in EO) { DIR["outbound"] += EO[k]; STATE[k] += EO[k] }
  for (k in EF) { DIR["forwarded"] += EF[k]; STATE[k] += EF[k] }
  for (k in DIR) total += DIR[k]
  for (k in OP) {
    split(k, f, " "); v = OP[k]; p = f[1]; pk = p " " substr(f[3], 7)
    RP[pk] += v; if (f[2] in SHORT || p == "udp" || p == "udplite") RPS[pk] += v; if (f[2] == "TIME_WAIT") RPT[pk] += v
  }
  printf "table\tentries\t%.0f\n", total
  printf "table\tunparsed\t%.0f\n", unparsed
  printf "table\tinboundToListener\t%.0f\n", DIR["inboundToListener"]
  printf "table\tinboundOther\t%.0f\n", DIR["inboundOther"]
  printf "table\toutbound\t%.0f\n", DIR["outbound"]
  printf "table\tforwarded\t%.0f\n", DIR["forwarded"]
  printf "table\tapproximate\t%d\n", approx
  n = top(STATE, N, "s")
  for (i = 1; i <= n; i++) { k = OUT["s", i]; split(k, f, " "); printf "state\t%s\t%s\t%.0f\n", f[1], f[2], STATE[k] }
  n = top(LP, N, "l")
  for (i = 1; i <= n; i++) { k = OUT["l", i]; split(k, f, " "); printf "lport\t%s\t%s\t%.0f\t%.0f\t%.0f\n", f[1], f[2], LP[k], LPS[k], LPT[k] }
  n = top(RP, N, "r")
  for (i = 1; i <= n; i++) { k = OUT["r", i]; split(k, f, " "); printf "rport\t%s\t%s\t%.0f\t%.0f\t%.0f\n", f[1], f[2], RP[k], RPS[k], RPT[k] }
  n = top(RA, N, "a")
  for (i = 1; i <= n; i++) { k = OUT["a", i]; printf "raddr\t%s\t%.0f\n", k, RA[k] }
}
'

TABLE_FACTS=/dev/null
collect_table() {
  local start end source='' status=0
  if ! ((CONNTRACK_LOADED)); then
    fact table source unavailable
    return 0
  fi
  uptime_cs
  start=$NOW
  if [[ -r $PROC_NET/nf_conntrack ]]; then
    source=procfs
    awk -v N="$TOP_N" "$TABLE_AWK" "$FACTS" "$PROC_NET/nf_conntrack" >"$WORK/table" || status=$?
  elif [[ -r $PROC_NET/ip_conntrack ]]; then
    source=procfs
    awk -v N="$TOP_N" "$TABLE_AWK" "$FACTS" "$PROC_NET/ip_conntrack" >"$WORK/table" || status=$?
  elif have conntrack; then
    source=conntrack-tool
    conntrack -L 2>"$WORK/conntrack-stderr" | awk -v N="$TOP_N" "$TABLE_AWK" "$FACTS" - >"$WORK/table" ||
      status=$?
  else
    warn "no $PROC_NET/nf_conntrack and no conntrack tool: table not read"
    fact table source unavailable
    return 0
  fi
  uptime_cs
  end=$NOW
  if ((status != 0)); then
    warn "reading the conntrack table ($source) failed with status $status"
  fi
  # The aggregates stay in their own file, which render reads after the facts.
  TABLE_FACTS=$WORK/table
  fact table source "$source"
  fact table readCentiseconds "$((end - start))"
}

# ---------------------------------------------------------------------------------------------
# Firewall: which backends hold tables in this namespace, raw rules, nat ports, UNTRACKED accepts.
# iptables-save format (legacy or nft); label names the tool, e.g. "iptables-nft".
# shellcheck disable=SC2016
readonly IPT_AWK='
BEGIN {
  NATT["DNAT"] = 1; NATT["SNAT"] = 1; NATT["MASQUERADE"] = 1; NATT["REDIRECT"] = 1; NATT["NETMAP"] = 1
  PN["6"] = "tcp"; PN["17"] = "udp"; PN["132"] = "sctp"; PN["33"] = "dccp"; PN["all"] = ""
}
function emit_ports(proto, v,   n, a, i, r) {
  n = split(v, a, ",")
  for (i = 1; i <= n; i++) {
    if (a[i] ~ /^[0-9]+$/) printf "natport\t%s\t%s\n", proto, a[i]
    else if (a[i] ~ /^[0-9]+[:-][0-9]+$/) { split(a[i], r, /[:-]/); printf "natrange\t%s\t%s\t%s\n", proto, r[1], r[2] }
    else print "natall\tunparsed port " a[i]
  }
}
function to_port(v,   c, parts) {
  if (substr(v, 1, 1) == "[") { c = index(v, "]:"); return c ? substr(v, c + 2) : "" }
  if (split(v, parts, ":") == 2) return parts[2]
  return ""
}
/^\*/ { table = substr($0, 2); next }
/^:/ {
  split(substr($0, 2), a, " "); CH[table, a[1]] = 1; if (a[2] != "-") POL[table, a[1]] = a[2]
  if (table == "nat" && a[1] ~ /^DOCKER/) print "natowner\tdocker"
  if (table == "nat" && a[1] ~ /^KUBE-/) print "natowner\tkube-proxy"
  next
}
/^-A / {
  gsub(/\t/, " ")
  line = $0; gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
  n = split(line, t, " ")
  chain = t[2]; target = ""; proto = ""; neg = 0; np = 0; portneg = 0; unt = 0; ntv = 0
  for (i = 3; i <= n; i++) {
    w = t[i]
    if (w == "!") { neg = 1; continue }
    if (w == "-j" || w == "-g" || w == "--jump" || w == "--goto") target = t[++i]
    else if (w == "-p" || w == "--protocol") { i++; if (!neg) proto = (t[i] in PN) ? PN[t[i]] : t[i] }
    else if (w ~ /^--(dport|sport|dports|sports|ports|destination-ports?|source-ports?)$/) { i++; if (neg) portneg = 1; else PV[++np] = t[i] }
    else if (w == "--ctstate" || w == "--state") { i++; if (!neg && toupper(t[i]) ~ /(^|,)UNTRACKED(,|$)/) unt = 1 }
    else if (w ~ /^--to(-destination|-source|-ports)?$/) TV[++ntv] = t[++i]
    neg = 0
  }
  if (table == "raw") printf "rawrule\t%s: %s\n", label, $0
  else if (table == "nat" && (target in NATT)) {
    printf "natrule\t%s: %s\n", label, $0
    owner = (chain ~ /^DOCKER/ || line ~ /docker/) ? "docker" : (chain ~ /^KUBE-/ || line ~ /kube/) ? "kube-proxy" : "other"
    print "natowner\t" owner
    if (np == 0 || portneg) print "natall\t" label " " chain " rule without a port match"
    for (i = 1; i <= np; i++) emit_ports(proto, PV[i])
    for (i = 1; i <= ntv; i++) { v = (TV[i] ~ /:|^\[/) ? to_port(TV[i]) : TV[i]; if (v != "") emit_ports(proto, v) }
  } else if (table == "filter") {
    FRN++; FC[FRN] = chain; FT[FRN] = target; FU[FRN] = unt; FSC[FRN] = (np > 0 || portneg); FX[FRN] = (n == 4)
    FP[FRN] = proto; FPV[FRN] = (np == 1) ? PV[1] : ""
  }
}
function analyze(hook,   reach, added, k, c, acc, drops, scoped, blocked, verdict) {
  if (!(("filter", hook) in CH)) return
  reach[hook] = 1; added = 1
  while (added) {
    added = 0
    for (k = 1; k <= FRN; k++) if ((FC[k] in reach) && (("filter", FT[k]) in CH) && !(FT[k] in reach)) { reach[FT[k]] = 1; added = 1 }
  }
  for (k = 1; k <= FRN; k++) {
    c = FC[k]
    if (!(c in reach) || (c in blocked)) continue
    if (FT[k] == "ACCEPT" && FU[k]) {
      if (FSC[k]) { scoped = 1; if (FPV[k] ~ /^[0-9]+$/) printf "untrackedport\t%s\t%s\n", FP[k], FPV[k] }
      else acc = 1
    } else if (FT[k] == "DROP" || FT[k] == "REJECT") { drops = 1; if (FX[k]) blocked[c] = 1 }
  }
  verdict = acc ? "accepted" : (POL["filter", hook] == "ACCEPT" && !drops) ? "not-needed" : scoped ? "port-scoped" : "missing"
  printf "untracked\t%s\t%s\t%s\n", tolower(hook), verdict, label
}
END { analyze("INPUT"); analyze("OUTPUT") }'

# nft list ruleset. Tables that iptables-nft made (ip/ip6 raw|filter|nat|mangle|security with only
# upper-case built-in base chains) are listed as such and analysed from iptables-nft-save instead,
# unless ipt_too=1 (no iptables-nft-save on this host).
# shellcheck disable=SC2016
readonly NFT_AWK='
BEGIN {
  split("raw filter nat mangle security", a, " "); for (i in a) IPTN[a[i]] = 1
  split("PREROUTING INPUT FORWARD OUTPUT POSTROUTING", a, " "); for (i in a) BUILTIN[a[i]] = 1
}
function strip(s) { gsub(/"([^"\\]|\\.)*"/, "\"\"", s); return s }
function opens(s) { return gsub(/[{]/, "", s) }
function closes(s) { return gsub(/[}]/, "", s) }
{ line = $0; sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line) }
skip > 0 { skip += opens(line) - closes(line); next }
line == "" { next }
line ~ /^table / && T == "" {
  split(line, a, " "); T = a[2] " " a[3]; TN[++NT] = T; TFAM[T] = a[2]; TNAME[T] = a[3]; C = ""; next
}
line == "}" { if (C != "") C = ""; else T = ""; next }
T == "" { next }
C == "" && line ~ /^chain / { split(line, a, " "); C = a[2]; CH[T, C] = 1; next }
C == "" { if (line ~ /[{]$/) skip = opens(line) - closes(line); next }
line ~ /^type / {
  BASE[T, C] = 1
  if (match(line, /hook [a-z_]+/)) HOOK[T, C] = substr(line, RSTART + 5, RLENGTH - 5)
  if (match(line, /^type [a-z]+/)) TYPE[T, C] = substr(line, 6, RLENGTH - 5)
  PRIO[T, C] = ""; if (match(line, /priority [^;]+/)) PRIO[T, C] = substr(line, RSTART + 9, RLENGTH - 9)
  POLICY[T, C] = (line ~ /policy drop/) ? "drop" : "accept"
  if (!(C in BUILTIN)) NONBUILTIN[T] = 1
  next
}
line ~ /^(comment|devices) / { next }
{ gsub(/\t/, " ", line); RN++; RTAB[RN] = T; RCH[RN] = C; RTXT[RN] = line }
function is_raw(p) { return p ~ /^raw/ || (p ~ /^-?[0-9]+$/ && p + 0 <= -300) }
function ports(s, label,   rest, v, n, items, i, proto, found) {
  rest = s; found = 0
  while (match(rest, /(tcp|udp|udplite|sctp|dccp|th) (dport|sport) (!= )?(\{[^}]*\}|[^ ]+)/)) {
    v = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH); found = 1
    proto = v; sub(/ .*/, "", proto); if (proto == "th") proto = ""
    if (v ~ /!= /) { print "natall\t" label " negated port match"; continue }
    sub(/^[a-z]+ [a-z]+ /, "", v); gsub(/[{}]/, "", v); gsub(/ /, "", v)
    n = split(v, items, ",")
    for (i = 1; i <= n; i++) {
      if (items[i] ~ /^[0-9]+$/) printf "natport\t%s\t%s\n", proto, items[i]
      else if (items[i] ~ /^[0-9]+-[0-9]+$/) { split(items[i], r, "-"); printf "natrange\t%s\t%s\t%s\n", proto, r[1], r[2] }
      else print "natall\t" label " port match " items[i]
    }
  }
  return found
}
function analyze(T, C0,   reach, added, k, acc, drops, scoped, blocked, verdict, s, rest, j, pv) {
  reach[C0] = 1; added = 1
  while (added) {
    added = 0
    for (k = 1; k <= RN; k++) {
      if (RTAB[k] != T || !(RCH[k] in reach)) continue
      rest = RTXT[k]
      while (match(rest, /(jump|goto) [^ ,}]+/)) {
        j = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH); sub(/^[a-z]+ /, "", j)
        if (!(j in reach)) { reach[j] = 1; added = 1 }
      }
    }
  }
  for (k = 1; k <= RN; k++) {
    if (RTAB[k] != T || !(RCH[k] in reach) || (RCH[k] in blocked)) continue
    s = strip(RTXT[k])
    if (s ~ /ct state (\{[^}]*untracked[^}]*\}|[a-z,]*untracked)/ && s !~ /ct state !=/ && s ~ /(^| )accept( |$)/) {
      if (s ~ / (dport|sport) /) {
        scoped = 1
        if (match(s, /(tcp|udp) dport [0-9]+/) || match(s, /(tcp|udp) sport [0-9]+/)) {
          pv = substr(s, RSTART, RLENGTH); split(pv, a, " "); printf "untrackedport\t%s\t%s\n", a[1], a[3]
        }
      } else acc = 1
    } else if (s ~ /(^| )(drop|reject)( |$)/) {
      drops = 1
      if (s ~ /^(counter( packets [0-9]+ bytes [0-9]+)? )?(drop|reject)/) blocked[RCH[k]] = 1
    }
  }
  verdict = acc ? "accepted" : (POLICY[T, C0] == "accept" && !drops) ? "not-needed" : scoped ? "port-scoped" : "missing"
  printf "untracked\t%s\t%s\tnft %s/%s\n", HOOK[T, C0], verdict, T, C0
}
END {
  for (i = 1; i <= NT; i++) {
    T = TN[i]
    IPT[T] = (TFAM[T] == "ip" || TFAM[T] == "ip6") && (TNAME[T] in IPTN) && !(T in NONBUILTIN)
    printf "fwtable\t%s\t%s\n", IPT[T] ? "iptables-nft" : "nft", T
  }
  for (k = 1; k <= RN; k++) {
    T = RTAB[k]; C = RCH[k]
    if (IPT[T] && !ipt_too) continue
    s = strip(RTXT[k]); label = "nft " T "/" C
    if (BASE[T, C] && (HOOK[T, C] == "prerouting" || HOOK[T, C] == "output") && is_raw(PRIO[T, C]))
      printf "rawrule\t%s: %s\n", label, RTXT[k]
    if (s ~ /(^| )(dnat|snat|masquerade|redirect)( |;|$)/) {
      printf "natrule\t%s: %s\n", label, RTXT[k]
      print "natowner\t" ((T C s) ~ /kube/ ? "kube-proxy" : (T C s) ~ /docker/ ? "docker" : "other")
      if (!ports(s, label)) print "natall\t" label " rule without a port match"
      if (match(s, / to [^ ]*:[0-9]+(-[0-9]+)?( |$)/)) {
        v = substr(s, RSTART, RLENGTH); sub(/ +$/, "", v); sub(/.*:/, "", v)
        if (v ~ /-/) { split(v, r, "-"); printf "natrange\t\t%s\t%s\n", r[1], r[2] } else printf "natport\t\t%s\n", v
      }
    }
  }
  for (i = 1; i <= NT; i++) {
    T = TN[i]
    if (IPT[T] && !ipt_too) continue
    if (TNAME[T] ~ /kube/) print "natowner\tkube-proxy"
    for (k in CH) {
      split(k, a, SUBSEP)
      if (a[1] == T && BASE[T, a[2]] && TYPE[T, a[2]] == "filter" && (HOOK[T, a[2]] == "input" || HOOK[T, a[2]] == "output")) analyze(T, a[2])
    }
  }
}'

VARIANT='' # what plain `iptables` is here: nf_tables, legacy, or "" (not installed)
iptables_variant() {
  local version
  have iptables || return 0
  version=$(iptables -V 2>/dev/null || true)
  fact firewall iptablesVersion "$version"
  if [[ $version == *nf_tables* ]]; then VARIANT=nf_tables; else VARIANT=legacy; fi
}

save_and_parse() { # label command...
  local label=$1
  shift
  have "$1" || return 1
  if "$@" >"$WORK/save-$label" 2>"$WORK/save-stderr"; then
    awk -v label="$label" "$IPT_AWK" "$WORK/save-$label" >>"$FACTS"
  else
    warn "$* failed: $(head -c 200 "$WORK/save-stderr" | tr -d '\n')"
  fi
}

collect_firewall() {
  local variant legacy4='' legacy6='' name nft_ipt='' nft_ok=0 ipt_too=0
  iptables_variant
  variant=$VARIANT
  # Legacy tables exist in this namespace only once something used them here; listing them with
  # iptables-legacy would create them, so look at /proc first.
  [[ -r /proc/net/ip_tables_names ]] && legacy4=$(</proc/net/ip_tables_names)
  [[ -r /proc/net/ip6_tables_names ]] && legacy6=$(</proc/net/ip6_tables_names)
  for name in $legacy4; do fact fwtable legacy "ip $name"; done
  for name in $legacy6; do fact fwtable legacy "ip6 $name"; done
  if [[ -n $legacy4 ]]; then
    save_and_parse iptables-legacy iptables-legacy-save ||
      { [[ $variant == legacy ]] && save_and_parse iptables-legacy iptables-save; } ||
      warn "legacy iptables tables present but no iptables-legacy-save to read them"
  fi
  if [[ -n $legacy6 ]]; then
    save_and_parse ip6tables-legacy ip6tables-legacy-save ||
      { [[ $variant == legacy ]] && save_and_parse ip6tables-legacy ip6tables-save; } ||
      warn "legacy ip6tables tables present but no ip6tables-legacy-save to read them"
  fi
  # Registered legacy tables make a backend only when they hold rules (lib/legacy-rules.sh).
  if [[ -n $legacy4 ]] && legacy_save_holds_rules "$WORK/save-iptables-legacy"; then fact fwlegacyrules ip; fi
  if [[ -n $legacy6 ]] && legacy_save_holds_rules "$WORK/save-ip6tables-legacy"; then fact fwlegacyrules ip6; fi

  if have nft; then
    if nft list ruleset >"$WORK/nft" 2>"$WORK/nft-stderr"; then
      nft_ok=1
    else
      warn "nft list ruleset failed: $(head -c 200 "$WORK/nft-stderr" | tr -d '\n')"
    fi
  fi
  if ((nft_ok)); then
    nft_ipt=$(grep -E '^table ip6? (raw|filter|nat|mangle|security) ' "$WORK/nft" || true)
  elif [[ $variant == nf_tables ]]; then
    nft_ipt='table ip table ip6 '
    warn "nft not available: native nftables tables not inspected"
  fi
  if [[ -n $nft_ipt ]]; then
    if have iptables-nft-save; then
      [[ $nft_ipt == *'table ip '* ]] && save_and_parse iptables-nft iptables-nft-save
      [[ $nft_ipt == *'table ip6 '* ]] && save_and_parse ip6tables-nft ip6tables-nft-save
    elif [[ $variant == nf_tables ]]; then
      [[ $nft_ipt == *'table ip '* ]] && save_and_parse iptables-nft iptables-save
      [[ $nft_ipt == *'table ip6 '* ]] && save_and_parse ip6tables-nft ip6tables-save
    else
      ipt_too=1
    fi
    if ((!nft_ok)) && [[ -r $WORK/save-iptables-nft ]]; then
      awk '/^\*/ { print "fwtable\tiptables-nft\tip " substr($0, 2) }' "$WORK/save-iptables-nft" >>"$FACTS" 2>/dev/null || true
    fi
  fi
  if ((nft_ok)); then
    awk -v ipt_too="$ipt_too" "$NFT_AWK" "$WORK/nft" >>"$FACTS"
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------
# Owners: programs and files that set conntrack sysctls at boot or at run time.
collect_owners() {
  local pid pids=() cmdline flags config detail file files=() readable=()
  # kube-proxy rewrites max, hash size and timeouts whenever it starts.
  mapfile -t pids < <(grep -l -x kube-proxy /proc/[0-9]*/comm 2>/dev/null || true)
  for pid in ${pids[@]+"${pids[@]:0:3}"}; do
    pid=${pid#/proc/}
    pid=${pid%/comm}
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    flags=$(printf '%s' "$cmdline" | tr ' ' '\n' | grep -E '^--conntrack' | tr '\n' ' ' || true)
    config=$(printf '%s' "$cmdline" | tr ' ' '\n' | sed -n 's/^--config=//p' | head -n 1 || true)
    detail="process $pid${flags:+; flags: $flags}"
    if [[ -n $config && -r /proc/$pid/root$config ]]; then
      detail+="; $config: $(grep -i -E 'conntrack|maxPerCore|min:|tcp(Established|CloseWait)Timeout|udp' \
        "/proc/$pid/root$config" 2>/dev/null | tr -s ' \n' ' ' | head -c 300 || true)"
    fi
    fact owner kube-proxy "$detail"
  done
  shopt -s nullglob
  files=("$ROOT"/etc/kubernetes/manifests/kube-proxy* "$ROOT"/var/lib/kube-proxy/config* "$ROOT"/etc/kubernetes/kube-proxy*)
  for file in ${files[@]+"${files[@]:0:3}"}; do fact owner kube-proxy "configuration file ${file#"$ROOT"}"; done
  files=("$ROOT"/etc/sysctl.conf "$ROOT"/etc/sysctl.d/*.conf "$ROOT"/run/sysctl.d/*.conf
    "$ROOT"/usr/local/lib/sysctl.d/*.conf "$ROOT"/usr/lib/sysctl.d/*.conf "$ROOT"/lib/sysctl.d/*.conf
    "$ROOT"/etc/modprobe.d/*.conf "$ROOT"/usr/lib/modprobe.d/*.conf "$ROOT"/lib/modprobe.d/*.conf
    "$ROOT"/etc/tuned/*/tuned.conf "$ROOT"/usr/lib/tuned/*/tuned.conf)
  shopt -u nullglob
  readable=()
  for file in ${files[@]+"${files[@]}"}; do [[ -f $file && -r $file ]] && readable+=("$file"); done
  if ((${#readable[@]})); then
    # One awk over the files (what grep -i -E '^[^#;]*(conntrack|hashsize)' | awk did in two).
    awk -v root="$ROOT" '
      { line = tolower($0) }
      line ~ /^[^#;]*(conntrack|hashsize)/ {
        gsub(/\t/, " ")
        file = FILENAME; gsub(/\t/, " ", file); text = $0
        gsub(/[ \t]+/, " ", text); sub(/^ /, "", text)
        if (!(file in seen)) { order[++n] = file; seen[file] = 1 }
        lines[file] = lines[file] (lines[file] == "" ? "" : "; ") text
      }
      END {
        for (i = 1; i <= n; i++) {
          f = order[i]; name = (f ~ /modprobe/) ? "modprobe.d" : (f ~ /tuned/) ? "tuned" : (f ~ /sysctl.conf$/) ? "sysctl.conf" : "sysctl.d"
          printf "owner\t%s\t%s: %s\n", name, substr(f, length(root) + 1), substr(lines[f], 1, 300)
        }
      }' "${readable[@]}" >>"$FACTS" 2>/dev/null || true
  fi
  if [[ $DIST_ID == bottlerocket ]]; then
    fact owner bottlerocket "release-sysctl.conf sets net.netfilter.nf_conntrack_max=1048576 and nf_conntrack_generic_timeout=120; change them through the Bottlerocket settings API"
  fi
}

# ---------------------------------------------------------------------------------------------
# Render: all facts to one JSON document. Every list and string is bounded; if the document is
# still over the limit, render again with tighter bounds (level 1, 2, 3).
# shellcheck disable=SC2016
readonly RENDER_AWK='
BEGIN {
  FS = "\t"
  for (i = 1; i < 32; i++) ESC[sprintf("%c", i)] = sprintf("\\u%04x", i)
  ESC["\n"] = "\\n"; ESC["\t"] = "\\t"; ESC["\r"] = "\\r"; ESC["\""] = "\\\""; ESC["\\"] = "\\\\"
  for (i = 127; i < 256; i++) ESC[sprintf("%c", i)] = "?"
  split("tcp udp sctp dccp icmp icmpv6", a, " "); for (i in a) PROTO[a[i]] = 1
  # Per level: topN, raw rules, nat rules, nat ports, listeners, owners, warnings, string length,
  # all sysctls (1) or the main ones (0), tables, ENA interfaces.
  split("50 40 20 100 50 12 12 240 1 30 8", L0, " "); split("20 15 5 60 25 6 8 160 1 10 8", L1, " ")
  split("10 5 0 40 10 4 5 120 0 5 4", L2, " "); split("5 0 0 30 5 2 3 80 0 3 2", L3, " ")
  for (i = 1; i <= 11; i++) CAP[i] = (level == 0) ? L0[i] : (level == 1) ? L1[i] : (level == 2) ? L2[i] : L3[i]
  TOPN = (topn < CAP[1]) ? topn : CAP[1]; SLEN = CAP[8]
}
function str(s, max,   out, i, n, c, e) {
  if (max == "") max = SLEN
  out = ""; n = length(s)
  for (i = 1; i <= n; i++) {
    c = substr(s, i, 1); e = (c in ESC) ? ESC[c] : c
    if (length(out) + length(e) > max) break
    out = out e
  }
  return "\"" out "\""
}
function num(v) { return (v ~ /^-?[0-9]+$/) ? sprintf("%.0f", v) : "null" }
function numornull(v) { return (v ~ /^[0-9]+$/) ? sprintf("%.0f", v) : "null" }
function proto(p) { return (p in PROTO) ? p : "other" }
function protonull(p) { return (p == "") ? "null" : "\"" proto(p) "\"" }
function compress6(a,   g, n, i, best, bl, cs, cl, out) {
  if (length(a) != 39 || split(a, g, ":") != 8) return a
  for (i = 1; i <= 8; i++) if (length(g[i]) != 4 || g[i] !~ /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f]$/) return a
  for (i = 1; i <= 8; i++) { sub(/^0+/, "", g[i]); if (g[i] == "") g[i] = "0" }
  best = 0; bl = 0; cs = 0; cl = 0
  for (i = 1; i <= 8; i++) {
    if (g[i] == "0") { if (!cl) cs = i; cl++; if (cl > bl) { bl = cl; best = cs } } else cl = 0
  }
  out = ""
  for (i = 1; i <= 8; i++) {
    if (bl > 1 && i == best) { out = out "::"; i += bl - 1; continue }
    out = out ((out == "" || out ~ /:$/) ? "" : ":") g[i]
  }
  return out
}
function add(list, item) { N[list]++; ITEM[list, N[list]] = item }
function arr(list, cap,   i, out) {
  out = ""
  for (i = 1; i <= N[list] && i <= cap; i++) out = out (i > 1 ? "," : "") ITEM[list, i]
  if (N[list] > cap) TRUNC[++NTR] = list
  return "[" out "]"
}
function strarr(list, cap, max,   i, out) {
  out = ""
  for (i = 1; i <= N[list] && i <= cap; i++) out = out (i > 1 ? "," : "") str(ITEM[list, i], max)
  if (N[list] > cap) TRUNC[++NTR] = list
  return "[" out "]"
}
function verdict_rank(v) { return v == "missing" ? 3 : v == "port-scoped" ? 2 : v == "accepted" ? 1 : 0 }
$1 == "host" { H[$2] = $3; next }
$1 == "conntrack" { CT[$2] = $3; next }
$1 == "sysctl" {
  if ($3 !~ /^-?[0-9]+$/) next
  if ($2 ~ /^net\.(netfilter\.nf|ipv4\.netfilter\.ip)_conntrack_(max|count|buckets)$/) { k = $2; sub(/.*_/, "", k); if (!(k in SYS) || $2 ~ /netfilter\.nf/) SYS[k] = $3 }
  if (CAP[9] || $2 ~ /(max|count|buckets|timeout|ip_conntrack)/) add("sysctl", str($2, 120) ":" num($3))
  next
}
$1 == "stat" { if ($4 ~ /^[0-9]+$/) add("stat_" $2, str($3, 40) ":" $4); next }
$1 == "ena" { if (!($3 in ENAIF)) { ENAIF[$3] = 1; ENAORDER[++NENA] = $3 }; ENA[$2, $3, $4] = $5; next }
$1 == "table" { TB[$2] = $3; next }
$1 == "state" { add("state", "{\"protocol\":\"" proto($2) "\",\"state\":" str($3, 20) ",\"entries\":" numornull($4) "}"); next }
$1 == "lport" || $1 == "rport" {
  if ($3 !~ /^[0-9]+$/ || $3 > 65535) next
  if ($1 == "lport") LPORT[$2 "/" $3] = N["lport"] + 1
  e = $4 + 0; sh = ($5 + 0 > e) ? e : $5 + 0; tw = ($6 + 0 > e) ? e : $6 + 0
  add($1, "{\"protocol\":\"" proto($2) "\",\"port\":" $3 ",\"entries\":" sprintf("%.0f", e) ",\"shortLived\":" sprintf("%.0f", sh) ",\"timeWait\":" sprintf("%.0f", tw) "}")
  next
}
$1 == "raddr" { add("raddr", "{\"address\":" str(compress6($2), 64) ",\"entries\":" numornull($3) "}"); next }
$1 == "firewall" { FW[$2] = $3; next }
$1 == "fwtable" { if (!(($2, $3) in SEENT)) { SEENT[$2, $3] = 1; add("tables_" ($2 == "legacy" ? "legacy" : "nft"), $3); KIND[$2] = 1 }; next }
$1 == "fwlegacyrules" { LEGACY_RULES = 1; next }
$1 == "rawrule" { add("rawrule", $2); next }
$1 == "natrule" { add("natrule", $2); next }
$1 == "natall" { NATALL = 1; next }
$1 == "natowner" { if (!($2 in OWN)) { OWN[$2] = 1; add("natowner", "\"" $2 "\"") }; next }
$1 == "natport" {
  if ($3 !~ /^[0-9]+$/ || $3 > 65535) { NATALL = 1; next }
  if (!(($2, $3) in NP)) { NP[$2, $3] = 1; add("natport", "{\"protocol\":" protonull($2) ",\"port\":" $3 "}") }
  next
}
$1 == "natrange" {
  if ($3 !~ /^[0-9]+$/ || $4 !~ /^[0-9]+$/ || $3 > 65535 || $4 > 65535 || $3 + 0 > $4 + 0) { NATALL = 1; next }
  if (!(($2, $3, $4) in NR_)) { NR_[$2, $3, $4] = 1; add("natrange", "{\"protocol\":" protonull($2) ",\"from\":" $3 ",\"to\":" $4 "}") }
  # A reader that only knows `ports` must still see every NATed port: small ranges are listed port
  # by port, wider ones make allPorts true.
  if ($4 - $3 >= 64) NATALL = 1
  else for (p = $3 + 0; p <= $4 + 0; p++) if (!(($2, p) in NP)) { NP[$2, p] = 1; add("natport", "{\"protocol\":" protonull($2) ",\"port\":" p "}") }
  next
}
$1 == "untracked" { if (verdict_rank($3) >= verdict_rank(UNT[$2])) UNT[$2] = $3; next }
$1 == "untrackedport" {
  if ($3 ~ /^[0-9]+$/ && $3 <= 65535 && !(($2, $3) in UP)) { UP[$2, $3] = 1; add("untport", "{\"protocol\":" protonull($2) ",\"port\":" $3 "}") }
  next
}
$1 == "listener" {
  if ($4 !~ /^[0-9]+$/ || $4 > 65535 || (($2, $3, $4) in LS)) next
  LS[$2, $3, $4] = 1; NL++; LPROTO[NL] = $2; LADDR[NL] = $3; LPRT[NL] = $4; LPROC[NL] = $5
  next
}
$1 == "owner" { add("owner", "{\"name\":" str($2, 40) ",\"detail\":" str($3) "}"); next }
$1 == "warning" { add("warning", $2); next }
END {
  if (TB["approximate"] == 1) add("warning", "top remote ports/addresses are lower bounds: more distinct keys than the summary holds")
  if (level > 0) add("warning", "output reduced (level " level ") to stay under 24,000 characters")
  if (NATALL) nat_all = "true"; else nat_all = "false"
  if (N["natport"] > CAP[4] || N["natrange"] > CAP[4]) nat_all = "true"
  backend = "none"
  if (LEGACY_RULES && (KIND["iptables-nft"] || KIND["nft"])) backend = "legacy-and-nft"
  else if (LEGACY_RULES) backend = "iptables-legacy"
  else if (KIND["iptables-nft"]) backend = "iptables-nft"
  else if (KIND["nft"]) backend = "nftables"
  else if (KIND["legacy"]) backend = "iptables-legacy" # only empty legacy tables: nothing else is there
  vin = (UNT["input"] == "") ? "not-needed" : UNT["input"]; vout = (UNT["output"] == "") ? "not-needed" : UNT["output"]
  untracked = (verdict_rank(vin) <= 1 && verdict_rank(vout) <= 1) ? "true" : "false"
  # Listeners on the busiest service ports first, then by port.
  for (i = 1; i <= NL; i++) RANK[i] = ((LPROTO[i] "/" LPRT[i]) in LPORT) ? LPORT[LPROTO[i] "/" LPRT[i]] : 1000 + LPRT[i]
  if (NL > CAP[5]) TRUNC[++NTR] = "listener"
  for (i = 1; i <= NL && i <= CAP[5]; i++) {
    b = 0
    for (j = 1; j <= NL; j++) if (!(j in USED) && (b == 0 || RANK[j] < RANK[b])) b = j
    USED[b] = 1
    add("listener", "{\"protocol\":\"" proto(LPROTO[b]) "\",\"address\":" str(LADDR[b], 64) ",\"port\":" LPRT[b] ",\"process\":" (LPROC[b] == "" ? "null" : str(LPROC[b], 64)) "}")
  }
  for (i = 1; i <= NENA && i <= CAP[11]; i++) {
    d = ENAORDER[i]
    mac = ENA["first", d, "mac"]; mac = (mac ~ /^[0-9a-f][0-9a-f](:[0-9a-f][0-9a-f])(:[0-9a-f][0-9a-f])(:[0-9a-f][0-9a-f])(:[0-9a-f][0-9a-f])(:[0-9a-f][0-9a-f])$/) ? "\"" mac "\"" : "null"
    add("ena", "{\"interface\":" str(d, 32) ",\"mac\":" mac ",\"first\":{\"exceeded\":" numornull(ENA["first", d, "exceeded"]) ",\"available\":" numornull(ENA["first", d, "available"]) "},\"second\":{\"exceeded\":" numornull(ENA["second", d, "exceeded"]) ",\"available\":" numornull(ENA["second", d, "available"]) "}}")
  }
  printf "{\"schemaVersion\":1,\"document\":\"collect-diagnostics\",\"collectedAt\":%s,", str(collected, 40)
  printf "\"host\":{\"hostname\":%s,\"kernel\":%s,", str(H["hostname"], 64), str(H["kernel"], 100)
  printf "\"distribution\":{\"id\":%s,\"versionId\":%s,\"prettyName\":%s},", str(H["distId"] == "" ? "unknown" : H["distId"], 40), str(H["distVersionId"] == "" ? "unknown" : H["distVersionId"], 40), str(H["distPrettyName"] == "" ? "unknown" : H["distPrettyName"], 100)
  printf "\"cpuCount\":%s,\"memTotalBytes\":%s,\"netnsInode\":%s,", numornull(H["cpuCount"]), numornull(H["memTotalBytes"]), (H["netnsInode"] == "" ? "null" : str(H["netnsInode"], 20))
  keepalive = (H["keepaliveTime"] ~ /^[0-9]+$/ && H["keepaliveInterval"] ~ /^[0-9]+$/ && H["keepaliveProbes"] ~ /^[0-9]+$/) ? sprintf("{\"timeSeconds\":%.0f,\"intervalSeconds\":%.0f,\"probes\":%.0f}", H["keepaliveTime"], H["keepaliveInterval"], H["keepaliveProbes"]) : "null"
  printf "\"tcpKeepalive\":%s},", keepalive
  printf "\"conntrack\":{\"loaded\":%s,", (CT["loaded"] == 1 ? "true" : "false")
  printf "\"max\":%s,\"count\":%s,\"buckets\":%s,", numornull(SYS["max"]), numornull(SYS["count"]), numornull(SYS["buckets"])
  printf "\"sysctls\":{%s},\"entryBytes\":%s,", substr(arr("sysctl", 400), 2, length(arr("sysctl", 400)) - 2), numornull(CT["entryBytes"])
  printf "\"stats\":{\"first\":{%s},\"second\":{%s},\"intervalSeconds\":%s,\"source\":\"%s\"}},", substr(arr("stat_first", 64), 2, length(arr("stat_first", 64)) - 2), substr(arr("stat_second", 64), 2, length(arr("stat_second", 64)) - 2), interval, stats_source
  printf "\"table\":{\"source\":\"%s\",\"entries\":%s,\"topN\":%d,", (TB["source"] == "" ? "unavailable" : TB["source"]), numornull(TB["entries"] == "" ? 0 : TB["entries"]), TOPN
  printf "\"byState\":%s,\"byLocalServicePort\":%s,\"byRemotePort\":%s,\"byRemoteAddress\":%s,", arr("state", TOPN), arr("lport", TOPN), arr("rport", TOPN), arr("raddr", TOPN)
  printf "\"unparsed\":%s,", numornull(TB["unparsed"] == "" ? 0 : TB["unparsed"])
  printf "\"flows\":{\"inboundToListener\":%s,\"inboundOther\":%s,\"outbound\":%s,\"forwarded\":%s},", numornull(TB["inboundToListener"] + 0), numornull(TB["inboundOther"] + 0), numornull(TB["outbound"] + 0), numornull(TB["forwarded"] + 0)
  printf "\"approximate\":%s,\"readSeconds\":%s},", (TB["approximate"] == 1 ? "true" : "false"), (TB["readCentiseconds"] ~ /^[0-9]+$/ ? sprintf("%.2f", TB["readCentiseconds"] / 100) : "null")
  printf "\"firewall\":{\"backend\":\"%s\",\"iptablesVersion\":%s,", backend, (FW["iptablesVersion"] == "" ? "null" : str(FW["iptablesVersion"], 80))
  printf "\"tables\":{\"legacy\":%s,\"nft\":%s},", strarr("tables_legacy", CAP[10], 64), strarr("tables_nft", CAP[10], 64)
  printf "\"rawRules\":%s,", strarr("rawrule", CAP[2])
  printf "\"nat\":{\"allPorts\":%s,\"ports\":%s,\"portRanges\":%s,\"owners\":%s,\"rules\":%s},", nat_all, arr("natport", CAP[4]), arr("natrange", CAP[4]), arr("natowner", 3), strarr("natrule", CAP[3])
  printf "\"untrackedAccepted\":%s,\"untracked\":{\"input\":\"%s\",\"output\":\"%s\",\"ports\":%s}},", untracked, vin, vout, arr("untport", CAP[4])
  printf "\"listeners\":%s,\"sysctlOwners\":%s,\"ena\":%s,", arr("listener", CAP[5]), arr("owner", CAP[6]), arr("ena", CAP[11])
  w = strarr("warning", CAP[7])
  t = ""; for (i = 1; i <= NTR; i++) if (!(TRUNC[i] in TS)) { TS[TRUNC[i]] = 1; t = t (t == "" ? "" : ",") "\"" TRUNC[i] "\"" }
  printf "\"warnings\":%s,\"truncated\":[%s]}\n", w, t
}'

render() { # level → JSON on stdout
  awk -v level="$1" -v topn="$TOP_N" -v collected="$COLLECTED_AT" -v interval="$INTERVAL" \
    -v stats_source="$STATS_SOURCE" "$RENDER_AWK" "$FACTS" "$TABLE_FACTS"
}

# ---------------------------------------------------------------------------------------------
main() {
  local t1 t2 elapsed remaining level report=
  collect_host
  collect_sysctls
  find_ena_candidates
  uptime_cs
  t1=$NOW
  printf -v COLLECTED_AT '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  sample_stats first
  sample_ena first
  collect_entry_size
  collect_local_addresses
  collect_listeners
  collect_table
  collect_firewall
  collect_owners
  # The table read and the firewall dump overlap the pause between the two counter samples.
  uptime_cs
  elapsed=$((NOW - t1))
  remaining=$((SAMPLE_SECONDS * 100 - elapsed))
  if ((remaining > 0)); then
    printf -v remaining '%d.%02d' $((remaining / 100)) $((remaining % 100))
    sleep "$remaining"
  fi
  uptime_cs
  t2=$NOW
  sample_stats second
  sample_ena second
  printf -v INTERVAL '%d.%02d' $(((t2 - t1) / 100)) $(((t2 - t1) % 100))
  for level in 0 1 2 3; do
    render "$level" >"$WORK/report.json"
    # The whole file in one builtin read (LC_ALL=C: the length is in bytes, like wc -c).
    IFS= read -r -d '' report <"$WORK/report.json" || true
    ((${#report} <= OUTPUT_LIMIT)) && break
  done
  printf '%s' "$report"
}

main "$@"
