import { watchOnce } from '../local/twin/watch-respond.js';
import type { Command } from './io.js';
import { reportResult, respondFlagsFromArgs, respondOptionsFrom } from './respond.js';

const HELP = `usage: conntrack-responder watch --netns NAME [respond options]

Follows the kernel log (dmesg --follow-new) and, when the kernel drops packets of that namespace
("nf_conntrack: table full in netns <inode>, dropping packet"), runs 'respond' on it with the drop
lines as the incident's trigger. Handles one incident, then exits with respond's exit code.

options: the same as 'conntrack-responder respond --help' (--mode, --out, --approve, --reject,
--soak, --policy, --signing-key, --quiet).
`;

export const watchCommand: Command = async (args, io) => {
  const flags = respondFlagsFromArgs(args, io, HELP);
  if (flags === null) return 0;
  const watcher = watchOnce({ ...respondOptionsFrom(flags, io), evidenceSigner: flags.signer });
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
