/**
 * The example trainer's checkpoints under CHECKPOINT_URI (the container contract, docs/architecture.md):
 * after each epoch the whole training state (weights, Adam's moments and step, the epoch history) goes to
 * one of two objects, `checkpoint-a.bin` / `checkpoint-b.bin` by the epoch's parity, so the newest write
 * never replaces the checkpoint before it. Each object carries the SHA-256 of its header and payload: a torn,
 * truncated or damaged object (a pod killed mid-upload on a store without atomic writes) is never read as a
 * checkpoint, and the other slot, one epoch older, is used instead. A retried pod resumes from the newest
 * valid one that was made by the same run (same hyperparameters and data), else starts at epoch 1.
 *
 * Layout: 8 bytes "MLPCKPT1", uint32 LE header length, header JSON, payload (float32 LE: the parameters,
 * then Adam's m, then v, each in tensors() order).
 */
import { createHash } from 'node:crypto';
import { newParams, tensors, type MlpShape } from './mlp';
import { getBytesIfExists, parseS3Prefix, putBytes } from './s3';
import type { EpochReport, TrainingState } from './trainer';

const MAGIC = 'MLPCKPT1';
export const CHECKPOINT_SLOTS = ['checkpoint-a.bin', 'checkpoint-b.bin'] as const;

/**
 * What makes two runs the same run: a checkpoint made under other values is not resumed from. Threads are
 * left out (they change the summation order, not what is trained).
 */
export type RunFingerprint = Record<string, string | number>;

interface CheckpointHeader {
  format: 2;
  epoch: number;
  fingerprint: RunFingerprint;
  shape: MlpShape;
  optimizerStep: number;
  history: EpochReport[];
  payloadBytes: number;
  savedAt: string;
  /** SHA-256 of the header's JSON without this field, then the payload. */
  sha256: string;
}

function digest(headerJson: string, payload: Uint8Array): string {
  return createHash('sha256').update(headerJson, 'utf8').update(payload).digest('hex');
}

export function slotFor(epoch: number): (typeof CHECKPOINT_SLOTS)[number] {
  return CHECKPOINT_SLOTS[epoch % 2]!;
}

export function encodeCheckpoint(state: TrainingState, shape: MlpShape, fingerprint: RunFingerprint): Uint8Array {
  const parts = [...tensors(state.params), ...state.optimizer.m, ...state.optimizer.v];
  const payload = new Uint8Array(parts.reduce((n, t) => n + t.byteLength, 0));
  let offset = 0;
  for (const t of parts) {
    payload.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), offset);
    offset += t.byteLength;
  }
  const base: Omit<CheckpointHeader, 'sha256'> = {
    format: 2,
    epoch: state.epoch,
    fingerprint,
    shape,
    optimizerStep: state.optimizer.step,
    history: state.history,
    payloadBytes: payload.byteLength,
    savedAt: new Date().toISOString(),
  };
  const header: CheckpointHeader = { ...base, sha256: digest(JSON.stringify(base), payload) };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(MAGIC.length + 4 + headerBytes.byteLength + payload.byteLength);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.byteLength, true);
  out.set(headerBytes, MAGIC.length + 4);
  out.set(payload, MAGIC.length + 4 + headerBytes.byteLength);
  return out;
}

/** The state in a checkpoint made by this run, or why it cannot be resumed from. */
export function decodeCheckpoint(
  bytes: Uint8Array,
  shape: MlpShape,
  fingerprint: RunFingerprint,
): { state: TrainingState; problem?: undefined } | { state?: undefined; problem: string } {
  if (bytes.byteLength < MAGIC.length + 4 || Buffer.from(bytes.subarray(0, MAGIC.length)).toString('latin1') !== MAGIC) {
    return { problem: 'not a checkpoint of this trainer' };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  const payloadStart = MAGIC.length + 4 + headerLength;
  if (payloadStart > bytes.byteLength) return { problem: 'truncated (incomplete write)' };
  let header: CheckpointHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(MAGIC.length + 4, payloadStart)).toString('utf8')) as CheckpointHeader;
  } catch {
    return { problem: 'unreadable header' };
  }
  if (typeof header !== 'object' || header === null) return { problem: 'unreadable header' };
  if (header.format !== 2) return { problem: `format ${String(header.format)} is not 2` };
  const payload = bytes.subarray(payloadStart);
  if (payload.byteLength !== header.payloadBytes) return { problem: `truncated (${payload.byteLength} of ${header.payloadBytes} payload bytes)` };
  // The header's own fields are covered too: a damaged epoch or shape that still parses is not resumed from.
  const { sha256, ...base } = header;
  if (digest(JSON.stringify(base), payload) !== sha256) return { problem: 'checksum mismatch (incomplete or corrupted write)' };
  if (typeof header.shape !== 'object' || header.shape === null) return { problem: 'header has no model shape' };
  for (const key of new Set([...Object.keys(fingerprint), ...Object.keys(header.fingerprint ?? {})])) {
    const was = header.fingerprint?.[key];
    if (was !== fingerprint[key]) return { problem: `made with ${key}=${String(was)}, this run has ${key}=${String(fingerprint[key])}` };
  }
  if (header.shape.inputs !== shape.inputs || header.shape.hidden !== shape.hidden || header.shape.classes !== shape.classes) {
    return { problem: `made for a ${header.shape.inputs}-${header.shape.hidden}-${header.shape.classes} model` };
  }
  if (payload.byteLength % 4 !== 0) return { problem: 'payload is not float32 values' };
  // Copy out of the (possibly unaligned) payload into fresh arrays.
  const aligned = new Float32Array(new Uint8Array(payload).buffer);
  let offset = 0;
  const take = (n: number): Float32Array => aligned.slice(offset, (offset += n));
  const params = newParams(shape);
  const sizes = tensors(params).map((t) => t.length);
  if (aligned.length !== sizes.reduce((a, b) => a + b, 0) * 3) return { problem: 'payload does not fit the model' };
  tensors(params).forEach((t) => t.set(take(t.length)));
  const m = sizes.map(take);
  const v = sizes.map(take);
  return { state: { epoch: header.epoch, params, optimizer: { step: header.optimizerStep, m, v }, history: header.history } };
}

/** Writes the state after `state.epoch` to its slot; returns the object's URI. */
export async function saveCheckpoint(uri: string, state: TrainingState, shape: MlpShape, fingerprint: RunFingerprint): Promise<string> {
  const { bucket, prefix } = parseS3Prefix(uri, 'CHECKPOINT_URI');
  const key = prefix + slotFor(state.epoch);
  await putBytes(bucket, key, encodeCheckpoint(state, shape, fingerprint), 'application/octet-stream');
  return `s3://${bucket}/${key}`;
}

export interface LoadedCheckpoint {
  /** The newest checkpoint this run can resume from. */
  state?: TrainingState;
  from?: string;
  /** Checkpoints found and passed over, with why (for the log). */
  skipped: string[];
}

/** Reads both slots and picks the newest valid checkpoint of this run. */
export async function loadLatestCheckpoint(uri: string, shape: MlpShape, fingerprint: RunFingerprint): Promise<LoadedCheckpoint> {
  const { bucket, prefix } = parseS3Prefix(uri, 'CHECKPOINT_URI');
  const found = await Promise.all(
    CHECKPOINT_SLOTS.map(async (slot) => ({ uri: `s3://${bucket}/${prefix}${slot}`, bytes: await getBytesIfExists(bucket, prefix + slot) })),
  );
  const result: LoadedCheckpoint = { skipped: [] };
  for (const { uri: objectUri, bytes } of found) {
    if (!bytes) continue;
    const decoded = decodeCheckpoint(bytes, shape, fingerprint);
    if (!decoded.state) result.skipped.push(`${objectUri}: ${decoded.problem}`);
    else if (!result.state || decoded.state.epoch > result.state.epoch) {
      result.state = decoded.state;
      result.from = objectUri;
    }
  }
  return result;
}
