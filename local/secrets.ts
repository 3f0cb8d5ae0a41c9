/**
 * Local Secrets Manager for the local run: answers the operations the functions and the CLI send (AWS
 * JSON 1.1, `X-Amz-Target: secretsmanager.<Operation>`) for the secrets of the synthesized template:
 * GetSecretValue (by VersionId and/or VersionStage), DescribeSecret, PutSecretValue (ClientRequestToken,
 * VersionStages), UpdateSecretVersionStage, GetRandomPassword and RotateSecret. Versions carry staging
 * labels as on AWS: moving AWSCURRENT moves AWSPREVIOUS to the version that loses it. A secret the
 * template generates (GenerateSecretString) gets a random value once, of its PasswordLength (AWS's default 32); every version is kept in `file` (mode
 * 0600) so approval links and endpoint tokens stay valid across restarts, as the deployed secret's do.
 *
 * RotateSecret runs a rotation the way Secrets Manager does: a version `ClientRequestToken` labelled
 * AWSPENDING, then the rotation function (`rotation[arn]`, the template's RotationSchedule: the synthesized
 * bundle in the local run) invoked with createSecret, setSecret, testSecret, finishSecret, then AWSPENDING
 * removed. Unlike AWS, the call answers when the rotation is over, with its failure if a step failed (and
 * does not retry it). As on AWS, a failed rotation leaves AWSPENDING on its version, and while AWSPENDING is
 * on a version other than AWSCURRENT a new RotateSecret is refused (InvalidRequestException) until someone
 * removes the label (UpdateSecretVersionStage). RotateImmediately: false is AWS's configuration test: only
 * testSecret runs, on a throwaway AWSPENDING version that is then removed. DescribeSecret has no
 * RotationEnabled for a secret without rotation (AWS returns none for a secret never configured for it).
 * Functions find the store through AWS_ENDPOINT_URL_SECRETS_MANAGER.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { listenOnLoopback, readBody } from './http';
import type { LocalStack } from './lambda/template';

export interface LocalSecret {
  arn: string;
  name: string;
  /** GenerateSecretString's PasswordLength in the template (AWS's default, 32, when it names none). */
  length?: number;
}

/** One step of a rotation: what Secrets Manager sends the rotation function. */
export interface RotationInvocation {
  Step: 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
  SecretId: string;
  ClientRequestToken: string;
}

export interface LocalSecretsManager {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  stop(): Promise<void>;
}

interface Version {
  value?: string;
  stages: string[];
  created: number;
}

/** The file: secret ARN → its versions (a plain string: a store written before versions were kept). */
type Stored = Record<string, string | { versions: Record<string, Version> }>;

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/** Like GenerateSecretString / GetRandomPassword with ExcludePunctuation and no spaces (what the template asks for). */
function generate(length: number, alphabet = ALPHANUMERIC): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 256 - (256 % alphabet.length)) out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
  res.end(JSON.stringify(body));
}

function load(file: string): Record<string, Record<string, Version>> {
  const stored = (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {}) as Stored;
  const out: Record<string, Record<string, Version>> = {};
  for (const [arn, s] of Object.entries(stored)) out[arn] = typeof s === 'string' ? { local: { value: s, stages: ['AWSCURRENT'], created: Date.now() / 1000 } } : s.versions;
  return out;
}

export async function startLocalSecretsManager(opts: {
  secrets: LocalSecret[];
  file: string;
  port?: number;
  /** Secret ARN → its rotation function (RotateSecret invokes it with each step). */
  rotation?: Record<string, (event: RotationInvocation) => Promise<unknown>>;
}): Promise<LocalSecretsManager> {
  mkdirSync(dirname(opts.file), { recursive: true });
  const all = load(opts.file);
  for (const s of opts.secrets) all[s.arn] ??= { [randomUUID()]: { value: generate(s.length ?? 32), stages: ['AWSCURRENT'], created: Date.now() / 1000 } };
  const save = () => writeFileSync(opts.file, JSON.stringify(Object.fromEntries(Object.entries(all).map(([arn, versions]) => [arn, { versions }])), null, 2), { mode: 0o600 });
  save();

  const find = (id: unknown): { secret: LocalSecret; versions: Record<string, Version> } => {
    const secret = opts.secrets.find((s) => s.arn === id || s.name === id);
    const versions = secret ? all[secret.arn] : undefined;
    if (!secret || !versions) throw new ApiError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return { secret, versions };
  };
  /** Puts `stage` on `versionId` alone; moving AWSCURRENT puts AWSPREVIOUS on the version that had it. */
  const label = (versions: Record<string, Version>, stage: string, versionId: string) => {
    const had = Object.entries(versions).find(([, v]) => v.stages.includes(stage))?.[0];
    for (const v of Object.values(versions)) v.stages = v.stages.filter((s) => s !== stage);
    versions[versionId]!.stages.push(stage);
    if (stage === 'AWSCURRENT' && had !== undefined && had !== versionId) label(versions, 'AWSPREVIOUS', had);
  };
  // Versions with no label left are deprecated; AWS keeps about 100, the local store keeps none.
  const prune = (versions: Record<string, Version>) => {
    for (const [id, v] of Object.entries(versions)) if (v.stages.length === 0) delete versions[id];
  };
  const rotating = new Set<string>();

  const operations: Record<string, (input: Record<string, unknown>) => Promise<unknown>> = {
    async GetSecretValue({ SecretId, VersionId, VersionStage }) {
      const { secret, versions } = find(SecretId);
      const stage = VersionStage === undefined && VersionId === undefined ? 'AWSCURRENT' : (VersionStage as string | undefined);
      const entry = Object.entries(versions).find(([id, v]) => (VersionId === undefined || id === VersionId) && (stage === undefined || v.stages.includes(stage)));
      if (!entry || entry[1].value === undefined) {
        throw new ApiError('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for ${VersionId !== undefined ? `VersionId: ${String(VersionId)}` : `staging label: ${String(stage)}`}`);
      }
      return { ARN: secret.arn, Name: secret.name, SecretString: entry[1].value, VersionId: entry[0], VersionStages: entry[1].stages, CreatedDate: entry[1].created };
    },
    async DescribeSecret({ SecretId }) {
      const { secret, versions } = find(SecretId);
      return {
        ARN: secret.arn,
        Name: secret.name,
        ...(opts.rotation?.[secret.arn] !== undefined ? { RotationEnabled: true } : {}),
        VersionIdsToStages: Object.fromEntries(Object.entries(versions).map(([id, v]) => [id, v.stages])),
      };
    },
    async PutSecretValue({ SecretId, ClientRequestToken, SecretString, VersionStages }) {
      const { secret, versions } = find(SecretId);
      if (typeof SecretString !== 'string' || SecretString === '') throw new ApiError('InvalidParameterException', 'You must provide a SecretString.');
      const id = typeof ClientRequestToken === 'string' && ClientRequestToken !== '' ? ClientRequestToken : randomUUID();
      const existing = versions[id];
      if (existing?.value !== undefined && existing.value !== SecretString) {
        throw new ApiError('ResourceExistsException', `A version with VersionId ${id} already exists with a different value.`);
      }
      // The same request again (a retried step): AWS "succeeds but does nothing", labels included.
      if (existing?.value === SecretString) return { ARN: secret.arn, Name: secret.name, VersionId: id, VersionStages: existing.stages };
      versions[id] ??= { stages: [], created: Date.now() / 1000 };
      versions[id].value = SecretString;
      for (const stage of (VersionStages as string[] | undefined) ?? ['AWSCURRENT']) label(versions, stage, id);
      prune(versions);
      save();
      return { ARN: secret.arn, Name: secret.name, VersionId: id, VersionStages: versions[id].stages };
    },
    async UpdateSecretVersionStage({ SecretId, VersionStage, MoveToVersionId, RemoveFromVersionId }) {
      const { secret, versions } = find(SecretId);
      const stage = String(VersionStage);
      const holder = Object.entries(versions).find(([, v]) => v.stages.includes(stage))?.[0];
      if (holder !== undefined && holder !== MoveToVersionId && holder !== RemoveFromVersionId) {
        throw new ApiError('InvalidParameterException', `The staging label ${stage} is currently attached to version ${holder}, so you must explicitly reference that version in RemoveFromVersionId.`);
      }
      if (MoveToVersionId !== undefined) {
        if (!versions[String(MoveToVersionId)]) throw new ApiError('ResourceNotFoundException', `Secrets Manager can't find the specified secret version: ${String(MoveToVersionId)}`);
        label(versions, stage, String(MoveToVersionId));
      } else if (RemoveFromVersionId !== undefined) {
        const v = versions[String(RemoveFromVersionId)];
        if (v) v.stages = v.stages.filter((s) => s !== stage);
      }
      prune(versions);
      save();
      return { ARN: secret.arn, Name: secret.name };
    },
    async GetRandomPassword({ PasswordLength, ExcludePunctuation, IncludeSpace }) {
      const length = PasswordLength === undefined ? 32 : Number(PasswordLength);
      if (!Number.isInteger(length) || length < 1 || length > 4096) throw new ApiError('InvalidParameterException', 'PasswordLength must be between 1 and 4096.');
      return { RandomPassword: generate(length, ALPHANUMERIC + (ExcludePunctuation === true ? '' : PUNCTUATION) + (IncludeSpace === true ? ' ' : '')) };
    },
    async RotateSecret({ SecretId, ClientRequestToken, RotateImmediately }) {
      const { secret, versions } = find(SecretId);
      const rotate = opts.rotation?.[secret.arn];
      if (!rotate) throw new ApiError('InvalidRequestException', `Secret ${secret.name} has no rotation function (the template gives it no RotationSchedule).`);
      // AWS's words: AWSPENDING on a version other than AWSCURRENT means a rotation still in progress.
      const stuck = Object.entries(versions).find(([, v]) => v.stages.includes('AWSPENDING') && !v.stages.includes('AWSCURRENT'));
      if (rotating.has(secret.arn) || stuck) throw new ApiError('InvalidRequestException', "A previous rotation isn't complete. That rotation will be reattempted.");
      const id = typeof ClientRequestToken === 'string' && ClientRequestToken !== '' ? ClientRequestToken : randomUUID();
      if (RotateImmediately === false) {
        // The configuration test: testSecret alone on an AWSPENDING version that is removed afterwards.
        const holder = Object.entries(versions).find(([, v]) => v.stages.includes('AWSPENDING'))?.[0];
        versions[id] ??= { stages: [], created: Date.now() / 1000 };
        label(versions, 'AWSPENDING', id);
        rotating.add(secret.arn);
        try {
          await rotate({ Step: 'testSecret', SecretId: secret.arn, ClientRequestToken: id });
        } catch (err) {
          throw new ApiError('InvalidRequestException', `The rotation configuration test of ${secret.name} failed at testSecret: ${(err as Error).message}`);
        } finally {
          rotating.delete(secret.arn);
          for (const v of Object.values(versions)) v.stages = v.stages.filter((s) => s !== 'AWSPENDING');
          if (holder !== undefined && versions[holder]) versions[holder].stages.push('AWSPENDING');
          prune(versions);
          save();
        }
        return { ARN: secret.arn, Name: secret.name };
      }
      versions[id] ??= { stages: [], created: Date.now() / 1000 };
      label(versions, 'AWSPENDING', id);
      prune(versions);
      save();
      rotating.add(secret.arn);
      try {
        for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
          try {
            await rotate({ Step, SecretId: secret.arn, ClientRequestToken: id });
          } catch (err) {
            throw new ApiError('InvalidRequestException', `The rotation of ${secret.name} failed at ${Step}: ${(err as Error).message}`);
          }
        }
      } finally {
        rotating.delete(secret.arn);
      }
      // As Secrets Manager does once finishSecret succeeded.
      if (versions[id]?.stages.includes('AWSCURRENT')) versions[id].stages = versions[id].stages.filter((s) => s !== 'AWSPENDING');
      save();
      return { ARN: secret.arn, Name: secret.name, VersionId: id };
    },
  };

  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = await readBody(req);
      if (req.method !== 'POST' || body === undefined) return send(res, 400, { __type: 'InvalidRequestException', message: 'Expected a POST with a JSON body.' }, 'InvalidRequestException');
      const operation = target.startsWith('secretsmanager.') ? operations[target.slice('secretsmanager.'.length)] : undefined;
      if (!operation) {
        return send(res, 400, { __type: 'UnknownOperationException', message: `${target || '(no X-Amz-Target)'} is not supported by the local Secrets Manager (only ${Object.keys(operations).join(', ')}).` }, 'UnknownOperationException');
      }
      try {
        send(res, 200, await operation(JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>));
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        send(res, 400, { __type: err.type, message: err.message }, err.type);
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { __type: 'InternalServiceError', message: (err as Error).message }, 'InternalServiceError');
    });
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { endpoint, stop };
}

/** A secret's current value in a local run's store (`file`), undefined when it holds none for `arn`. */
export function readLocalSecret(file: string, arn: string): string | undefined {
  const versions = load(file)[arn];
  return versions ? Object.values(versions).find((v) => v.stages.includes('AWSCURRENT'))?.value : undefined;
}

/** The template's rotation schedules as `rotation` for startLocalSecretsManager: secret ARN → its function, invoked by `invoke`. */
export function rotationFunctions(
  stack: Pick<LocalStack, 'template' | 'findFunction'>,
  secretArnOf: (logicalId: string) => string,
  invoke: (functionArn: string, event: RotationInvocation) => Promise<unknown>,
): Record<string, (event: RotationInvocation) => Promise<unknown>> {
  const out: Record<string, (event: RotationInvocation) => Promise<unknown>> = {};
  for (const [id, r] of Object.entries(stack.template.Resources)) {
    if (r.Type !== 'AWS::SecretsManager::RotationSchedule') continue;
    const props = (r.Properties ?? {}) as { SecretId?: { Ref?: string }; RotationLambdaARN?: { 'Fn::GetAtt'?: [string, string] } };
    const secret = props.SecretId?.Ref;
    const fn = props.RotationLambdaARN?.['Fn::GetAtt']?.[0];
    const found = fn === undefined ? undefined : stack.findFunction(fn);
    if (secret === undefined || !found) throw new Error(`RotationSchedule ${id}: expected SecretId {Ref} and RotationLambdaARN {Fn::GetAtt} of a function of the template.`);
    out[secretArnOf(secret)] = (event) => invoke(found.arn, event);
  }
  return out;
}
