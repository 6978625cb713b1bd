import { type ChildProcess, spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { execInNetns, type LabHosts, NAMESPACE_PREFIX } from './netns.js';

/**
 * Lab traffic: small Node programs run inside lab namespaces (`ip netns exec <ns> node <file>`)
 * that serve and churn TCP connections, so the instance namespace's conntrack table fills the way
 * it does in seed 003 (short connections, entries left in TIME_WAIT for 120 s). Every count and
 * duration is bounded, and only namespaces this project created (`ctr-*`) are used.
 */

const SERVICE_PROGRAM = fileURLToPath(new URL('./programs/tcp-service.mjs', import.meta.url));
const CHURN_PROGRAM = fileURLToPath(new URL('./programs/tcp-churn.mjs', import.meta.url));
const RAMP_PROGRAM = fileURLToPath(new URL('./programs/tcp-ramp.mjs', import.meta.url));
const HOLD_PROGRAM = fileURLToPath(new URL('./programs/tcp-hold.mjs', import.meta.url));

const MAX_CONNECTIONS_PER_CALL = 100_000;
const MAX_CONCURRENCY = 1024;
const MAX_TIMEOUT_MS = 60_000;

function assertLabTarget(namespace: string, address: string, port: number): void {
  if (!namespace.startsWith(NAMESPACE_PREFIX)) {
    throw new Error(`refusing to run lab traffic in '${namespace}': only '${NAMESPACE_PREFIX}*' namespaces`);
  }
  if (isIP(address) === 0) throw new Error(`invalid address '${address}': expected an IPv4 or IPv6 literal`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`invalid port ${String(port)}: expected an integer from 1 to 65535`);
  }
}

function assertBounded(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`invalid ${name} ${String(value)}: expected an integer from ${min} to ${max}`);
  }
}

/** A running TCP service; `stop()` ends it and resolves once the process is gone. */
export interface TcpService {
  readonly namespace: string;
  readonly address: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface TcpServiceOptions {
  /** `close` (default) accepts and closes; `line` answers "ok\n" first; `hold` keeps it open until the client closes. */
  readonly mode?: 'close' | 'line' | 'hold';
  /** How long to wait for the service to bind (default 10 s). */
  readonly startTimeoutMs?: number;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts a TCP service on `address:port` inside `namespace` and resolves once it listens. */
export async function startTcpService(
  namespace: string,
  address: string,
  port: number,
  options: TcpServiceOptions = {},
): Promise<TcpService> {
  assertLabTarget(namespace, address, port);
  const mode = options.mode ?? 'close';
  // `ip netns exec` execs the program, so the child's pid is the service's own.
  const child = spawn(
    'ip',
    ['netns', 'exec', namespace, process.execPath, SERVICE_PROGRAM, address, String(port), mode],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stop = async () => {
    const exited = waitForExit(child);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  };
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (reason: string) => {
      clearTimeout(timer);
      void stop();
      reject(new Error(`TCP service ${address}:${port} in ${namespace} did not start: ${reason}`));
    };
    const timer = setTimeout(
      () => fail('timed out waiting for it to listen'),
      options.startTimeoutMs ?? 10_000,
    );
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code) => fail(`exited ${String(code)}: ${stderr.trim()}`));
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve();
    });
  });
  if (child.pid === undefined) throw new Error(`TCP service in ${namespace} has no pid`);
  return { namespace, address, port, pid: child.pid, stop };
}

export interface ChurnOptions {
  /** Connections to open and close (at most 100,000 per call). */
  readonly count: number;
  /** Connections in flight at once (default 32, at most 1024). */
  readonly concurrency?: number;
  /** Per connection: connect, FIN, peer's close (default 1000 ms, at most 60 s). */
  readonly timeoutMs?: number;
}

export interface ChurnResult {
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Failures by error code (`ETIMEDOUT` is a SYN the peer's full table dropped). */
  readonly errors: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
}

/** Opens and closes `count` short TCP connections from `clientNs` to `address:port`. */
export async function churnConnections(
  clientNs: string,
  address: string,
  port: number,
  options: ChurnOptions,
): Promise<ChurnResult> {
  assertLabTarget(clientNs, address, port);
  const concurrency = options.concurrency ?? 32;
  const timeoutMs = options.timeoutMs ?? 1000;
  assertBounded('count', options.count, 0, MAX_CONNECTIONS_PER_CALL);
  assertBounded('concurrency', concurrency, 1, MAX_CONCURRENCY);
  assertBounded('timeoutMs', timeoutMs, 10, MAX_TIMEOUT_MS);
  // Worst case every connection times out in sequence per worker; add slack for process start.
  const bound = Math.ceil(options.count / concurrency) * timeoutMs + 15_000;
  const { stdout } = await execInNetns(
    clientNs,
    process.execPath,
    [CHURN_PROGRAM, address, String(port), String(options.count), String(concurrency), String(timeoutMs)],
    { timeoutMs: bound },
  );
  return JSON.parse(stdout) as ChurnResult;
}

export interface RampOptions {
  /** Connections to open in all (at most 100,000 per call). */
  readonly count: number;
  /** New connections a second, started on schedule whatever the others do (1 to 5,000). */
  readonly perSecond: number;
  /** Per connection: connect, FIN, peer's close (default 1000 ms: a dropped SYN fails it). */
  readonly timeoutMs?: number;
}

export interface RampResult extends ChurnResult {
  /** How far behind its schedule the latest connection started (the generator kept the pace if small). */
  readonly lateMs: number;
  /** Wall-clock time of the first connection, milliseconds since the epoch. */
  readonly startedAtMs: number;
}

/**
 * A gradual fill: `count` short TCP connections from `clientNs` to `address:port` at a steady
 * rate, so the instance's table (TIME_WAIT entries live 120 s) grows by `perSecond` entries a
 * second. Resolves when every connection has ended.
 */
export async function rampConnections(
  clientNs: string,
  address: string,
  port: number,
  options: RampOptions,
): Promise<RampResult> {
  assertLabTarget(clientNs, address, port);
  const timeoutMs = options.timeoutMs ?? 1000;
  assertBounded('count', options.count, 0, MAX_CONNECTIONS_PER_CALL);
  assertBounded('perSecond', options.perSecond, 1, 5000);
  assertBounded('timeoutMs', timeoutMs, 10, MAX_TIMEOUT_MS);
  const bound = Math.ceil((options.count / options.perSecond) * 1000) + timeoutMs + 15_000;
  const { stdout } = await execInNetns(
    clientNs,
    process.execPath,
    [
      RAMP_PROGRAM,
      address,
      String(port),
      String(options.count),
      String(options.perSecond),
      String(timeoutMs),
    ],
    { timeoutMs: bound },
  );
  return JSON.parse(stdout) as RampResult;
}

/** "Do `count` new connections succeed right now?" (default 5 connections, 1 s each, in parallel). */
export function probeConnections(
  clientNs: string,
  address: string,
  port: number,
  options: { count?: number; timeoutMs?: number } = {},
): Promise<ChurnResult> {
  const count = options.count ?? 5;
  return churnConnections(clientNs, address, port, {
    count,
    concurrency: Math.max(1, Math.min(count, MAX_CONCURRENCY)),
    timeoutMs: options.timeoutMs ?? 1000,
  });
}

async function readNumberIn(namespace: string, path: string): Promise<number> {
  const { stdout } = await execInNetns(namespace, 'cat', [path]);
  const value = Number.parseInt(stdout.trim(), 10);
  if (!Number.isInteger(value)) throw new Error(`unexpected content in ${path} of ${namespace}: '${stdout}'`);
  return value;
}

/** The namespace's own number of conntrack entries. */
export function conntrackCount(namespace: string): Promise<number> {
  return readNumberIn(namespace, '/proc/sys/net/netfilter/nf_conntrack_count');
}

/** nf_conntrack_max as the namespace sees it (the global value). */
export function conntrackMax(namespace: string): Promise<number> {
  return readNumberIn(namespace, '/proc/sys/net/netfilter/nf_conntrack_max');
}

/**
 * Packets the namespace's conntrack dropped because its table was full (`drop`, summed over CPUs,
 * as `conntrack -S` prints it for the namespace it runs in).
 */
export async function conntrackDrops(namespace: string): Promise<number> {
  const { stdout } = await execInNetns(namespace, 'conntrack', ['-S']);
  const perCpu = [...stdout.matchAll(/\bdrop=(\d+)/g)].map((match) => Number(match[1]));
  if (perCpu.length === 0) throw new Error(`no drop counter in conntrack -S of ${namespace}: '${stdout}'`);
  return perCpu.reduce((sum, value) => sum + value, 0);
}

export interface ReproduceTableFullOptions {
  readonly hosts: LabHosts;
  /** The instance's service port (it must be open in the instance firewall). */
  readonly port: number;
  /** Connections per round between two count readings (default 256). */
  readonly batchSize?: number;
  readonly concurrency?: number;
  readonly connectTimeoutMs?: number;
  /** Give up after this many connections (default 4 × max + 1000). */
  readonly maxConnections?: number;
  /** Give up after this long (default 120 s). */
  readonly deadlineMs?: number;
  /**
   * When to stop. `table-full` (default): the instance's count reached max and a probe of 5 new
   * connections all failed. `first-failure`: the first batch with a failed connection, or, once
   * the count reached max, a probe of 3 with one; for a run where a responder is watching and may
   * already be fixing the table by the time a later probe runs.
   */
  readonly until?: 'table-full' | 'first-failure';
}

export interface TableFullResult {
  readonly max: number;
  readonly countBefore: number;
  /** The instance's count when the reproduction stopped. */
  readonly countAtFull: number;
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  /** The probe (or, with `until: 'first-failure'`, possibly the batch) that showed new connections failing. */
  readonly failing: ChurnResult;
  readonly elapsedMs: number;
}

/**
 * Reproduces seed 003 for real: short connections from the clients to the instance until the
 * instance's table holds nf_conntrack_max entries and new connections fail (see `until`). Call it
 * inside `withConntrackMax(lowMax, …)` so that this takes seconds. Throws (with the counts so far)
 * when the table does not fill within the bounds.
 */
export async function reproduceTableFull(options: ReproduceTableFullOptions): Promise<TableFullResult> {
  const { hosts, port } = options;
  const started = performance.now();
  const max = await conntrackMax(hosts.instance);
  const countBefore = await conntrackCount(hosts.instance);
  const batchSize = options.batchSize ?? 256;
  const timeoutMs = options.connectTimeoutMs ?? 1000;
  const maxConnections = options.maxConnections ?? max * 4 + 1000;
  const deadline = started + (options.deadlineMs ?? 120_000);
  const firstFailure = options.until === 'first-failure';
  assertBounded('maxConnections', maxConnections, 1, 1_000_000);
  let attempted = 0;
  let succeeded = 0;
  let failed = 0;
  let count = countBefore;
  while (attempted < maxConnections && performance.now() < deadline) {
    const round = await churnConnections(hosts.clients, hosts.instanceAddress, port, {
      count: Math.min(batchSize, maxConnections - attempted),
      concurrency: options.concurrency ?? 32,
      timeoutMs,
    });
    attempted += round.attempted;
    succeeded += round.succeeded;
    failed += round.failed;
    count = await conntrackCount(hosts.instance);
    let failing = firstFailure && round.failed > 0 ? round : null;
    if (failing === null && count >= max) {
      const probe = await probeConnections(hosts.clients, hosts.instanceAddress, port, {
        count: firstFailure ? 3 : 5,
        timeoutMs,
      });
      if (firstFailure ? probe.failed > 0 : probe.succeeded === 0) failing = probe;
    }
    if (failing !== null) {
      const elapsedMs = Math.round(performance.now() - started);
      return { max, countBefore, countAtFull: count, attempted, succeeded, failed, failing, elapsedMs };
    }
  }
  throw new Error(
    `the conntrack table of ${hosts.instance} did not fill: count ${count} of max ${max} after ` +
      `${attempted} connections (${succeeded} succeeded, ${failed} failed) in ${Math.round(performance.now() - started)} ms`,
  );
}

/** Empties the namespace's conntrack table (`conntrack -F` inside it; other namespaces keep theirs). */
export async function flushConntrack(namespace: string): Promise<void> {
  if (!namespace.startsWith(NAMESPACE_PREFIX)) {
    throw new Error(`refusing to flush '${namespace}': only '${NAMESPACE_PREFIX}*' namespaces`);
  }
  await execInNetns(namespace, 'conntrack', ['-F']);
}

/** Connections `holdConnections` opened and keeps open until `release()`. */
export interface HeldConnections {
  readonly attempted: number;
  readonly opened: number;
  readonly failed: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  /** Closes every held connection (ends the holding process) and resolves once it is gone. */
  release(): Promise<void>;
}

/** Opens `count` TCP connections from `fromNs` to `address:port` and keeps the ones that connect open. */
export async function holdConnections(
  fromNs: string,
  address: string,
  port: number,
  options: ChurnOptions,
): Promise<HeldConnections> {
  assertLabTarget(fromNs, address, port);
  const concurrency = options.concurrency ?? 32;
  const timeoutMs = options.timeoutMs ?? 1000;
  assertBounded('count', options.count, 0, MAX_CONNECTIONS_PER_CALL);
  assertBounded('concurrency', concurrency, 1, MAX_CONCURRENCY);
  assertBounded('timeoutMs', timeoutMs, 10, MAX_TIMEOUT_MS);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      fromNs,
      process.execPath,
      HOLD_PROGRAM,
      address,
      String(port),
      String(options.count),
      String(concurrency),
      String(timeoutMs),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const release = async () => {
    const exited = waitForExit(child);
    child.stdin?.end();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  };
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  // Same bound as churnConnections: every attempt timing out in sequence per worker, plus start-up.
  const bound = Math.ceil(options.count / concurrency) * timeoutMs + 15_000;
  const line = await new Promise<string>((resolve, reject) => {
    const fail = (reason: string) => {
      clearTimeout(timer);
      void release();
      reject(
        new Error(`holding ${options.count} connections to ${address}:${port} from ${fromNs}: ${reason}`),
      );
    };
    const timer = setTimeout(() => fail(`no result within ${bound} ms`), bound);
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code) => fail(`exited ${String(code)}: ${stderr.trim()}`));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const end = stdout.indexOf('\n');
      if (end === -1) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve(stdout.slice(0, end));
    });
  });
  const result = JSON.parse(line) as Omit<HeldConnections, 'release'>;
  return { ...result, release };
}

export interface HoldTableFullOptions {
  readonly hosts: LabHosts;
  /** A free port in the clients namespace for the service the instance's held connections go to. */
  readonly port: number;
}

/** The instance's table held at nf_conntrack_max by established connections only. */
export interface HeldFullTable {
  readonly max: number;
  /** The instance's count once held: nf_conntrack_max. */
  readonly count: number;
  /** Connections held open. */
  readonly held: number;
  /** Closes the held connections and stops their service; their entries move to TIME_WAIT. */
  release(): Promise<void>;
}

/**
 * Makes the instance's table full and keeps it full until `release()`, so that a check "new
 * connections fail at a full table" has one answer. A table filled by seed 003's short connections
 * (reproduceTableFull) does not stay full: once a table has dropped a packet, the kernel's
 * conntrack GC evicts entries it may drop early (unassured ones, and TCP ones in TIME_WAIT and the
 * other closing states) from every namespace whose count is at 95 % of nf_conntrack_max or more,
 * whenever its next scan runs, and new connections take the freed slots. Assured ESTABLISHED
 * entries are never evicted early. So this empties the instance's table (`conntrack -F`), then
 * holds connections open from the instance to a `hold` service in the clients namespace until the
 * instance's count reaches max: every entry is an established one, nothing can free a slot, and
 * every new tracked connection fails. Call it inside `withConntrackMax(lowMax, …)`.
 */
export async function holdTableFull(options: HoldTableFullOptions): Promise<HeldFullTable> {
  const { hosts, port } = options;
  const service = await startTcpService(hosts.clients, hosts.clientAddress, port, { mode: 'hold' });
  const holds: HeldConnections[] = [];
  const release = async () => {
    await Promise.all(holds.map((hold) => hold.release()));
    await service.stop();
  };
  try {
    await flushConntrack(hosts.instance);
    const max = await conntrackMax(hosts.instance);
    let count = await conntrackCount(hosts.instance);
    // One round fills it; a second one covers entries that something else freed meanwhile.
    for (let round = 0; round < 3 && count < max; round++) {
      holds.push(
        await holdConnections(hosts.instance, hosts.clientAddress, port, {
          count: max - count,
          concurrency: 64,
          timeoutMs: 5000,
        }),
      );
      count = await conntrackCount(hosts.instance);
    }
    if (count < max) {
      throw new Error(
        `could not hold the conntrack table of ${hosts.instance} full: count ${count} of max ${max} ` +
          `with ${holds.reduce((sum, hold) => sum + hold.opened, 0)} connections held`,
      );
    }
    const held = holds.reduce((sum, hold) => sum + hold.opened, 0);
    return { max, count, held, release };
  } catch (error) {
    await release();
    throw error;
  }
}
