import { z } from 'zod';
import { PortAggregateSchema } from '../diagnostics/report.js';
import type { PortCount } from './breaker.js';

/**
 * An instance's top ports for the fleet view, from its collect-diagnostics report: the ports this
 * host serves (inbound) and the remote ports it calls (outbound) that hold the most table entries.
 * Only that part of the report is read, leniently, so a report that is otherwise unreadable still
 * contributes its ports, and one without them contributes nothing.
 */

const PortsOfReportSchema = z.looseObject({
  table: z.looseObject({
    byLocalServicePort: z.array(PortAggregateSchema),
    byRemotePort: z.array(PortAggregateSchema),
  }),
});

export function topPortsOfReport(report: unknown, limit = 3): PortCount[] {
  let value = report;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return [];
    }
  }
  const parsed = PortsOfReportSchema.safeParse(value);
  if (!parsed.success) return [];
  const { byLocalServicePort, byRemotePort } = parsed.data.table;
  return [
    ...byLocalServicePort.map((p) => ({ ...p, direction: 'inbound' as const })),
    ...byRemotePort.map((p) => ({ ...p, direction: 'outbound' as const })),
  ]
    .filter((p) => p.entries > 0)
    .sort((a, b) => b.entries - a.entries || a.port - b.port)
    .slice(0, limit)
    .map(({ protocol, port, direction, entries }) => ({ protocol, port, direction, entries }));
}
