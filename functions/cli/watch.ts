import { parseArgs } from 'node:util';
import { watchOnce } from '../local/twin/watch-respond.js';
import { type Command, UsageError } from './io.js';
import { RESPOND_OPTIONS, reportResult, respondFlags, respondOptionsFrom } from './respond.js';

const HELP = `usage: conntrack-responder watch --netns NAME [respond options]

Follows the kernel log (dmesg --follow-new) and, when the kernel drops packets of that namespace
("nf_conntrack: table full in netns <inode>, dropping packet"), runs 'respond' on it with the drop
lines as the incident's trigger. Handles one incident, then exits with respond's exit code.

options: the same as 'conntrack-responder respond --help' (--mode, --out, --approve, --reject,
--soak, --policy, --quiet).
`;

export const watchCommand: Command = async (args, io) => {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof RESPOND_OPTIONS }>>;
  try {
    parsed = parseArgs({ args, options: RESPOND_OPTIONS });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const flags = respondFlags(parsed.values);
  const watcher = watchOnce(respondOptionsFrom(flags, io));
  const stop = () => watcher.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await watcher.ready;
    io.stdout.write(
      `watch: following the kernel log for drops in namespace ${flags.netns} (Ctrl-C to stop)\n`,
    );
    const { result } = await watcher.incident;
    return reportResult(result, io);
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    watcher.stop();
  }
};
