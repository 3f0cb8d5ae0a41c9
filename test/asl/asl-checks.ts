/**
 * Static checks of an ASL (JSONPath) definition, as problem lists rather than assertions so the tests can
 * show each check catching a broken copy of the real file. Only the ASL features mlpipe's file uses are
 * understood (Task, Choice, Pass, Succeed, Fail; Next/Default/Choices/Catch).
 */

export interface AslState {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: Array<{ Next: string }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string; ResultPath?: string }>;
  Retry?: Array<{ ErrorEquals: string[]; JitterStrategy?: string }>;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
}

export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
}

/** Every state a state can go to next, with how. */
export function transitions(state: AslState): Array<{ via: string; to: string }> {
  const out: Array<{ via: string; to: string }> = [];
  if (state.Next !== undefined) out.push({ via: 'Next', to: state.Next });
  if (state.Default !== undefined) out.push({ via: 'Default', to: state.Default });
  for (const [i, choice] of (state.Choices ?? []).entries()) out.push({ via: `Choices[${i}].Next`, to: choice.Next });
  for (const [i, c] of (state.Catch ?? []).entries()) out.push({ via: `Catch[${i}].Next`, to: c.Next });
  return out;
}

export function missingTargets(def: AslDefinition): string[] {
  const problems: string[] = [];
  if (!(def.StartAt in def.States)) problems.push(`StartAt -> ${def.StartAt} does not exist`);
  for (const [name, state] of Object.entries(def.States)) {
    for (const { via, to } of transitions(state)) {
      if (!(to in def.States)) problems.push(`${name}.${via} -> ${to} does not exist`);
    }
  }
  return problems;
}

export function reachableFrom(def: AslDefinition, start: string, skip: (name: string) => boolean = () => false): Set<string> {
  const seen = new Set<string>();
  const todo = [start];
  while (todo.length > 0) {
    const name = todo.pop() as string;
    if (seen.has(name) || skip(name)) continue;
    seen.add(name);
    const state = def.States[name];
    if (state) todo.push(...transitions(state).map((t) => t.to));
  }
  return seen;
}

export function unreachableStates(def: AslDefinition): string[] {
  const reached = reachableFrom(def, def.StartAt);
  return Object.keys(def.States).filter((name) => !reached.has(name));
}

export function tasksWithoutTimeout(def: AslDefinition): string[] {
  return Object.entries(def.States)
    .filter(([, s]) => s.Type === 'Task' && s.TimeoutSeconds === undefined && s.TimeoutSecondsPath === undefined)
    .map(([name]) => name);
}

export function retriesWithoutFullJitter(def: AslDefinition): string[] {
  return Object.entries(def.States).flatMap(([name, s]) =>
    (s.Retry ?? []).flatMap((r, i) => (r.JitterStrategy === 'FULL' ? [] : [`${name}.Retry[${i}]`])),
  );
}

export function nonPascalCaseStates(def: AslDefinition): string[] {
  return Object.keys(def.States).filter((name) => !/^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$/.test(name));
}

/** The Lambda a Task calls: its placeholder name (`NotifyFunctionArn`), for direct and waitForTaskToken forms. */
export function taskPlaceholder(state: AslState): string | undefined {
  const resource = state.Type === 'Task' ? (state.Parameters?.FunctionName ?? state.Resource) : undefined;
  const m = typeof resource === 'string' ? /^\$\{([A-Za-z0-9_]+)\}$/.exec(resource) : null;
  return m?.[1];
}

/**
 * From `start`, can the execution end (Succeed/Fail) without passing a state that `isNotify` accepts?
 * Returns the names of such terminal states.
 */
export function terminalsReachableWithout(def: AslDefinition, start: string, isNotify: (name: string) => boolean): string[] {
  const reached = reachableFrom(def, start, isNotify);
  return [...reached].filter((name) => {
    const t = def.States[name]?.Type;
    return t === 'Succeed' || t === 'Fail';
  });
}

/**
 * Every Task catches States.ALL, and from where it goes, the run reaches `cleanup` (unless the task is
 * itself on the way out: cleanup, notification, or after cleanup) and cannot end without a notification.
 */
export function catchProblems(
  def: AslDefinition,
  cleanup: string,
  isNotify: (name: string) => boolean,
  /** Cleanup and notification tasks: they are the way out, so they need not lead back to cleanup. */
  isExitTask: (name: string) => boolean,
): string[] {
  const problems: string[] = [];
  const afterCleanup = reachableFrom(def, cleanup);
  for (const [name, state] of Object.entries(def.States)) {
    if (state.Type !== 'Task') continue;
    const catchAll = (state.Catch ?? []).find((c) => c.ErrorEquals.includes('States.ALL'));
    if (!catchAll) {
      problems.push(`${name} has no Catch for States.ALL`);
      continue;
    }
    const onTheWayOut = afterCleanup.has(name) || isExitTask(name);
    if (!onTheWayOut && !reachableFrom(def, catchAll.Next).has(cleanup)) {
      problems.push(`${name}: its States.ALL Catch (-> ${catchAll.Next}) never reaches ${cleanup}`);
    }
    if (!isNotify(name)) {
      for (const c of state.Catch ?? []) {
        const silent = terminalsReachableWithout(def, c.Next, isNotify);
        if (silent.length > 0) problems.push(`${name}: Catch -> ${c.Next} can end in ${silent.join(', ')} without a notification`);
      }
    }
  }
  return problems;
}

/**
 * Wait loops: a Choice that follows an Await task must fall back (Default) to that task — anything else
 * either ends the wait early or spins somewhere else.
 */
export function loopProblems(def: AslDefinition, isAwait: (name: string) => boolean): string[] {
  const problems: string[] = [];
  for (const [name, state] of Object.entries(def.States)) {
    if (!isAwait(name) || state.Next === undefined) continue;
    const choice = def.States[state.Next];
    if (choice?.Type !== 'Choice') {
      problems.push(`${name} is followed by ${state.Next}, not by a Choice that loops back`);
    } else if (choice.Default !== name) {
      problems.push(`${state.Next}.Default is ${choice.Default ?? '(none)'}, not ${name}`);
    }
  }
  return problems;
}
