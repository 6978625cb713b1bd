/** A loose view of Amazon States Language, enough to walk a definition and bind its Task states. */
export interface AslState {
  readonly Type: string;
  readonly Resource?: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly Default?: string;
  readonly Choices?: ReadonlyArray<{ readonly Next: string } & Record<string, unknown>>;
  readonly Catch?: ReadonlyArray<{
    readonly ErrorEquals: readonly string[];
    readonly Next: string;
    readonly ResultPath?: string;
  }>;
  readonly Retry?: ReadonlyArray<{
    readonly ErrorEquals: readonly string[];
    readonly IntervalSeconds?: number;
    readonly MaxAttempts?: number;
    readonly BackoffRate?: number;
  }>;
  readonly Branches?: readonly AslMachine[];
  readonly ItemProcessor?: AslMachine;
  readonly Iterator?: AslMachine;
  readonly [field: string]: unknown;
}

export interface AslMachine {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, AslState>>;
}

/** Every state, nested ones (Parallel branches, Map processors) included, with the machine it belongs to. */
export function allStates(machine: AslMachine): Array<{ name: string; state: AslState; owner: AslMachine }> {
  const found: Array<{ name: string; state: AslState; owner: AslMachine }> = [];
  const visit = (owner: AslMachine) => {
    for (const [name, state] of Object.entries(owner.States)) {
      found.push({ name, state, owner });
      for (const branch of state.Branches ?? []) visit(branch);
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor !== undefined) visit(processor);
    }
  };
  visit(machine);
  return found;
}

/** The states a state can hand over to within its own machine (Next, Choices, Default, Catch). */
export function successors(state: AslState): string[] {
  return [
    ...(state.Next === undefined ? [] : [state.Next]),
    ...(state.Choices ?? []).map((choice) => choice.Next),
    ...(state.Default === undefined ? [] : [state.Default]),
    ...(state.Catch ?? []).map((catcher) => catcher.Next),
  ];
}

export function isTerminal(state: AslState): boolean {
  return state.Type === 'Succeed' || state.Type === 'Fail' || state.End === true;
}
