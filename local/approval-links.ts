/**
 * The approval links of the local run's "email": local/sns.ts appends every message to notifications.jsonl,
 * and the approval request carries the signed approve/reject links. `mlpipe status` and the `npm start`
 * terminal show them for any run, including one started by `mlpipe run` (on AWS they are only in the
 * approvers' inboxes).
 */
import { existsSync, readFileSync } from 'node:fs';
import { approvalId } from '../functions/shared/approval-link';

const LINK = /https?:\/\/[^\s"<>]+\/approvals\/([0-9a-f]{32})\?[^\s"<>]+/g;

/** The newest approve/reject link pair of `executionArn`'s approval in `notificationsFile`, if one was sent. */
export function localApprovalLinks(notificationsFile: string, executionArn: string): { approve: string; reject: string } | undefined {
  if (!existsSync(notificationsFile)) return undefined;
  const id = approvalId(executionArn);
  let found: { approve: string; reject: string } | undefined;
  for (const line of readFileSync(notificationsFile, 'utf8').split('\n')) {
    if (!line.includes(id)) continue;
    let message: string;
    try {
      message = String((JSON.parse(line) as { message?: unknown }).message ?? '');
    } catch {
      continue; // a line being written
    }
    const mine = [...message.matchAll(LINK)].filter((m) => m[1] === id).map((m) => m[0]);
    const approve = mine.find((l) => new URL(l).searchParams.get('action') === 'approve');
    const reject = mine.find((l) => new URL(l).searchParams.get('action') === 'reject');
    if (approve && reject) found = { approve, reject };
  }
  return found;
}
