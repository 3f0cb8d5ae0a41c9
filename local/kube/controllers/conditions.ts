/** Condition lists the way controllers keep them: transition times move only when the status flips. */
import { now } from '../api';
import type { Condition } from '../resources';

export function setCondition(
  list: Condition[] | undefined,
  type: string,
  status: Condition['status'],
  reason?: string,
  message?: string,
  /** probeTime: true writes `lastProbeTime: null` (pods), 'now' the time of the check (Jobs, transcript 15). */
  opts: { updateTime?: boolean; probeTime?: boolean | 'now' } = {},
): Condition[] {
  const conditions = [...(list ?? [])];
  const i = conditions.findIndex((c) => c.type === type);
  const old = i >= 0 ? conditions[i] : undefined;
  const same = old && old.status === status && old.reason === reason && old.message === message;
  const next: Condition = {
    type,
    status,
    ...(opts.probeTime === 'now' ? { lastProbeTime: now() } : opts.probeTime ? { lastProbeTime: null } : {}),
    ...(opts.updateTime ? { lastUpdateTime: same && old.lastUpdateTime ? old.lastUpdateTime : now() } : {}),
    lastTransitionTime: old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now(),
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  return conditions;
}

export function getCondition(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}
