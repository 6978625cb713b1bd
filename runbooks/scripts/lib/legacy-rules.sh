# shellcheck shell=bash
# ---- legacy-rules: when iptables-legacy counts as a backend in use -------------------------------
# Shared by collect-diagnostics.sh (firewall.backend) and notrack-ports.sh (which backend to write
# to, and the mixed-host refusal), so that the report the planner reads and the document it runs
# judge a host the same way. Building a document splices this text in place of the include line.
#
# A legacy table stays registered in a namespace once anything used it (even `iptables-legacy -L`,
# or loading the module), and nothing short of unloading the module removes it; holding no rule,
# no user chain and only ACCEPT policies, it filters nothing, so such a host is not "mixed".
# Legacy tables that hold rules next to nf_tables ones are: the two rule sets are evaluated one
# after the other, each listing hides the other, and NOTRACK rules added to one may not apply as
# expected. Tables that are registered but could not be read count as holding rules.

# legacy_save_holds_rules [FILE]: iptables-legacy-save (or ip6tables-legacy-save) output of one
# family whose tables are registered, from FILE or stdin. Succeeds when it holds a rule, a user
# chain or a built-in chain whose policy is not ACCEPT, and when it is empty or FILE is missing
# (not read). awk reads all its input, so a writer piping into it is never cut off (SIGPIPE).
# shellcheck disable=SC2120 # FILE is optional: notrack-ports passes the save on stdin
legacy_save_holds_rules() {
  if [ "$#" -gt 0 ] && [ ! -s "$1" ]; then return 0; fi
  # shellcheck disable=SC2016 # an awk program
  awk 'NF { seen = 1 } /^-A / || (/^:/ && $2 != "ACCEPT") { found = 1 } END { exit !(found || !seen) }' "$@"
}
# ---- legacy-rules: end ---------------------------------------------------------------------------
