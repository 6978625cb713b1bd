import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A stand-in for the CloudWatch agent's control script under a test root
 * (`<root>/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl`): the agent cannot be
 * installed here (no package registry carries it), so this plays the documented behaviour of the
 * real one (packaging/dependencies/amazon-cloudwatch-agent-ctl and cmd/config-downloader in
 * aws/amazon-cloudwatch-agent) that ship-kernel-log.sh relies on: `append-config -c ssm:NAME`
 * copies the parameter into `etc/amazon-cloudwatch-agent.d/ssm_NAME` or fails when it does not
 * exist; `remove-config` deletes that file and fails when it is missing; `status` prints the JSON
 * with `"status": "running"|"stopped"`; `stop`/`start` switch it. Every call is appended to
 * `ctl.log`; the "Parameter Store" is the folder `parameter-store/` beside `bin/`.
 */
const FAKE_CTL = `#!/usr/bin/env bash
set -euo pipefail
agent=$(cd "$(dirname "$0")/.." && pwd)
printf '%s\\n' "$*" >>"$agent/ctl.log"
action='' location=''
while getopts ':a:c:m:s' option; do
  case $option in a) action=$OPTARG ;; c) location=$OPTARG ;; *) ;; esac
done
configs=$agent/etc/amazon-cloudwatch-agent.d
mkdir -p "$configs"
case $action in
  append-config)
    name=\${location#ssm:}
    [ -f "$agent/parameter-store/$name" ] || { echo "ParameterNotFound: $name" >&2; echo 'Fail to fetch the config!' >&2; exit 1; }
    cp "$agent/parameter-store/$name" "$configs/ssm_$name" ;;
  remove-config)
    rm "$configs/ssm_\${location#ssm:}" ;;
  status)
    printf '{\\n  "status": "%s",\\n  "configstatus": "configured"\\n}\\n' "$(cat "$agent/state" 2>/dev/null || echo stopped)" ;;
  stop) echo stopped >"$agent/state" ;;
  start) echo running >"$agent/state" ;;
  *) echo "Invalid action: $action" >&2; exit 1 ;;
esac
`;

export interface FakeAgent {
  readonly directory: string;
  /** The ctl calls so far, one argument string each. */
  calls(): Promise<string[]>;
  /** The configurations the agent holds, by parameter name, as their text. */
  appended(): Promise<Record<string, string>>;
}

/** Installs the stand-in agent (version `version`) under `root` with `parameters` in its store. */
export async function installFakeAgent(
  root: string,
  version: string,
  parameters: Readonly<Record<string, string>>,
): Promise<FakeAgent> {
  const directory = join(root, 'opt/aws/amazon-cloudwatch-agent');
  await mkdir(join(directory, 'bin'), { recursive: true });
  await mkdir(join(directory, 'parameter-store'), { recursive: true });
  const ctl = join(directory, 'bin/amazon-cloudwatch-agent-ctl');
  await writeFile(ctl, FAKE_CTL);
  await chmod(ctl, 0o755);
  await writeFile(join(directory, 'bin/CWAGENT_VERSION'), `${version}\n`);
  for (const [name, value] of Object.entries(parameters)) {
    await writeFile(join(directory, 'parameter-store', name), value);
  }
  return {
    directory,
    async calls() {
      const text = await readFile(join(directory, 'ctl.log'), 'utf8').catch(() => '');
      return text.split('\n').filter((line) => line !== '');
    },
    async appended() {
      const { readdir } = await import('node:fs/promises');
      const folder = join(directory, 'etc/amazon-cloudwatch-agent.d');
      const files = await readdir(folder).catch(() => [] as string[]);
      const result: Record<string, string> = {};
      for (const file of files.sort())
        result[file.replace(/^ssm_/, '')] = await readFile(join(folder, file), 'utf8');
      return result;
    },
  };
}
