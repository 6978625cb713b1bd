#!/usr/bin/env bash
# ship-kernel-log: points the CloudWatch agent at this host's kernel messages from exactly one
# source, so that no kernel line is sent twice (Debian 11 writes kernel lines to both kern.log and
# messages, Amazon Linux 2 to both messages and the journal):
#   kern-log  /var/log/kern.log, when a syslog daemon runs and the file exists (Debian, Ubuntu)
#   messages  /var/log/messages, when a syslog daemon runs and the file exists (Amazon Linux 2, RHEL)
#   journald  the journal's kernel transport, when systemd-journald runs (Amazon Linux 2023)
# It appends that source's configuration from Parameter Store to the agent's own
# (amazon-cloudwatch-agent-ctl -a append-config, as AmazonCloudWatch-ManageAgent's "configure
# (append)" does), removes the other two if an earlier run appended them, and restarts the agent
# only when a configuration changed or it is not running.
#
# Parameters (environment, from the SSM document): SSM_KernLogConfiguration,
# SSM_MessagesConfiguration, SSM_JournaldConfiguration, SSM_AgentWaitSeconds. Not parameters (lab
# and tests only): CONNTRACK_RESPONDER_ROOT (prefix of every file path), CONNTRACK_RESPONDER_PROC
# (replaces /proc, where running daemons are found).
# Prints one JSON object on stdout. Exit 0: configured ("changed") or already so ("unchanged");
# 3: refused (no source, or an agent too old for it; nothing changed); 1: failed.
# shellcheck disable=SC2317 # lib/common.sh defines helpers that not every script calls
set -euo pipefail
set -o errtrace
readonly DOCUMENT=ship-kernel-log

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"  # conntrack-responder:include lib/common.sh

readonly PROC=${CONNTRACK_RESPONDER_PROC:-/proc}
readonly AGENT_DIR=$ROOT/opt/aws/amazon-cloudwatch-agent
readonly AGENT_CTL=$AGENT_DIR/bin/amazon-cloudwatch-agent-ctl
readonly AGENT_VERSION_FILE=$AGENT_DIR/bin/CWAGENT_VERSION
# Where append-config keeps each configuration, as ssm_<parameter name> ('/', ':' and ' ' become
# '_'; the names this document accepts have none): config-downloader in the agent's source.
readonly AGENT_CONFIG_DIR=$AGENT_DIR/etc/amazon-cloudwatch-agent.d
readonly SOURCES=(kern-log messages journald)
# The oldest agent per source (agent RELEASE_NOTES): log filters came with 1.247350.0, the
# journald collector with 1.300070.0; the kern.log configuration needs neither.
declare -A MIN_AGENT=([kern-log]=0.0.0 [messages]=1.247350.0 [journald]=1.300070.0)
declare -A FILE_OF=([kern-log]=/var/log/kern.log [messages]=/var/log/messages)

declare -A parameter=(
  [kern-log]=${SSM_KernLogConfiguration:-}
  [messages]=${SSM_MessagesConfiguration:-}
  [journald]=${SSM_JournaldConfiguration:-}
)
wait_seconds=${SSM_AgentWaitSeconds:-300}

source_name=''
agent_version=''
removed=()
restarted=false
changed=false

finish() {
  local status=$1 code=$2
  printf '{"document":"%s","status":"%s","reasons":%s,"source":%s,"configuration":%s,' \
    "$DOCUMENT" "$status" "$(json_array ${reasons[@]+"${reasons[@]}"})" \
    "$(if [ -n "$source_name" ]; then json_str "$source_name"; else printf null; fi)" \
    "$(if [ -n "$source_name" ]; then json_str "${parameter[$source_name]}"; else printf null; fi)"
  printf '"agentVersion":%s,"removed":%s,"restarted":%s}\n' \
    "$(if [ -n "$agent_version" ]; then json_str "$agent_version"; else printf null; fi)" \
    "$(json_array ${removed[@]+"${removed[@]}"})" "$restarted"
  exit "$code"
}

# refuse/fail/on_error (lib/common.sh) end through finish, so the trap is set only now.
trap 'on_error "$LINENO" "$?"' ERR

validate_parameters() {
  local source
  for source in "${SOURCES[@]}"; do
    [[ ${parameter[$source]} =~ ^AmazonCloudWatch-[A-Za-z0-9_.-]{1,200}$ ]] ||
      refuse "the $source configuration name '${parameter[$source]}' is invalid: expected AmazonCloudWatch- and 1-200 letters, digits, _ . -"
  done
  if ! [[ $wait_seconds =~ ^(0|[1-9][0-9]{0,2})$ ]] || [ "$wait_seconds" -gt 600 ]; then
    refuse "AgentWaitSeconds '$wait_seconds' is invalid: expected a whole number from 0 to 600"
  fi
}

# True when a process with one of the given names (the kernel's 15-character comm) runs.
running() {
  local comm_file comm name
  for comm_file in "$PROC"/[0-9]*/comm; do
    IFS= read -r comm 2>/dev/null <"$comm_file" || continue
    for name in "$@"; do
      [ "$comm" != "$name" ] || return 0
    done
  done
  return 1
}

choose_source() {
  local syslog=false
  # rsyslog (most distributions), syslog-ng, and sysklogd/busybox syslogd.
  if running rsyslogd syslog-ng syslogd; then syslog=true; fi
  if $syslog && [ -f "$ROOT/var/log/kern.log" ]; then
    source_name=kern-log
  elif $syslog && [ -f "$ROOT/var/log/messages" ]; then
    source_name=messages
  elif running systemd-journal; then
    source_name=journald
  elif $syslog; then
    refuse "a syslog daemon runs but writes neither /var/log/kern.log nor /var/log/messages, and systemd-journald does not run: configure the daemon to write kern.* to /var/log/kern.log"
  else
    refuse "no syslog daemon writing /var/log/kern.log or /var/log/messages and no systemd-journald: nothing to read kernel messages from"
  fi
  if [ "$source_name" != journald ]; then
    log "kernel messages come from ${FILE_OF[$source_name]}"
  else
    log "kernel messages come from the journal (no syslog daemon writes kern.log or messages)"
  fi
}

# Version a >= version b, comparing the first three numeric fields (1.300070.0b1234 -> 1 300070 0).
version_at_least() {
  local -a a b
  local i
  IFS=. read -r -a a <<<"${1%%[!0-9.]*}"
  IFS=. read -r -a b <<<"$2"
  for i in 0 1 2; do
    if ((10#${a[i]:-0} != 10#${b[i]:-0})); then
      ((10#${a[i]:-0} > 10#${b[i]:-0}))
      return
    fi
  done
  return 0
}

wait_for_agent() {
  local waited=0
  while [ ! -x "$AGENT_CTL" ]; do
    if [ "$waited" -ge "$wait_seconds" ]; then
      fail "the CloudWatch agent is not installed ($AGENT_CTL is missing after ${waited} s): the install association (AWS-ConfigureAWSPackage, AmazonCloudWatchAgent) installs it, or install amazon-cloudwatch-agent yourself"
    fi
    sleep 5
    waited=$((waited + 5))
  done
  IFS= read -r agent_version 2>/dev/null <"$AGENT_VERSION_FILE" || agent_version=''
  [[ $agent_version =~ ^[0-9]+(\.[0-9]+){1,3}[A-Za-z0-9.+-]{0,40}$ ]] ||
    fail "cannot read the agent's version from $AGENT_VERSION_FILE"
  version_at_least "$agent_version" "${MIN_AGENT[$source_name]}" ||
    refuse "CloudWatch agent $agent_version cannot ship $source_name (needs ${MIN_AGENT[$source_name]} or newer): update the AmazonCloudWatchAgent package$(if [ "$source_name" = journald ]; then printf ', or install rsyslog'; fi)"
}

# The agent's copy of a configuration this document appended ('' when there is none).
appended_digest() {
  local file=$AGENT_CONFIG_DIR/ssm_$1
  if [ -f "$file" ]; then cksum <"$file"; fi
}

ctl() { "$AGENT_CTL" "$@" >&2; }

configure() {
  local other before after
  for other in "${SOURCES[@]}"; do
    [ "$other" != "$source_name" ] || continue
    if [ -f "$AGENT_CONFIG_DIR/ssm_${parameter[$other]}" ]; then
      log "removing the $other configuration ${parameter[$other]}"
      ctl -a remove-config -m ec2 -c "ssm:${parameter[$other]}" ||
        fail "the agent could not remove the $other configuration ${parameter[$other]}"
      removed+=("${parameter[$other]}")
      changed=true
    fi
  done
  before=$(appended_digest "${parameter[$source_name]}")
  log "appending ${parameter[$source_name]}"
  ctl -a append-config -m ec2 -c "ssm:${parameter[$source_name]}" ||
    fail "the agent refused the $source_name configuration ${parameter[$source_name]} (see stderr: a missing parameter, no ssm:GetParameter on it, or a configuration it rejects)"
  after=$(appended_digest "${parameter[$source_name]}")
  [ -n "$after" ] || fail "the agent reported success but kept no copy of ${parameter[$source_name]} in $AGENT_CONFIG_DIR"
  [ "$before" = "$after" ] || changed=true
  local status
  status=$("$AGENT_CTL" -a status 2>/dev/null || true)
  if $changed || ! [[ $status =~ \"status\":[[:space:]]*\"running\" ]]; then
    log "restarting the agent"
    ctl -a stop || fail "the agent did not stop"
    ctl -a start -m ec2 || fail "the agent did not start"
    restarted=true
  fi
}

validate_parameters
choose_source
wait_for_agent
configure
if $changed || $restarted; then finish changed 0; else finish unchanged 0; fi
