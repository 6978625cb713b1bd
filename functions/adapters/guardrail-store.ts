import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { FleetView, IncidentAdmission, PortCount } from '../core/guardrails/breaker.js';
import type { LastChange } from '../core/guardrails/decisions.js';
import type { GuardrailSettings } from '../core/guardrails/settings.js';
import {
  type AdmissionResult,
  type AdmissionSubject,
  type BreakerRecord,
  BreakerStore,
} from './breaker-store.js';
import { LastChangeStore } from './last-change-store.js';
import { RemediationSlotStore, type SlotResult } from './remediation-slot-store.js';

/**
 * The guardrails' records in the incidents table, one store per record type over a shared base
 * (guardrail-table.ts, where the keys are listed): the fleet breaker (breaker-store.ts), the
 * remediation slots (remediation-slot-store.ts) and each instance's last change
 * (last-change-store.ts). This is the one object the functions and the command line are given.
 */
export class GuardrailStore {
  readonly breaker: BreakerStore;
  readonly slots: RemediationSlotStore;
  readonly changes: LastChangeStore;

  constructor(client: DynamoDBDocumentClient, tableName: string, settings: GuardrailSettings) {
    this.breaker = new BreakerStore(client, tableName, settings.breaker);
    this.slots = new RemediationSlotStore(client, tableName, settings);
    this.changes = new LastChangeStore(client, tableName);
  }

  // ---- the fleet breaker ------------------------------------------------------------------------

  getBreaker(): Promise<BreakerRecord> {
    return this.breaker.getBreaker();
  }

  admit(
    subject: AdmissionSubject,
    stored: IncidentAdmission | undefined,
    now: Date,
  ): Promise<AdmissionResult> {
    return this.breaker.admit(subject, stored, now);
  }

  claimEscalation(now: Date): Promise<boolean> {
    return this.breaker.claimEscalation(now);
  }

  releaseEscalationClaim(): Promise<void> {
    return this.breaker.releaseEscalationClaim();
  }

  markEscalationSent(now: Date, messageId: string | null): Promise<void> {
    return this.breaker.markEscalationSent(now, messageId);
  }

  openByHand(by: string, reason: string, now: Date): Promise<boolean> {
    return this.breaker.openByHand(by, reason, now);
  }

  reset(by: string, reason: string, now: Date): Promise<boolean> {
    return this.breaker.reset(by, reason, now);
  }

  fleetView(now: Date): Promise<FleetView> {
    return this.breaker.fleetView(now);
  }

  recordTopPorts(incidentId: string, ports: readonly PortCount[]): Promise<void> {
    return this.breaker.recordTopPorts(incidentId, ports);
  }

  // ---- remediation slots ------------------------------------------------------------------------

  acquireSlot(holder: string, now: Date): Promise<SlotResult> {
    return this.slots.acquireSlot(holder, now);
  }

  releaseSlot(holder: string): Promise<boolean> {
    return this.slots.releaseSlot(holder);
  }

  slotHolders(now: Date): Promise<{ live: string[]; max: number }> {
    return this.slots.slotHolders(now);
  }

  // ---- the cooldown after a change --------------------------------------------------------------

  recordChange(instanceId: string, change: LastChange, retentionDays: number): Promise<void> {
    return this.changes.recordChange(instanceId, change, retentionDays);
  }

  lastChange(instanceId: string): Promise<LastChange | null> {
    return this.changes.lastChange(instanceId);
  }
}
