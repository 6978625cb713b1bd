#!/usr/bin/env bash
# notrack-ports: exempts high-churn ports from connection tracking with a NOTRACK rule pair (both
# directions) in the host's own firewall backend, after making sure the filter table accepts the
# now UNTRACKED packets, and saves what it changes under a change id for rollback.
#
# Parameters (environment, from the SSM document): SSM_ChangeId, SSM_Ports, SSM_Protocol,
# SSM_Direction, SSM_Persist. Not parameters (lab and tests only): CONNTRACK_RESPONDER_STATE_DIR,
# CONNTRACK_RESPONDER_ROOT.
# Prints one JSON object on stdout. Exit 0: applied or unchanged; 3: refused (nothing changed);
# 1: failed.
# shellcheck disable=SC2317 # lib/common.sh defines helpers that not every script calls
set -euo pipefail
set -o errtrace
readonly DOCUMENT=notrack-ports

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh
# shellcheck source-path=SCRIPTDIR source=lib/legacy-rules.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/legacy-rules.sh"  # conntrack-responder:include lib/legacy-rules.sh

readonly OWN_TABLE=conntrack_responder
# Chains and tables that container and service-mesh tooling rewrites at will: NAT decisions there
# cannot be reasoned about from a snapshot, so their presence in a nat table is a refusal.
readonly DYNAMIC_CHAINS='^(DOCKER|KUBE-|CNI-|cali-|CILIUM|cilium|WEAVE|FLANNEL|AWS-SNAT|AWS-CONNMARK|ISTIO|OVN)'
readonly DYNAMIC_TABLES='(kube|docker|cilium|calico|k8s|istio|ovn)'

change_id=${SSM_ChangeId:-}
ports_param=${SSM_Ports:-}
protocol=${SSM_Protocol:-}
direction=${SSM_Direction:-}
persist=${SSM_Persist:-false}

changes=()
nat_conflicts=()
rules_added_json=()
rules_present_json=()
persisted_json=()
saved_json=()
families=()
backend=''
port_specs=()   # iptables spelling: 8080 or 10240:65000
port_lo=()
port_hi=()
ephemeral_lo=32768
ephemeral_hi=60999

# Binaries of each backend (resolved in detect_backend).
ipt_legacy=() ipt_legacy_save=() ipt_nft=() ipt_nft_save=()
have_nft=false

finish() {
  local status=$1 code=$2
  if [ -n "$change_dir" ]; then rm -rf "$change_dir.snapshot"; fi
  [ -n "$change_dir" ] && [ -d "$change_dir" ] || change_dir=''
  printf '{"document":"%s","changeId":%s,"status":"%s","reasons":%s,' \
    "$DOCUMENT" "$(json_str "$change_id")" "$status" "$(json_array ${reasons[@]+"${reasons[@]}"})"
  printf '"backend":%s,"families":%s,"protocol":%s,"direction":%s,"ports":%s,' \
    "$(if [ -n "$backend" ]; then json_str "$backend"; else printf null; fi)" \
    "$(json_array ${families[@]+"${families[@]}"})" "$(json_str "$protocol")" "$(json_str "$direction")" \
    "$(json_array ${port_specs[@]+"${port_specs[@]}"})"
  printf '"changes":%s,"rulesAdded":%s,"rulesPresent":%s,"natConflicts":%s,' \
    "$(json_array ${changes[@]+"${changes[@]}"})" \
    "$(json_raw_array ${rules_added_json[@]+"${rules_added_json[@]}"})" \
    "$(json_raw_array ${rules_present_json[@]+"${rules_present_json[@]}"})" \
    "$(json_array ${nat_conflicts[@]+"${nat_conflicts[@]}"})"
  printf '"savedRuleset":%s,"persist":{"requested":%s,"files":%s},"stateDir":%s}\n' \
    "$(json_raw_array ${saved_json[@]+"${saved_json[@]}"})" \
    "$(if [ "$persist" = true ]; then echo true; else echo false; fi)" \
    "$(json_raw_array ${persisted_json[@]+"${persisted_json[@]}"})" \
    "$(if [ -n "$change_dir" ]; then json_str "$change_dir"; else printf null; fi)"
  exit "$code"
}

# refuse/fail/on_error (lib/common.sh) end through finish, so the trap is set only now.
trap 'on_error "$LINENO" "$?"' ERR

validate_parameters() {
  [[ $change_id =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ ]] ||
    refuse "ChangeId '$change_id' is invalid: expected 1-64 letters, digits and dashes, not starting with a dash"
  [[ $protocol =~ ^(tcp|udp)$ ]] || refuse "Protocol '$protocol' is invalid: expected tcp or udp"
  [[ $direction =~ ^(inbound|outbound)$ ]] ||
    refuse "Direction '$direction' is invalid: expected inbound (this host serves the port) or outbound (this host is its client)"
  [[ $persist =~ ^(true|false)$ ]] || refuse "Persist '$persist' is invalid: expected true or false"
  [[ $ports_param =~ ^[0-9:,]+$ ]] ||
    refuse "Ports '$ports_param' is invalid: expected comma-separated ports or lo:hi ranges, e.g. 8080,11211"
  local -a entries
  local entry lo hi i
  IFS=',' read -r -a entries <<<"$ports_param"
  [ "${#entries[@]}" -ge 1 ] || refuse "Ports is empty"
  [ "${#entries[@]}" -le 15 ] || refuse "Ports has ${#entries[@]} entries: at most 15 are allowed"
  for entry in "${entries[@]}"; do
    if [[ $entry =~ ^([1-9][0-9]{0,4})$ ]]; then
      lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[1]}
    elif [[ $entry =~ ^([1-9][0-9]{0,4}):([1-9][0-9]{0,4})$ ]]; then
      lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
      [ "$lo" -le "$hi" ] || refuse "Ports range '$entry' is invalid: the low port must not be above the high port"
      # 8080:8080 is port 8080, spelled the way iptables-save prints it.
      if [ "$lo" = "$hi" ]; then entry=$lo; fi
    else
      refuse "Ports entry '$entry' is invalid: expected a port (1-65535) or a lo:hi range"
    fi
    [ "$hi" -le 65535 ] || refuse "Ports entry '$entry' is above 65535"
    for ((i = 0; i < ${#port_specs[@]}; i++)); do
      if [ "$lo" -le "${port_hi[i]}" ] && [ "$hi" -ge "${port_lo[i]}" ]; then
        refuse "Ports entries '${port_specs[i]}' and '$entry' overlap"
      fi
    done
    port_specs+=("$entry")
    port_lo+=("$lo")
    port_hi+=("$hi")
  done
}

# "lo-hi lo-hi ..." for the awk programs.
ranges_arg() {
  local i out=''
  for ((i = 0; i < ${#port_specs[@]}; i++)); do out+="${port_lo[i]}-${port_hi[i]} "; done
  printf '%s' "$out"
}

nft_port() { printf '%s' "${1/:/-}"; }

# ---- backend detection (reference: conntrack-facts §3.4) -------------------------------------
iptables_variant() { # prints nf_tables, legacy or nothing for the plain `iptables` binary
  local version
  command -v iptables >/dev/null 2>&1 || return 0
  version=$(iptables -V 2>/dev/null || true)
  case $version in
    *nf_tables*) echo nf_tables ;;
    *) echo legacy ;;
  esac
}

resolve_binaries() {
  local plain
  plain=$(iptables_variant)
  if command -v iptables-legacy >/dev/null 2>&1; then
    ipt_legacy=(iptables-legacy ip6tables-legacy) ipt_legacy_save=(iptables-legacy-save ip6tables-legacy-save)
  elif [ "$plain" = legacy ]; then
    ipt_legacy=(iptables ip6tables) ipt_legacy_save=(iptables-save ip6tables-save)
  fi
  if command -v iptables-nft >/dev/null 2>&1; then
    ipt_nft=(iptables-nft ip6tables-nft) ipt_nft_save=(iptables-nft-save ip6tables-nft-save)
  elif [ "$plain" = nf_tables ]; then
    ipt_nft=(iptables ip6tables) ipt_nft_save=(iptables-save ip6tables-save)
  fi
  if command -v nft >/dev/null 2>&1; then have_nft=true; fi
}

ipv6_enabled() { [ -e /proc/net/if_inet6 ]; }

# Legacy counts when a legacy table is registered in this namespace and holds rules (the rule and
# why: lib/legacy-rules.sh).
legacy_active() {
  local i names save
  for i in 0 1; do
    names=/proc/net/ip_tables_names
    [ "$i" = 1 ] && names=/proc/net/ip6_tables_names
    grep -q . "$names" 2>/dev/null || continue # (proc files report size 0, so no test -s)
    save=''
    if [ -n "${ipt_legacy_save[i]:-}" ] && command -v "${ipt_legacy_save[i]}" >/dev/null 2>&1; then
      # Read it whole first: see listed() on why not `save | grep -q` under pipefail.
      save=$("${ipt_legacy_save[i]}" 2>/dev/null) || save=''
    fi
    # shellcheck disable=SC2119 # the save comes on stdin
    if legacy_save_holds_rules <<<"$save"; then return 0; fi
  done
  return 1
}

# listed NEEDLE LINE...: whether one of the LINEs is NEEDLE. Never `printf ... | grep -q` (nor
# `save | grep -q`) here: grep exits at the first match, the writer's next write hits a closed pipe
# (SIGPIPE, status 141), and pipefail turns "found" into "not found", so a re-run re-added rules
# that were there, and a long legacy ruleset went unnoticed.
listed() {
  local needle=$1 line
  shift
  for line in "$@"; do
    if [ "$line" = "$needle" ]; then return 0; fi
  done
  return 1
}

nft_ruleset=''
nft_classes='' # "family name class" per line
iptables_nft_table_list=' '

# Tables iptables-nft made are ip/ip6 filter|nat|raw|mangle|security whose base chains all carry
# the upper-case built-in names; a hand-written `table ip nat { chain prerouting ... }` is native.
# shellcheck disable=SC2016 # an awk program
readonly AWK_CLASSIFY='
function flush() {
  if (key == "") return
  if (fam == "inet" && name == own_table) cls = "ours"
  else if (fam ~ /^(arp|bridge|netdev)$/) cls = "other"
  else if (fam ~ /^(ip|ip6)$/ && name ~ /^(filter|nat|raw|mangle|security)$/ && !lowercase_base) cls = "iptables"
  else cls = "native"
  print fam, name, cls
  key = ""
}
/^table / { flush(); fam = $2; name = $3; key = fam " " name; lowercase_base = 0; next }
/^\tchain / { chain = $2; next }
/^\t\ttype .* hook / { if (chain !~ /^(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING)$/) lowercase_base = 1 }
END { flush() }
'

detect_backend() {
  resolve_binaries
  local legacy=false iptables_nft_tables=false native_tables=false ours=false family name kind
  if legacy_active; then legacy=true; fi
  if [ "$have_nft" = true ]; then
    nft_ruleset=$(nft -a list ruleset 2>/dev/null) ||
      refuse "nft list ruleset failed: cannot judge the change without reading the rules"
    nft_classes=$(printf '%s\n' "$nft_ruleset" | sed -e 's/ # handle [0-9]*$//' |
      awk -v own_table="$OWN_TABLE" "$AWK_CLASSIFY")
    while read -r family name kind; do
      [ -n "$family" ] || continue
      case $kind in
        ours) ours=true ;;
        iptables)
          iptables_nft_tables=true
          iptables_nft_table_list+="$family/$name "
          ;;
        native) native_tables=true ;;
      esac
    done <<<"$nft_classes"
  elif [ "${#ipt_nft_save[@]}" -gt 0 ]; then
    local nft_save
    nft_save=$("${ipt_nft_save[0]}" 2>/dev/null) || nft_save=''
    if grep -q '^-A ' <<<"$nft_save"; then iptables_nft_tables=true; fi
  fi
  if [ "$legacy" = true ] && { [ "$iptables_nft_tables" = true ] || [ "$native_tables" = true ] || [ "$ours" = true ]; }; then
    refuse "both iptables-legacy rules and nf_tables rules are present: the two rule sets are evaluated separately, so the effect of a change cannot be judged; clean up one of them first"
  fi
  if [ "$legacy" = true ]; then
    backend=iptables-legacy
  elif [ "$ours" = true ]; then
    backend=nftables
  elif [ "$iptables_nft_tables" = true ]; then
    backend=iptables-nft
  elif [ "$native_tables" = true ]; then
    backend=nftables
  else
    case $(iptables_variant) in
      nf_tables) backend=iptables-nft ;;
      legacy) backend=iptables-legacy ;;
      *) if [ "$have_nft" = true ]; then backend=nftables; fi ;;
    esac
  fi
  case $backend in
    iptables-legacy) [ "${#ipt_legacy[@]}" -gt 0 ] || backend='' ;;
    iptables-nft) [ "${#ipt_nft[@]}" -gt 0 ] || backend='' ;;
  esac
  [ -n "$backend" ] ||
    refuse "cannot tell which firewall backend this host uses (no usable iptables-legacy, iptables-nft or nft)"
  if [ "$backend" = nftables ]; then
    families=(inet)
  else
    families=(ipv4)
    local six=${ipt_legacy[1]:-}
    [ "$backend" = iptables-nft ] && six=${ipt_nft[1]:-}
    if ipv6_enabled && [ -n "$six" ] && command -v "$six" >/dev/null 2>&1; then families+=(ipv6); fi
  fi
}

# iptables binary for a family index (0 = ipv4, 1 = ipv6) of the chosen backend.
ipt_bin() { if [ "$backend" = iptables-legacy ]; then echo "${ipt_legacy[$1]}"; else echo "${ipt_nft[$1]}"; fi; }
ipt_save_bin() { if [ "$backend" = iptables-legacy ]; then echo "${ipt_legacy_save[$1]}"; else echo "${ipt_nft_save[$1]}"; fi; }

# ---- ruleset analysis ---------------------------------------------------------------------------
# Shared awk functions: port specs in iptables (8080, 80:90, 80,443) and nft (8080, 80-90, { 80, 443 })
# spellings; "ranges" holds our ports as "lo-hi lo-hi ...".
# shellcheck disable=SC2016 # an awk program
readonly AWK_PORTS='
function load_ranges(   n, i, parts) {
  n = split(ranges, list, " ")
  for (i = 1; i <= n; i++) { split(list[i], parts, "-"); want_lo[i] = parts[1] + 0; want_hi[i] = parts[2] + 0 }
  nwant = n
}
# 1 when an element list overlaps one of our ranges; 1 too for anything that is not numeric.
function overlaps(spec,   n, i, j, el, parts, lo, hi) {
  gsub(/[{} ]/, "", spec)
  if (spec == "") return 1
  n = split(spec, el, ",")
  for (i = 1; i <= n; i++) {
    if (el[i] !~ /^[0-9]+([:-][0-9]+)?$/) return 1
    split(el[i], parts, /[:-]/); lo = parts[1] + 0; hi = (2 in parts) ? parts[2] + 0 : lo
    for (j = 1; j <= nwant; j++) if (lo <= want_hi[j] && hi >= want_lo[j]) return 1
  }
  return 0
}
# 1 when the element list contains our range j entirely.
function covers(spec, j,   n, i, el, parts, lo, hi) {
  gsub(/[{} ]/, "", spec)
  n = split(spec, el, ",")
  for (i = 1; i <= n; i++) {
    if (el[i] !~ /^[0-9]+([:-][0-9]+)?$/) continue
    split(el[i], parts, /[:-]/); lo = parts[1] + 0; hi = (2 in parts) ? parts[2] + 0 : lo
    if (lo <= want_lo[j] && hi >= want_hi[j]) return 1
  }
  return 0
}
# The port part of a NAT destination: 10.0.0.1:8080, [fd00::1]:80, :5353, 1.2.3.4:1000-2000.
function nat_port(v) {
  if (v ~ /\]:/) { sub(/.*\]:/, "", v); return v }
  if (v ~ /^\[/) return ""
  if (v ~ /^[0-9.]*(-[0-9.]+)?:/) { sub(/^[^:]*:/, "", v); return v }
  return ""
}
'

# Reads one family's iptables-save output. Prints tab-separated facts:
#   nat <rule>            a nat rule that touches our ports (or cannot be ruled out)
#   chain <C> <drops> <established-position> <broad-untracked-accept>   for filter INPUT/OUTPUT
#   open <j>              a rule accepts new connections to our port j from anywhere
#   rule <table> <line>   a raw/filter rule without its comment, for presence checks
# shellcheck disable=SC2016 # an awk program
readonly AWK_IPTABLES='
function strip_comment(line) {
  gsub(/ -m comment --comment "([^"\\]|\\.)*"/, "", line)
  gsub(/ -m comment --comment [^ ]+/, "", line)
  return line
}
function harmless_target(t) {
  return t == "" || t ~ /^(ACCEPT|RETURN|LOG|NFLOG|ULOG|MARK|CONNMARK|CT|NOTRACK|TRACE|AUDIT|CLASSIFY|DSCP|TOS|TCPMSS|TTL|HL|SECMARK|CONNSECMARK)$/
}
function nat_rule(line,   n, t, i, target, proto, found, touch, neg, v) {
  n = split(line, t, " "); target = ""; proto = ""; found = 0; touch = 0; neg = 0
  for (i = 3; i <= n; i++) {
    if (t[i] == "-j" || t[i] == "-g") target = t[i + 1]
    else if (t[i] == "-p" || t[i] == "--protocol") { proto = t[i + 1]; if (t[i - 1] == "!") proto = "!" }
    else if (t[i] ~ /^--(dport|sport|destination-port|source-port|dports|sports|destination-ports|source-ports|ports|to-ports)$/) {
      found = 1; if (t[i - 1] == "!") neg = 1
      if (overlaps(t[i + 1])) touch = 1
    } else if (t[i] ~ /^--(to-destination|to-source)$/) {
      v = nat_port(t[i + 1]); if (v != "") { found = 1; if (overlaps(v)) touch = 1 }
    }
  }
  if (target ~ dynamic) { print "nat\t" line; return }
  if (target !~ /^(DNAT|SNAT|MASQUERADE|REDIRECT|NETMAP|CLUSTERIP)$/) return
  if (proto != "" && proto != "!" && proto != "all" && proto != "0" && proto != want_proto && proto != want_proto_number) return
  if (neg || !found || touch) print "nat\t" line
}
# Only state/port/protocol matches, an accept, and a destination port covering our port j.
function opens(line, j,   n, t, i, ok, spec, states) {
  n = split(line, t, " "); spec = ""; ok = 0
  for (i = 3; i <= n; i++) {
    if (t[i] == "-p" || t[i] == "--protocol") { if (t[i + 1] != want_proto) return 0; i++ }
    else if (t[i] == "-m") { if (t[i + 1] !~ /^(tcp|udp|conntrack|state|multiport)$/) return 0; i++ }
    else if (t[i] ~ /^--(dport|destination-port|dports|destination-ports)$/) { spec = t[i + 1]; i++ }
    else if (t[i] == "--ctstate" || t[i] == "--state") { states = t[i + 1]; if (states !~ /NEW|UNTRACKED/) return 0; i++ }
    else if (t[i] == "--syn") { }
    else if (t[i] == "-j") { if (t[i + 1] != "ACCEPT") return 0; ok = 1; i++ }
    else return 0
  }
  return ok && spec != "" && covers(spec, j)
}
BEGIN { load_ranges() }
/^\*/ { table = substr($0, 2); delete position; next }
/^:/ {
  chain = substr($1, 2)
  if (table == "nat" && chain ~ dynamic) print "nat\t" $0
  if (table == "filter" && (chain == "INPUT" || chain == "OUTPUT")) { policy[chain] = $2; seen[chain] = 1 }
  next
}
/^-A / {
  line = strip_comment($0); chain = $2
  if (table == "nat") { nat_rule(line); next }
  if (table == "raw" && (chain == "PREROUTING" || chain == "OUTPUT")) print "rule\traw\t" line
  if (table != "filter") next
  if (chain == "INPUT" || chain == "OUTPUT") {
    print "rule\tfilter\t" line
    position[chain]++
    target = ""; n = split(line, t, " ")
    for (i = 3; i <= n; i++) if (t[i] == "-j" || t[i] == "-g") target = t[i + 1]
    if (!harmless_target(target)) drops[chain] = 1
    if (target == "ACCEPT" && line ~ /--(ct)?state [^ ]*ESTABLISHED/ && !(chain in established)) established[chain] = position[chain]
    if (target == "ACCEPT" && line ~ /--(ct)?state [^ ]*UNTRACKED/ && line ~ /^-A [A-Z]+ -m (conntrack|state) --(ct)?state [^ ]+ -j ACCEPT$/) broad[chain] = 1
  }
  if (chain == initiating || (chain != "INPUT" && chain != "OUTPUT" && chain != "FORWARD"))
    for (j = 1; j <= nwant; j++) if (opens(line, j)) print "open\t" j
}
END {
  for (c in seen) {
    d = (policy[c] != "ACCEPT" || (c in drops)) ? 1 : 0
    print "chain\t" c "\t" d "\t" ((c in established) ? established[c] : 0) "\t" ((c in broad) ? 1 : 0)
  }
}
'

# Reads `nft -a list ruleset`. Prints tab-separated facts:
#   nat <class> <family> <table> <rule>              a NAT statement that touches our ports
#   dynamic <family> <table>                         a table that container tooling owns
#   chain <family> <table> <chain> <hook> <drops> <established-handle> <broad>
#                                                    filter base chains on input/output (native tables)
#   open <family> <table> <j>                        a rule accepts new connections to port j from anywhere
#   rule <family> <table> <chain> <hook> <prio> <rule>  normalised rules of base chains (presence checks)
# shellcheck disable=SC2016 # an awk program
readonly AWK_NFT='
function priority_value(p,   n, t, base, v) {
  n = split(p, t, " ")
  base = t[1]
  if (base == "raw") v = -300; else if (base == "mangle") v = -150; else if (base == "dstnat") v = -100
  else if (base == "filter") v = 0; else if (base == "security") v = 50; else if (base == "srcnat") v = 100
  else v = base + 0
  if (n == 3 && t[2] == "+") v += t[3]; else if (n == 3 && t[2] == "-") v -= t[3]
  return v
}
function normalise(r) {
  gsub(/ comment "([^"\\]|\\.)*"/, "", r)
  gsub(/counter( packets [0-9]+ bytes [0-9]+)?/, "", r)
  sub(/tcp flags .* ct state/, "ct state", r)
  gsub(/  +/, " ", r); sub(/^ /, "", r); sub(/ $/, "", r)
  return r
}
function nat_rule(r,   n, t, i, proto, found, touch, v, spec) {
  n = split(r, t, " "); proto = ""; found = 0; touch = 0
  if (r ~ /@| map | vmap /) { print "nat\t" class "\t" family "\t" tname "\t" r; return }
  for (i = 1; i <= n; i++) {
    if ((t[i] == "tcp" || t[i] == "udp") && (t[i + 1] == "dport" || t[i + 1] == "sport")) proto = t[i]
    if ((t[i] == "l4proto" || t[i] == "protocol" || t[i] == "nexthdr") && t[i + 1] ~ /^(tcp|udp|6|17)$/) proto = t[i + 1]
    if (t[i] == "dport" || t[i] == "sport") {
      found = 1; spec = t[i + 1]
      if (spec == "!=") { touch = 1; continue }
      if (spec == "{") { spec = ""; for (i = i + 2; i <= n && t[i] != "}"; i++) spec = spec t[i] }
      if (overlaps(spec)) touch = 1
    }
    if (t[i] == "to") { v = nat_port(t[i + 1]); if (v != "") { found = 1; if (overlaps(v)) touch = 1 } }
  }
  if (proto == "6") proto = "tcp"; if (proto == "17") proto = "udp"
  if (proto != "" && proto != want_proto) return
  if (!found || touch) print "nat\t" class "\t" family "\t" tname "\t" r
}
function opens(r, j,   spec) {
  r = normalise(r)
  gsub(/ct state (new|\{ *new *\})/, "", r)
  sub("^meta l4proto (" want_proto "|" want_proto_number ") ", "", r)
  gsub(/  +/, " ", r); sub(/^ /, "", r); sub(/ $/, "", r)
  if (r !~ ("^" want_proto " dport ")) return 0
  spec = r; sub("^" want_proto " dport ", "", spec)
  if (spec !~ / accept$/) return 0
  sub(/ accept$/, "", spec)
  if (spec !~ /^(\{[0-9, -]+\}|[0-9]+(-[0-9]+)?)$/) return 0
  return covers(spec, j)
}
function flush_chain() {
  if (cname != "" && ctype == "filter" && (hook == "input" || hook == "output") && class == "native")
    print "chain\t" family "\t" tname "\t" cname "\t" hook "\t" (cdrops ? 1 : 0) "\t" est "\t" (broad ? 1 : 0)
  cname = ""
}
BEGIN { load_ranges() }
{ handle = ""; if (match($0, / # handle [0-9]+$/)) { handle = substr($0, RSTART + 10); $0 = substr($0, 1, RSTART - 1) } }
/^table / {
  flush_chain(); family = $2; tname = $3; class = "native"
  if (family == "inet" && tname == own_table) class = "ours"
  else if (index(iptables_tables, " " family "/" tname " ")) class = "iptables"
  else if (family ~ /^(arp|bridge|netdev)$/) class = "other"
  lowered = tolower(tname)
  if (class == "native" && lowered ~ dynamic_tables) print "dynamic\t" family "\t" tname
  next
}
/^\tchain / { flush_chain(); cname = $2; ctype = ""; hook = ""; prio = 0; cdrops = 0; est = 0; broad = 0; next }
/^\t\ttype / {
  ctype = $2; hook = $4; p = $0; sub(/.*priority /, "", p); sub(/;.*/, "", p); prio = priority_value(p)
  if ($0 ~ /policy drop/) cdrops = 1
  next
}
/^\t\t[^ \t]/ && cname != "" {
  r = $0; sub(/^\t+/, "", r)
  if (r ~ /^(policy|devices|flags) /) next
  if (class != "ours" && r ~ /(^| )(dnat|snat|masquerade|redirect)( |$)/) nat_rule(r)
  if (class == "native") for (j = 1; j <= nwant; j++) if (opens(r, j)) print "open\t" family "\t" tname "\t" j
  if (ctype == "filter" && hook != "") print "rule\t" family "\t" tname "\t" cname "\t" hook "\t" prio "\t" normalise(r)
  if (ctype == "filter" && (hook == "input" || hook == "output")) {
    if (r ~ /(^| )(drop|reject|jump|goto|queue)( |$)/) cdrops = 1
    if (est == 0 && r ~ /ct state [^ ]*established/ && r ~ /accept$|accept comment/) est = handle
    if (normalise(r) ~ /^ct state ([a-z,]*untracked[a-z,]*|\{[a-z, ]*untracked[a-z, ]*\}) accept$/) broad = 1
  }
}
END { flush_chain() }
'

analyse_iptables() { # save-text
  local initiating=INPUT
  [ "$direction" = outbound ] && initiating=OUTPUT
  printf '%s\n' "$1" | awk -v ranges="$(ranges_arg)" -v want_proto="$protocol" \
    -v want_proto_number="$(if [ "$protocol" = tcp ]; then echo 6; else echo 17; fi)" \
    -v dynamic="$DYNAMIC_CHAINS" -v initiating="$initiating" "$AWK_PORTS$AWK_IPTABLES"
}

analyse_nft() {
  printf '%s\n' "$nft_ruleset" | awk -v ranges="$(ranges_arg)" -v want_proto="$protocol" \
    -v want_proto_number="$(if [ "$protocol" = tcp ]; then echo 6; else echo 17; fi)" \
    -v own_table="$OWN_TABLE" -v dynamic_tables="$DYNAMIC_TABLES" -v iptables_tables="$iptables_nft_table_list" \
    "$AWK_PORTS$AWK_NFT"
}

# ---- planning ---------------------------------------------------------------------------------
# Planned actions, in the order they are applied (accepts first, then the NOTRACK pair).
plan_kind=()  # ipt | nft
plan_where=() # ipt: "<family-index> <table> <chain> <position>"; nft: "<family> <table> <chain> <handle>"
plan_rule=()  # rule words (no word contains a space)
plan_label=() # for the JSON report
plan_role=()  # accept | notrack

comment_words() { printf '%s' "-m comment --comment $COMMENT_PREFIX:$change_id"; }

# The match of port j on the side (dport|sport), iptables spelling.
ipt_match() { printf -- '-p %s -m %s --%s %s' "$protocol" "$protocol" "$1" "${port_specs[$2]}"; }
nft_match() { printf '%s %s %s' "$protocol" "$1" "$(nft_port "${port_specs[$2]}")"; }

# Which packet side names our port, per chain: inbound service = INPUT/PREROUTING dport,
# OUTPUT sport; outbound client = OUTPUT dport, INPUT/PREROUTING sport.
side_for() { # chain-kind (in|out)
  if [ "$direction" = inbound ]; then
    if [ "$1" = in ]; then echo dport; else echo sport; fi
  else
    if [ "$1" = in ]; then echo sport; else echo dport; fi
  fi
}

read_ephemeral_range() {
  local lo hi
  if read -r lo hi 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range && is_uint "$lo" && is_uint "$hi"; then
    ephemeral_lo=$lo ephemeral_hi=$hi
  fi
}

# Reply packets of our own client connections come back to an ephemeral port; for TCP they are
# never a bare SYN. Accepting only those keeps "source port P" from opening every local port.
reply_extra_ipt() {
  local extra="--dport $ephemeral_lo:$ephemeral_hi"
  [ "$protocol" = tcp ] && extra+=' ! --syn'
  printf '%s' "$extra"
}
reply_extra_ipt_saved() {
  local extra="--dport $ephemeral_lo:$ephemeral_hi"
  [ "$protocol" = tcp ] && extra+=' ! --tcp-flags FIN,SYN,RST,ACK SYN'
  printf '%s' "$extra"
}
reply_extra_nft() {
  local extra="$protocol dport $ephemeral_lo-$ephemeral_hi"
  [ "$protocol" = tcp ] && extra+=' tcp flags & (fin|syn|rst|ack) != syn'
  printf '%s' "$extra"
}

add_plan() { # kind where rule label role
  plan_kind+=("$1") plan_where+=("$2") plan_rule+=("$3") plan_label+=("$4") plan_role+=("$5")
}

present() { # label
  rules_present_json+=("$1")
}

rule_json() { # backend family table chain rule
  printf '{"backend":%s,"family":%s,"table":%s,"chain":%s,"rule":%s}' \
    "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" "$(json_str "$4")" "$(json_str "$5")"
}

plan_iptables_family() { # family-index
  local fam=$1 family save analysis line kind a b c d j chain side words saved_form label pos
  family=${families[fam]}
  save=$("$(ipt_save_bin "$fam")" 2>/dev/null) ||
    refuse "$(ipt_save_bin "$fam") failed: cannot judge the change without reading the rules"
  # What rollback restores: the raw and filter tables (the ones this document edits).
  printf '%s\n' "$save" | awk '/^\*/ { keep = ($0 == "*raw" || $0 == "*filter") } keep' \
    >"$change_dir.snapshot/iptables-$family.save"
  analysis=$(analyse_iptables "$save")
  local -a existing=() opened=() chain_lines=()
  while IFS=$'\t' read -r kind a b c d; do
    case $kind in
      nat) nat_conflicts+=("$family nat: $a") ;;
      rule) existing+=("$a $b") ;;
      open) opened[a]=1 ;;
      chain) chain_lines+=("$a $b $c $d") ;;
    esac
  done <<<"$analysis"
  [ "${#nat_conflicts[@]}" -eq 0 ] || return 0

  local initiating=INPUT
  [ "$direction" = outbound ] && initiating=OUTPUT
  local drops est broad
  for line in ${chain_lines[@]+"${chain_lines[@]}"}; do
    read -r chain drops est broad <<<"$line"
    [ "$drops" = 1 ] || continue
    [ "$broad" = 0 ] || continue
    if [ "$chain" = INPUT ]; then side=$(side_for in); else side=$(side_for out); fi
    pos=$est
    [ "$pos" -gt 0 ] || pos=1
    for ((j = 0; j < ${#port_specs[@]}; j++)); do
      words="$(ipt_match "$side" "$j")"
      saved_form="$words"
      if [ "$chain" = INPUT ] && [ "$direction" = outbound ]; then
        words+=" $(reply_extra_ipt)"
        saved_form+=" $(reply_extra_ipt_saved)"
      fi
      words+=" -m conntrack --ctstate UNTRACKED"
      saved_form="-A $chain $saved_form -m conntrack --ctstate UNTRACKED -j ACCEPT"
      label=$(rule_json "$backend" "$family" filter "$chain" "$words -j ACCEPT")
      if listed "filter $saved_form" ${existing[@]+"${existing[@]}"}; then
        present "$label"
        continue
      fi
      if [ "$chain" = "$initiating" ] && [ -z "${opened[j + 1]:-}" ]; then
        refuse "filter $chain ($family) drops packets by default and no rule there accepts new $protocol connections to port ${port_specs[j]} from everywhere: an UNTRACKED accept would open that port wider than the firewall does today (add it by hand if that is intended)"
      fi
      add_plan ipt "$fam filter $chain $pos" "$words $(comment_words) -j ACCEPT" "$label" accept
    done
  done

  # The pair: PREROUTING sees the packets that come in, OUTPUT the ones we send.
  for chain in OUTPUT PREROUTING; do
    if [ "$chain" = PREROUTING ]; then side=$(side_for in); else side=$(side_for out); fi
    for ((j = 0; j < ${#port_specs[@]}; j++)); do
      words=$(ipt_match "$side" "$j")
      label=$(rule_json "$backend" "$family" raw "$chain" "$words -j CT --notrack")
      if listed "raw -A $chain $words -j CT --notrack" ${existing[@]+"${existing[@]}"} ||
        listed "raw -A $chain $words -j NOTRACK" ${existing[@]+"${existing[@]}"}; then
        present "$label"
        continue
      fi
      add_plan ipt "$fam raw $chain 1" "$words $(comment_words) -j CT --notrack" "$label" notrack
    done
  done
}

# Native nftables filter chains (any backend) that would drop our untracked packets.
plan_nft_accepts() {
  local analysis kind a b c d e f g
  local -a chain_lines=() existing=()
  local -A opened=()
  analysis=$(analyse_nft)
  local -a nat_seen_by_iptables=()
  while IFS=$'\t' read -r kind a b c d e f g; do
    case $kind in
      # NAT in iptables-nft tables was judged from iptables-save already; nft's view of the same
      # rules only counts when that found nothing (a table iptables-nft-save cannot print fully).
      nat) if [ "$a" = iptables ]; then nat_seen_by_iptables+=("nftables $b $c: $d"); else nat_conflicts+=("nftables $b $c: $d"); fi ;;
      dynamic) nat_conflicts+=("nftables table $a $b belongs to container or mesh tooling") ;;
      chain) chain_lines+=("$a $b $c $d $e $f $g") ;;
      open) opened["$a $b $c"]=1 ;;
      rule) existing+=("$a $b $c $d $e $f") ;;
    esac
  done <<<"$analysis"
  nft_existing_rules=(${existing[@]+"${existing[@]}"})
  if [ "${#nat_conflicts[@]}" -eq 0 ] && [ "${#nat_seen_by_iptables[@]}" -gt 0 ]; then
    nat_conflicts=("${nat_seen_by_iptables[@]}")
  fi
  [ "${#nat_conflicts[@]}" -eq 0 ] || return 0
  local family table chain hook drops handle broad j side rule expected label initiating_hook=input
  [ "$direction" = outbound ] && initiating_hook=output
  for line in ${chain_lines[@]+"${chain_lines[@]}"}; do
    read -r family table chain hook drops handle broad <<<"$line"
    [ "$drops" = 1 ] || continue
    [ "$broad" = 0 ] || continue
    if [ "$hook" = input ]; then side=$(side_for in); else side=$(side_for out); fi
    for ((j = 0; j < ${#port_specs[@]}; j++)); do
      rule=$(nft_match "$side" "$j")
      expected=$rule
      if [ "$hook" = input ] && [ "$direction" = outbound ]; then
        rule+=" $(reply_extra_nft)"
        expected+=" $protocol dport $ephemeral_lo-$ephemeral_hi"
      fi
      rule+=' ct state untracked accept'
      expected+=' ct state untracked accept'
      label=$(rule_json nftables "$family" "$table" "$chain" "$rule")
      if nft_rule_present "$family" "$table" "$chain" "$hook" "$expected"; then
        present "$label"
        continue
      fi
      if [ "$hook" = "$initiating_hook" ] && [ -z "${opened["$family $table $((j + 1))"]:-}" ]; then
        refuse "nftables chain $family $table $chain drops packets by default and no rule in that table accepts new $protocol connections to port ${port_specs[j]} from everywhere: a ct state untracked accept would open that port wider than the firewall does today (add it by hand if that is intended)"
      fi
      add_plan nft "$family $table $chain $handle" "$rule comment \"$COMMENT_PREFIX:$change_id\"" "$label" accept
      if [ "$table" = firewalld ]; then
        reasons+=("the accept for port ${port_specs[j]} goes into firewalld's own table: firewall-cmd --reload removes it (the NOTRACK pair stays), so add the port to firewalld's configuration as well")
      fi
    done
  done
}
nft_existing_rules=()

# nft_rule_present FAMILY TABLE CHAIN HOOK RULE [MAX-PRIORITY]: "*" matches anything.
nft_rule_present() {
  printf '%s\n' ${nft_existing_rules[@]+"${nft_existing_rules[@]}"} |
    awk -v fam="$1" -v tab="$2" -v ch="$3" -v hook="$4" -v rule="$5" -v maxprio="${6:-}" '
      {
        n = split($0, t, " "); r = ""
        for (i = 6; i <= n; i++) r = r (i > 6 ? " " : "") t[i]
        if ((fam == "*" || t[1] == fam) && (tab == "*" || t[2] == tab) && (ch == "*" || t[3] == ch) &&
            t[4] == hook && (maxprio == "" || t[5] + 0 <= maxprio + 0) && r == rule) found = 1
      }
      END { exit !found }'
}

plan_nft_notrack() {
  local chain hook side j rule label
  for hook in output prerouting; do
    if [ "$hook" = prerouting ]; then side=$(side_for in); else side=$(side_for out); fi
    for ((j = 0; j < ${#port_specs[@]}; j++)); do
      rule="$(nft_match "$side" "$j") notrack"
      label=$(rule_json nftables inet "$OWN_TABLE" "$hook" "$rule")
      # Any chain on the same hook at raw priority or earlier that already does it counts.
      if nft_rule_present '*' '*' '*' "$hook" "$rule" -300; then
        present "$label"
        continue
      fi
      add_plan nft "inet $OWN_TABLE $hook 0" "$rule comment \"$COMMENT_PREFIX:$change_id\"" "$label" notrack
    done
  done
}

# ---- change record ----------------------------------------------------------------------------
open_change() {
  change_dir=$STATE_DIR/changes/$change_id
  local wanted
  wanted=$(printf 'Ports=%s\nProtocol=%s\nDirection=%s' "$ports_param" "$protocol" "$direction")
  if rerun_of_change "$wanted"; then
    fresh_change=false
  else
    fresh_change=true
  fi
  rm -rf "$change_dir.snapshot"
  mkdir -p "$change_dir.snapshot"
  change_params=$wanted
}
fresh_change=false
change_params=''

# Called once the plan is known and nothing refused: keeps the first snapshot of a change.
commit_change() {
  if [ "$fresh_change" = true ]; then
    local tmp=$change_dir.tmp.$$
    mkdir -p "$tmp"
    printf '%s\n' "$DOCUMENT" >"$tmp/document"
    printf '%s\n' "$change_params" >"$tmp/params"
    printf '%s\n' "$own_netns" >"$tmp/netns"
    printf '%s\n' "$backend" >"$tmp/backend"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$tmp/created"
    mv "$change_dir.snapshot" "$tmp/ruleset.before"
    : >"$tmp/rules"
    mv "$tmp" "$change_dir"
  else
    rm -rf "$change_dir.snapshot"
  fi
  local f
  for f in "$change_dir"/ruleset.before/*; do
    [ -f "$f" ] && saved_json+=("$(json_str "$f")")
  done
  return 0
}

# ---- applying ---------------------------------------------------------------------------------
nft_table_exists() { nft list table "$1" "$2" >/dev/null 2>&1; }

ensure_own_nft_table() {
  if nft_table_exists inet "$OWN_TABLE"; then return 0; fi
  nft -f - <<NFT || fail "creating table inet $OWN_TABLE failed"
table inet $OWN_TABLE {
  chain prerouting { type filter hook prerouting priority -300; policy accept; }
  chain output { type filter hook output priority -300; policy accept; }
}
NFT
  printf 'created-table nft inet %s\n' "$OWN_TABLE" >>"$change_dir/rules"
  changes+=("created table inet $OWN_TABLE (chains prerouting and output at priority raw)")
}

apply_plan() {
  local i fam table chain pos family handle bin nft_family
  local -a words
  for ((i = 0; i < ${#plan_kind[@]}; i++)); do
    read -r -a words <<<"${plan_rule[i]}"
    if [ "${plan_kind[i]}" = ipt ]; then
      read -r fam table chain pos <<<"${plan_where[i]}"
      bin=$(ipt_bin "$fam")
      nft_family=ip
      [ "$fam" = 1 ] && nft_family=ip6
      # iptables-nft creates the table on first use; remember it so rollback can remove it.
      if [ "$backend" = iptables-nft ] && [ "$have_nft" = true ] && ! nft_table_exists "$nft_family" "$table" &&
        ! grep -qx "created-table ipt-nft $nft_family $table" "$change_dir/rules"; then
        printf 'created-table ipt-nft %s %s\n' "$nft_family" "$table" >>"$change_dir/rules"
      fi
      "$bin" -w -t "$table" -I "$chain" "$pos" "${words[@]}" ||
        fail "$bin -t $table -I $chain $pos ${plan_rule[i]} failed"
      printf 'ipt %s %s %s %s\n' "$bin" "$table" "$chain" "${plan_rule[i]}" >>"$change_dir/rules"
    else
      read -r family table chain handle <<<"${plan_where[i]}"
      if [ "$table" = "$OWN_TABLE" ]; then ensure_own_nft_table; fi
      if [ "$table" = "$OWN_TABLE" ]; then
        nft add rule "$family" "$table" "$chain" "${words[@]}" ||
          fail "nft add rule $family $table $chain ${plan_rule[i]} failed"
      elif [ "$handle" != 0 ]; then
        nft insert rule "$family" "$table" "$chain" position "$handle" "${words[@]}" ||
          fail "nft insert rule $family $table $chain position $handle ${plan_rule[i]} failed"
      else
        nft insert rule "$family" "$table" "$chain" "${words[@]}" ||
          fail "nft insert rule $family $table $chain ${plan_rule[i]} failed"
      fi
      printf 'nft %s %s %s %s\n' "$family" "$table" "$chain" "${plan_rule[i]}" >>"$change_dir/rules"
    fi
    rules_added_json+=("${plan_label[i]}")
    if [ "${plan_kind[i]}" = ipt ]; then
      changes+=("added $(ipt_bin "$fam") -t $table -I $chain $pos ${plan_rule[i]}")
    else
      changes+=("added to nftables $family $table $chain: ${plan_rule[i]}")
    fi
  done
}

# ---- persistence ------------------------------------------------------------------------------
# Not iptables-save into /etc/sysconfig/iptables or /etc/iptables/rules.v4, and not nftables.conf:
# those freeze (or flush) every other tool's dynamic rules. A small oneshot unit runs a copy of this
# script at boot with the same parameters instead, so the same pre-flight checks run again and only
# our own rules are re-added.
persist_unit() {
  [ "$persist" = true ] || return 0
  local self=${BASH_SOURCE[0]}
  local script=/usr/local/libexec/conntrack-responder/notrack-ports-$change_id.sh
  local unit_name=conntrack-responder-notrack-$change_id.service
  local unit=/etc/systemd/system/$unit_name
  local wants=/etc/systemd/system/multi-user.target.wants/$unit_name
  local wrote=false content
  if persist_file "$ROOT$script" 755 "$(cat "$self")"; then wrote=true; fi
  persisted_json+=("$(json_str "$ROOT$script")")
  content="# Written by conntrack-responder (notrack-ports, change $change_id). Undo with the rollback document.
[Unit]
Description=conntrack-responder: NOTRACK $protocol ports $ports_param ($direction), change $change_id
After=network-pre.target iptables.service ip6tables.service netfilter-persistent.service nftables.service firewalld.service ufw.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=SSM_ChangeId=$change_id SSM_Ports=$ports_param SSM_Protocol=$protocol SSM_Direction=$direction SSM_Persist=false
Environment=CONNTRACK_RESPONDER_STATE_DIR=$STATE_DIR
ExecStart=/bin/bash $script

[Install]
WantedBy=multi-user.target"
  if persist_file "$ROOT$unit" 644 "$content"; then wrote=true; fi
  persisted_json+=("$(json_str "$ROOT$unit")")
  if persist_link "$ROOT$wants" "$unit"; then wrote=true; fi
  persisted_json+=("$(json_str "$ROOT$wants")")
  if [ "$wrote" = true ]; then
    changes+=("persisted as $unit_name (re-applies only these rules at boot)")
    if [ -z "$ROOT" ] && command -v systemctl >/dev/null 2>&1; then
      systemctl daemon-reload >/dev/null 2>&1 || reasons+=("systemctl daemon-reload failed: run it before the next boot")
    fi
  fi
}

main() {
  validate_parameters
  if [ "$persist" = true ] && [ ! -r "${BASH_SOURCE[0]}" ]; then
    refuse "Persist=true needs the script as a readable file (${BASH_SOURCE[0]}) to install it for boot"
  fi
  own_netns=$(readlink /proc/self/ns/net)
  lock_state_dir || fail "could not lock $STATE_DIR"
  detect_backend
  read_ephemeral_range
  open_change

  local fam
  if [ "$backend" != nftables ]; then
    for ((fam = 0; fam < ${#families[@]}; fam++)); do plan_iptables_family "$fam"; done
  fi
  if [ "$have_nft" = true ]; then
    printf '%s\n' "$nft_ruleset" >"$change_dir.snapshot/nftables.ruleset"
    plan_nft_accepts
  fi
  if [ "${#nat_conflicts[@]}" -gt 0 ]; then
    refuse "NAT rules (or container tooling that rewrites them) may touch $protocol ports $ports_param: untracked packets are never NATed, so NOTRACK would break those flows"
  fi
  if [ "$backend" = nftables ]; then plan_nft_notrack; fi

  commit_change
  apply_plan
  persist_unit
  if [ "${#changes[@]}" -gt 0 ]; then finish applied 0; fi
  finish unchanged 0
}

main
