import { watchOnce } from '../local/twin/watch-respond.js';
import { type Command, UsageError } from './io.js';
import { reportResult, respondFlagsFromArgs, respondOptionsFrom } from './respond.js';

const HELP = `usage: conntrack-responder watch --netns NAME [--sample-interval SECONDS] [--no-forecast] [respond options]

Watches one namespace the way the detect function watches an instance, and runs 'respond' on the
first incident, then exits with respond's exit code:
  - table-full: the kernel drops its packets ("nf_conntrack: table full in netns <inode>, dropping
    packet" in dmesg --follow-new); the drop lines are the incident's trigger;
  - near-full, before any drop: the host-sampler document's script samples the namespace's count,
    limit and counters, and the detect function's forecast predicts it full within the horizon
    (30 min) or sees it at 90 % (docs/forecast.md); the samples and the forecast are the trigger,
    and the workflow confirms the growth on the namespace before changing anything.

options:
  --sample-interval SECONDS  seconds between samples (default 1; the sampler runs every 60 s on AWS)
  --no-forecast              follow the kernel log only (no sampler, no near-full incident)
  and the same as 'conntrack-responder respond --help' (--mode, --out, --approve, --reject,
  --soak, --policy, --signing-key, --quiet).
`;

/** Takes watch's own flags out of the arguments; the rest are respond's. */
function watchFlags(args: readonly string[]): {
  readonly rest: string[];
  readonly intervalSeconds: number;
  readonly forecast: boolean;
} {
  const rest: string[] = [];
  let intervalSeconds = 1;
  let forecast = true;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--no-forecast') {
      forecast = false;
      continue;
    }
    const inline = arg.startsWith('--sample-interval=') ? arg.slice('--sample-interval='.length) : null;
    if (arg !== '--sample-interval' && inline === null) {
      rest.push(arg);
      continue;
    }
    const text = inline ?? args[++index];
    const value = Number(text);
    if (text === undefined || !/^[0-9]{1,4}(\.[0-9]{1,3})?$/.test(text) || value < 0.1 || value > 3600) {
      throw new UsageError(`--sample-interval must be seconds from 0.1 to 3600, got '${text ?? ''}'`);
    }
    intervalSeconds = value;
  }
  return { rest, intervalSeconds, forecast };
}

export const watchCommand: Command = async (args, io) => {
  const own = watchFlags(args);
  const flags = respondFlagsFromArgs(own.rest, io, HELP);
  if (flags === null) return 0;
  const watcher = watchOnce({
    ...respondOptionsFrom(flags, io),
    evidenceSigner: flags.signer,
    forecast: own.forecast ? { intervalSeconds: own.intervalSeconds } : false,
  });
  const stop = () => watcher.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await watcher.ready;
    io.stdout.write(
      own.forecast
        ? `watch: following the kernel log for drops in namespace ${flags.netns} and sampling its table every ${own.intervalSeconds} s (Ctrl-C to stop)\n`
        : `watch: following the kernel log for drops in namespace ${flags.netns} (Ctrl-C to stop)\n`,
    );
    const { result } = await watcher.incident;
    return reportResult(result, io);
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    watcher.stop();
  }
};
