import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure code, CDK templates, local HTTP, fakes at the SDK boundary) runs in
// parallel; `lab` drives the real kernel in network namespaces, needs root, and runs one file at a
// time because it changes global kernel settings (nf_conntrack_max) for short periods.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/infra/**/*.test.ts'],
          testTimeout: 60_000,
          // Hooks do the same work as tests (a CDK synth in beforeAll takes seconds idle and over
          // 10 s, vitest's default hook bound, on a loaded 2-core machine): the same bound.
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
