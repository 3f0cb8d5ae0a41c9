/**
 * Local Secrets Manager for the local run: answers GetSecretValue the way @aws-sdk/client-secrets-manager
 * calls it (AWS JSON 1.1, `X-Amz-Target: secretsmanager.GetSecretValue`) for the secrets of the
 * synthesized template. A secret the template generates (GenerateSecretString) gets a random value once,
 * kept in `file` so approval links stay valid across restarts, as the deployed secret does. Functions
 * find it through AWS_ENDPOINT_URL_SECRETS_MANAGER.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { listenOnLoopback, readBody } from './http';

export interface LocalSecret {
  arn: string;
  name: string;
}

export interface LocalSecretsManager {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  stop(): Promise<void>;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Like GenerateSecretString with ExcludePunctuation and no spaces (what the template asks for). */
function generate(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (const b of bytes) {
    if (b < 248) out += ALPHANUMERIC[b % ALPHANUMERIC.length];
    if (out.length === length) break;
  }
  return out;
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
  res.end(JSON.stringify(body));
}

export async function startLocalSecretsManager(opts: { secrets: LocalSecret[]; file: string; port?: number }): Promise<LocalSecretsManager> {
  mkdirSync(dirname(opts.file), { recursive: true });
  const values = (existsSync(opts.file) ? JSON.parse(readFileSync(opts.file, 'utf8')) : {}) as Record<string, string>;
  for (const s of opts.secrets) values[s.arn] ??= generate(64);
  writeFileSync(opts.file, JSON.stringify(values, null, 2), { mode: 0o600 });
  const created = Date.now() / 1000;

  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = await readBody(req);
      if (req.method !== 'POST' || body === undefined) return send(res, 400, { __type: 'InvalidRequestException', message: 'Expected a POST with a JSON body.' }, 'InvalidRequestException');
      if (target !== 'secretsmanager.GetSecretValue') {
        return send(res, 400, { __type: 'UnknownOperationException', message: `${target || '(no X-Amz-Target)'} is not supported by the local Secrets Manager (only GetSecretValue).` }, 'UnknownOperationException');
      }
      const { SecretId, VersionStage } = JSON.parse(body.toString('utf8') || '{}') as { SecretId?: string; VersionStage?: string };
      // Only the current version is kept locally: another label (AWSPENDING: no rotation running) is not found, as on AWS.
      if (VersionStage !== undefined && VersionStage !== 'AWSCURRENT') {
        return send(res, 400, { __type: 'ResourceNotFoundException', message: `Secrets Manager can't find the specified secret value for staging label: ${VersionStage}` }, 'ResourceNotFoundException');
      }
      const secret = opts.secrets.find((s) => s.arn === SecretId || s.name === SecretId);
      const value = secret ? values[secret.arn] : undefined;
      if (!secret || value === undefined) {
        return send(res, 400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }, 'ResourceNotFoundException');
      }
      send(res, 200, { ARN: secret.arn, Name: secret.name, SecretString: value, VersionId: 'local', VersionStages: ['AWSCURRENT'], CreatedDate: created });
    })().catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { __type: 'InternalServiceError', message: (err as Error).message }, 'InternalServiceError');
    });
  });
  const { endpoint, stop } = await listenOnLoopback(server, opts.port);
  return { endpoint, stop };
}

/** A secret's value in a local run's store (`file`), undefined when it holds none for `arn`. */
export function readLocalSecret(file: string, arn: string): string | undefined {
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>)[arn];
}
