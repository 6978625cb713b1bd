import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CommandDocument } from '../../../functions/core/runbook/document.js';
import { loadRunbook, RUNBOOKS_DIR } from '../../../functions/local/runbooks.js';

/**
 * Every document's allowedPattern is at least as strict as its script's own parameter checks: a
 * value the pattern lets through is one the script accepts, whichever way SSM matches. AWS says
 * only that a value must match the pattern
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-doc-syntax.html), not
 * whether the whole value or a part of it, nor with which engine, so each pattern is tried three
 * ways: JavaScript's test (the local executor), Java's find, and Java's matches. In Java, `$`
 * without MULTILINE also matches before a final line terminator (java.util.regex.Pattern), which
 * the emulation below reproduces; the patterns end in `$(?![\s\S])` to hold in all three.
 *
 * The verdicts come from the scripts themselves: each script's validation code, cut out of the
 * script file, runs in bash on the same values (rollback as a whole, which refuses an unknown
 * change before reading anything else). What only the host can know is named in HOST_ONLY.
 */

const SCRIPTS = join(RUNBOOKS_DIR, 'scripts');
const work = mkdtempSync(join(tmpdir(), 'ctr-patterns-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Refusals a pattern cannot foresee: they depend on the host, or compare numbers with each other. */
const HOST_ONLY: Record<string, RegExp> = {
  'raise-limits.Timeouts': /does not exist on this kernel|names '.*' twice/,
  'raise-limits.HashSize': /larger than MaxEntries/,
  'notrack-ports.Ports': /overlap|low port must not be above the high port/,
  'rollback.ChangeId': /^unknown ChangeId /,
};

/** A file for every conntrack timeout sysctl of recent kernels, for raise-limits' existence check. */
const TIMEOUT_NAMES = [
  'generic_timeout',
  ...[
    'syn_sent',
    'syn_recv',
    'established',
    'fin_wait',
    'close_wait',
    'last_ack',
    'time_wait',
    'close',
    'max_retrans',
    'unacknowledged',
  ].map((state) => `tcp_timeout_${state}`),
  'udp_timeout',
  'udp_timeout_stream',
  'icmp_timeout',
  'icmpv6_timeout',
  'gre_timeout',
  'gre_timeout_stream',
];
const netfilter = join(work, 'netfilter');
mkdirSync(netfilter);
for (const name of TIMEOUT_NAMES) writeFileSync(join(netfilter, `nf_conntrack_${name}`), '30\n');

function scriptText(name: string): string {
  return readFileSync(join(SCRIPTS, `${name}.sh`), 'utf8');
}

/** The text of a top-level function `name() { … }` of a script (it must be there). */
function bashFunction(text: string, name: string): string {
  const start = text.indexOf(`\n${name}() {`);
  const end = text.indexOf('\n}\n', start);
  if (start < 0 || end < 0) throw new Error(`no function ${name}() in the script`);
  return text.slice(start + 1, end + 3);
}

/** The lines of a script matching a pattern (at least one). */
function lines(text: string, pattern: RegExp): string {
  const found = text.split('\n').filter((line) => pattern.test(line));
  if (found.length === 0) throw new Error(`no line matches ${pattern}`);
  return found.join('\n');
}

const STUBS = [
  `refuse() { printf 'refused: %s\\n' "$1"; exit 3; }`,
  `die() { printf 'refused: %s\\n' "$1"; exit 3; }`,
].join('\n');
const PARAMETER_LINES = /^[a-z_]+=\$\{SSM_[A-Za-z]+(:-[^}]*)?\}$/;

/**
 * The bash that runs a script's own parameter checks: `setup` once (stubs, constants, the
 * validation function), then `run` for each value in a subshell (the script's SSM_* reads and the call).
 */
const VALIDATORS: Record<string, () => { setup: string; run: string; env?: Record<string, string> }> = {
  'raise-limits': () => {
    const text = scriptText('raise-limits');
    return {
      setup: [
        STUBS,
        lines(text, /^readonly (INT_MAX|MAX_TIMEOUT_SECONDS)=/),
        `NETFILTER='${netfilter}'`,
        // The hash-size rounding reads the page size of the host; a granularity of 1 is the strictest.
        'bucket_granularity() { echo 1; }',
        bashFunction(text, 'validate_parameters'),
      ].join('\n'),
      run: ['timeout_names=() timeout_values=()', lines(text, PARAMETER_LINES), 'validate_parameters'].join(
        '\n',
      ),
    };
  },
  'notrack-ports': () => {
    const text = scriptText('notrack-ports');
    return {
      setup: [STUBS, bashFunction(text, 'validate_parameters')].join('\n'),
      run: ['port_specs=() port_lo=() port_hi=()', lines(text, PARAMETER_LINES), 'validate_parameters'].join(
        '\n',
      ),
    };
  },
  'host-sampler': () => {
    const text = scriptText('host-sampler');
    return {
      setup: [
        STUBS,
        lines(text, /^readonly MAX_INTERVAL_SECONDS=/),
        bashFunction(text, 'validate_parameters'),
      ].join('\n'),
      run: [lines(text, PARAMETER_LINES), 'validate_parameters'].join('\n'),
    };
  },
  'ship-kernel-log': () => {
    const text = scriptText('ship-kernel-log');
    const declaration = /^declare -A parameter=\([\s\S]*?\n\)$/m.exec(text)?.[0];
    if (declaration === undefined) throw new Error('ship-kernel-log: no parameter declaration');
    return {
      setup: [STUBS, lines(text, /^readonly SOURCES=/), bashFunction(text, 'validate_parameters')].join('\n'),
      run: [declaration, lines(text, PARAMETER_LINES), 'validate_parameters'].join('\n'),
    };
  },
  'collect-diagnostics': () => {
    const text = scriptText('collect-diagnostics');
    return {
      setup: [STUBS, bashFunction(text, 'number_param')].join('\n'),
      run: lines(text, /^number_param /),
    };
  },
  rollback: () => {
    const state = join(work, 'rollback-state');
    mkdirSync(state, { recursive: true });
    return {
      setup: '',
      run: `bash '${join(SCRIPTS, 'rollback.sh')}'`,
      env: { CONNTRACK_RESPONDER_STATE_DIR: state, CONNTRACK_RESPONDER_ROOT: state },
    };
  },
};

/**
 * What the script says about each value of one parameter (the others as in `base`): accepted, or
 * refused with its reason. One bash process per parameter, each value checked in a subshell.
 */
function scriptVerdicts(
  document: string,
  parameter: string,
  base: Record<string, string>,
  values: readonly string[],
): { accepted: boolean; reason: string }[] {
  const validator = VALIDATORS[document];
  if (validator === undefined) throw new Error(`no validator for ${document}: add it to VALIDATORS`);
  const { setup, run, env } = validator();
  const valuesFile = join(work, `${document}.${parameter}.values`);
  writeFileSync(valuesFile, values.map((value) => `${value}\0`).join(''));
  const program = [
    setup,
    `while IFS= read -r -d '' value; do`,
    `  ( export SSM_${parameter}="$value"; ${run.replaceAll('\n', '\n  ')}\n  ) </dev/null 2>&1`,
    `  printf '\\n@@verdict %s@@\\n' "$?"`,
    `done < '${valuesFile}'`,
  ].join('\n');
  const ssm = Object.fromEntries(Object.entries(base).map(([key, value]) => [`SSM_${key}`, value]));
  const result = spawnSync('bash', ['-c', program], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8', ...env, ...ssm },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const parts = result.stdout.split(/\n@@verdict (\d+)@@\n/);
  const verdicts: { accepted: boolean; reason: string }[] = [];
  for (let index = 0; index + 1 < parts.length; index += 2) {
    const output = parts[index] ?? '';
    const status = Number(parts[index + 1]);
    if (status === 0) {
      verdicts.push({ accepted: true, reason: '' });
    } else if (status === 3) {
      verdicts.push({ accepted: false, reason: /refused: (.*)/.exec(output)?.[1] ?? output });
    } else {
      throw new Error(`${document} ${parameter}: the validation itself failed (exit ${status}): ${output}`);
    }
  }
  if (verdicts.length !== values.length) {
    throw new Error(
      `${document} ${parameter}: ${verdicts.length} verdicts for ${values.length} values: ${result.stderr}`,
    );
  }
  return verdicts;
}

/** Java's `$` (no MULTILINE): at the end, or before a final \n, \r\n, \r, \u0085, \u2028, \u2029. */
function javaPattern(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] as string;
    if (char === '\\') {
      out += char + (pattern[index + 1] ?? '');
      index++;
    } else if (inClass) {
      if (char === ']') inClass = false;
      out += char;
    } else if (char === '[') {
      inClass = true;
      out += char;
    } else if (char === '$') {
      out += '(?=(?:\\r\\n|[\\n\\r\\u0085\\u2028\\u2029])?(?![\\s\\S]))';
    } else {
      out += char;
    }
  }
  return out;
}

/** The three readings of a pattern: JavaScript test, Java find, Java matches (the whole value). */
function matchers(pattern: string): Record<string, (value: string) => boolean> {
  const javascript = new RegExp(pattern);
  const javaFind = new RegExp(javaPattern(pattern));
  const javaMatches = new RegExp(`^(?:${javaPattern(pattern)})(?![\\s\\S])`);
  return {
    'JavaScript test': (value) => javascript.test(value),
    'Java find': (value) => javaFind.test(value),
    'Java matches': (value) => javaMatches.test(value),
  };
}

const LINE_ENDS = ['\n', '\r\n', '\r', '\u0085', '\u2028', '\u2029'];

/** Values (beyond a parameter's default) the script accepts: each must pass the pattern too. */
const CHANGE_IDS = ['c1', 'inc-20261122-raise', `a${'b'.repeat(63)}`, 'A0'];
const VALID: Record<string, string[]> = {
  ChangeId: CHANGE_IDS,
  MaxEntries: ['1', '65536', '262144', '999999999', '1000000000', '2147483639', '2147483646', '2147483647'],
  HashSize: ['', '1', '16384', '2147483647'],
  Timeouts: [
    '',
    'tcp_timeout_time_wait=30',
    'udp_timeout=20,tcp_timeout_time_wait=30',
    'tcp_timeout_established=2147483',
    'generic_timeout=1999999,icmp_timeout=2099999,gre_timeout=2139999,udp_timeout=2146999,udp_timeout_stream=2147399,icmpv6_timeout=2147479',
    TIMEOUT_NAMES.slice(0, 16)
      .map((name) => `${name}=30`)
      .join(','),
  ],
  MemoryBudgetPercent: ['1', '9', '10', '49', '50'],
  Persist: ['true', 'false'],
  Ports: [
    '8080',
    '1',
    '65535',
    '10240:10250',
    '1:65535',
    '8080,11211',
    '59999,60000,64999,65499,65529',
    Array.from({ length: 15 }, (_, i) => 1000 + i).join(','),
  ],
  IntervalSeconds: ['1', '60', '999', '1000', '2999', '3000', '3599', '3600'],
  SampleSeconds: ['1', '9', '10', '59'],
  TopN: ['1', '10', '49', '50'],
  AgentWaitSeconds: ['0', '1', '99', '100', '599', '600'],
  KernLogConfiguration: [
    'AmazonCloudWatch-a',
    `AmazonCloudWatch-${'x'.repeat(200)}`,
    'AmazonCloudWatch-S-A.b_c-kern-log',
  ],
};
VALID.MessagesConfiguration = VALID.KernLogConfiguration as string[];
VALID.JournaldConfiguration = VALID.KernLogConfiguration as string[];

/** Values near and past the scripts' limits, and malformed ones. */
const NUMBERS = ['0', '00', '01', '-1', '+1', '1e3', '1.0', ' 1', '1 ', '', '0x10', '１'];
const PROBES: Record<string, string[]> = {
  ChangeId: ['', '-a', 'a_b', 'a b', `a${'b'.repeat(64)}`, 'a;reboot', 'a$(id)'],
  MaxEntries: [
    ...NUMBERS,
    '2147483648',
    '2147483650',
    '2147483700',
    '2147490000',
    '2999999999',
    '9999999999',
    '10000000000',
  ],
  HashSize: [...NUMBERS.filter((value) => value !== ''), '2147483648', '4294967296', '9999999999'],
  Timeouts: [
    'max=1',
    'tcp_loose=1',
    'tcp_timeout_time_wait=0',
    'tcp_timeout_time_wait=2147484',
    'tcp_timeout_time_wait=2147490',
    'tcp_timeout_time_wait=2148000',
    'tcp_timeout_time_wait=9999999',
    'tcp_timeout_time_wait=2147483648',
    'tcp_timeout_time_wait=30,',
    ',tcp_timeout_time_wait=30',
    'tcp_timeout_time_wait = 30',
    'TCP_TIMEOUT_TIME_WAIT=30',
    `a${'b'.repeat(56)}timeout=1`,
    `a${'b'.repeat(57)}timeout=1`,
    'udp_timeout=1,udp_timeout=2',
    'no_such_timeout=30',
    `${TIMEOUT_NAMES.map((name) => `${name}=30`).join(',')}`,
    'tcp_timeout_time_wait=30\nudp_timeout=1',
  ],
  MemoryBudgetPercent: [...NUMBERS, '51', '60', '100'],
  Persist: ['', 'yes', 'TRUE', 'true '],
  Ports: [
    ...NUMBERS,
    '65536',
    '65540',
    '65600',
    '66000',
    '70000',
    '99999',
    '100000',
    '80:65536',
    '90:80',
    '80,80',
    '80,70:90',
    '80,',
    ',80',
    '80:',
    ':80',
    '80-90',
    '80 ,90',
    Array.from({ length: 16 }, (_, i) => 1000 + i).join(','),
  ],
  IntervalSeconds: [...NUMBERS, '3601', '3700', '4000', '9999', '10000'],
  SampleSeconds: [...NUMBERS.filter((value) => value !== ''), '60', '99', '100'],
  TopN: [...NUMBERS.filter((value) => value !== ''), '51', '60', '99', '100'],
  AgentWaitSeconds: [...NUMBERS.filter((value) => value !== ''), '601', '610', '700', '999', '1000'],
  KernLogConfiguration: [
    '',
    'AmazonCloudWatch-',
    'AmazonCloudWatch-a b',
    `AmazonCloudWatch-${'x'.repeat(201)}`,
    'amazoncloudwatch-a',
    'AmazonCloudWatch-a/b',
    'x-AmazonCloudWatch-a',
  ],
};
PROBES.MessagesConfiguration = PROBES.KernLogConfiguration as string[];
PROBES.JournaldConfiguration = PROBES.KernLogConfiguration as string[];

/** A value followed or preceded by each line end, and with another line after it. */
function withLineBreaks(value: string): string[] {
  return LINE_ENDS.flatMap((end) => [`${value}${end}`, `${end}${value}`, `${value}${end}${value}`]);
}

/** Parameters the script needs besides the one under test (the documents' defaults, and these). */
const REQUIRED: Record<string, Record<string, string>> = {
  'raise-limits': { ChangeId: 'c1', MaxEntries: '2147483647' },
  'notrack-ports': { ChangeId: 'c1', Ports: '8080', Protocol: 'tcp', Direction: 'inbound' },
  rollback: { ChangeId: 'c1' },
  'ship-kernel-log': {
    KernLogConfiguration: 'AmazonCloudWatch-k',
    MessagesConfiguration: 'AmazonCloudWatch-m',
    JournaldConfiguration: 'AmazonCloudWatch-j',
  },
};

const documentNames = readdirSync(join(RUNBOOKS_DIR, 'ssm'))
  .filter((file) => file.endsWith('.yaml'))
  .map((file) => file.slice(0, -'.yaml'.length))
  .sort();
const documents = new Map<string, CommandDocument>();
for (const name of documentNames) documents.set(name, (await loadRunbook(name)).document);

const patterned = [...documents].flatMap(([document, content]) =>
  Object.entries(content.parameters ?? {})
    .filter(([, parameter]) => parameter.allowedPattern !== undefined)
    .map(([parameter, definition]) => ({
      document,
      parameter,
      pattern: definition.allowedPattern as string,
      defaults: Object.fromEntries(
        Object.entries(content.parameters ?? {}).flatMap(([key, each]) =>
          each.default === undefined ? [] : [[key, each.default]],
        ),
      ),
      default: definition.default,
    })),
);

describe('allowedPattern against the scripts’ own checks', () => {
  it('covers every parameter with a pattern of every document', () => {
    expect(patterned.length).toBeGreaterThanOrEqual(15);
    for (const { document, parameter } of patterned) {
      expect(VALID[parameter], `${document}.${parameter}: add values to VALID`).toBeDefined();
      expect(PROBES[parameter], `${document}.${parameter}: add values to PROBES`).toBeDefined();
    }
  });

  it.each(patterned)(
    '$document $parameter: $pattern',
    (entry) => {
      const { document, parameter, pattern } = entry;
      const read = matchers(pattern);
      const base = { ...entry.defaults, ...REQUIRED[document] };
      const valid = [...(VALID[parameter] ?? []), ...(entry.default === undefined ? [] : [entry.default])];
      const broken = valid.flatMap(withLineBreaks);
      const probes = [...(PROBES[parameter] ?? []), ...broken];
      const hostOnly = HOST_ONLY[`${document}.${parameter}`];
      const all = [...valid, ...probes];
      const verdicts = new Map(
        scriptVerdicts(document, parameter, base, all).map((each, index) => [all[index], each]),
      );
      const verdict = (value: string) => verdicts.get(value) ?? { accepted: false, reason: 'not checked' };

      // Values the script accepts pass every reading of the pattern (not stricter than it needs be).
      for (const value of valid) {
        const script = verdict(value);
        expect(
          script.accepted || hostOnly?.test(script.reason) === true,
          `${JSON.stringify(value)}: ${script.reason}`,
        ).toBe(true);
        for (const [how, matches] of Object.entries(read)) {
          expect(matches(value), `${how} refuses ${JSON.stringify(value)}`).toBe(true);
        }
      }
      // A value any reading lets through is one the script accepts (or refuses for a host-only reason).
      let refusedByScript = 0;
      for (const value of probes) {
        const script = verdict(value);
        if (!script.accepted) refusedByScript++;
        for (const [how, matches] of Object.entries(read)) {
          if (!matches(value)) continue;
          expect(
            script.accepted || hostOnly?.test(script.reason) === true,
            `${how} lets ${JSON.stringify(value)} through, which the script refuses: ${script.reason}`,
          ).toBe(true);
        }
      }
      // Every line break, before, after or inside a value, fails every reading.
      for (const value of broken) {
        for (const [how, matches] of Object.entries(read)) {
          expect(matches(value), `${how} lets ${JSON.stringify(value)} through`).toBe(false);
        }
      }
      expect(refusedByScript).toBeGreaterThanOrEqual(LINE_ENDS.length);
      // rollback runs as a whole script per value: slow on a loaded machine.
    },
    300_000,
  );
});

describe('the emulation of Java’s $', () => {
  it('lets a final line break through a pattern that ends in $ alone, as Java find does', () => {
    const read = matchers('^[0-9]+$');
    expect(read['Java find']?.('80\n')).toBe(true);
    expect(read['Java find']?.('80\r\n')).toBe(true);
    expect(read['Java matches']?.('80\n')).toBe(false);
    expect(read['JavaScript test']?.('80\n')).toBe(false);
    expect(matchers('^[0-9]+$(?![\\s\\S])')['Java find']?.('80\n')).toBe(false);
  });
});

/**
 * SSM refuses a document larger than 64 KB ("Maximum size of an SSM document", Systems Manager
 * quotas: https://docs.aws.amazon.com/general/latest/gr/ssm.html); CloudFormation sends the
 * document as compact JSON, script included. HEADROOM is what a change may add to a script before
 * it has to be split.
 */
const SSM_DOCUMENT_LIMIT_BYTES = 64 * 1024;
const HEADROOM_BYTES = 4 * 1024;

describe('document size', () => {
  it.each(documentNames)(`%s stays ${HEADROOM_BYTES} bytes below SSM's 64 KB`, (name) => {
    const size = Buffer.byteLength(JSON.stringify(documents.get(name)), 'utf8');
    expect(size).toBeGreaterThan(1000);
    expect(size).toBeLessThanOrEqual(SSM_DOCUMENT_LIMIT_BYTES - HEADROOM_BYTES);
  });
});
