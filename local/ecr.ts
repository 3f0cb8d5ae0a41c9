/**
 * Local ECR for the local mode and the tests: the two calls Prepare makes to read a training image's labels
 * (functions/shared/image-labels.ts), over ECR's JSON protocol as @aws-sdk/client-ecr sends it, on
 * 127.0.0.1 — BatchGetImage (an OCI image manifest) and GetDownloadUrlForLayer (a URL of this server
 * serving the image config blob). Local images are built from nothing but their Dockerfile's final-stage
 * LABELs, so the labels Prepare reads locally are the ones `docker build` would put in the image.
 * Clients find it through AWS_ENDPOINT_URL_ECR.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { parseImageReference } from '../functions/shared/image-labels';
import { listenOnLoopback, readBody } from './http';

export interface LocalEcr {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  stop(): Promise<void>;
}

/** A local image: its labels, or the Dockerfile they are read from. */
export type LocalEcrImage = { labels: Record<string, string> } | { dockerfile: string };

const TARGET_PREFIX = 'AmazonEC2ContainerRegistry_V20150921.';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** What local "pushes" are recorded as: the account of the local run. */
const REGISTRY_ID = '000000000000';

class DockerfileError extends Error {
  override readonly name = 'DockerfileError';
}

/**
 * Splits one shell-like word list as Dockerfile instructions do: single quotes literal, double quotes
 * with `\` escapes, unquoted `\` escapes, words split on blanks. Variables (`$`) are not expanded: the
 * local catalog refuses them rather than reading a different value than `docker build` would.
 */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new DockerfileError('unterminated single quote');
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '$') throw new DockerfileError('variables ($) are not supported in local LABEL values');
        if (text[i] === '\\' && /["\\$]/.test(text[i + 1] ?? '')) i++;
        word += text[i];
      }
      if (i >= text.length) throw new DockerfileError('unterminated double quote');
    } else if (c === '$') {
      throw new DockerfileError('variables ($) are not supported in local LABEL values');
    } else {
      word = (word ?? '') + (c === '\\' && i + 1 < text.length ? text[++i]! : c);
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The labels of a Dockerfile's final stage (`LABEL k=v ...`, continuation lines joined; FROM starts a stage). */
export function dockerfileLabels(text: string): Record<string, string> {
  // Comment lines are dropped before continuation lines are joined, as the Dockerfile parser does.
  const lines = text.split(/\r?\n/).filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\[ \t]*\n/g, '').split('\n');
  let labels: Record<string, string> = {};
  for (const line of lines) {
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const instruction = m[1]!.toUpperCase();
    if (instruction === 'FROM') labels = {};
    if (instruction !== 'LABEL') continue;
    for (const word of shellWords(m[2]!)) {
      const eq = word.indexOf('=');
      if (eq <= 0) throw new DockerfileError(`LABEL ${word.slice(0, 40)}: expected key=value`);
      labels[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return labels;
}

interface StoredImage {
  repository: string;
  tag: string;
  manifest: string;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
}

const sha256 = (data: string | Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A single-platform OCI image with no layers: just the config holding the labels. */
function buildImage(reference: string, image: LocalEcrImage): StoredImage {
  const ref = parseImageReference(reference);
  if (!ref || ref.host !== undefined || ref.digest !== undefined) {
    throw new Error(`local ECR: "${reference}" must be <repository>:<tag>, without a registry host or digest`);
  }
  let labels: Record<string, string>;
  if ('labels' in image) {
    labels = image.labels;
  } else {
    try {
      labels = dockerfileLabels(readFileSync(image.dockerfile, 'utf8'));
    } catch (err) {
      throw new Error(`local ECR: cannot read the labels of ${reference} from ${image.dockerfile}: ${(err as Error).message}`);
    }
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: labels }, rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = sha256(config);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length }, layers: [] });
  return { repository: ref.repository, tag: ref.tag ?? 'latest', manifest, manifestDigest: sha256(manifest), config, configDigest };
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(JSON.stringify(errorType ? { __type: errorType, message: String(body) } : body));
}

/** Starts the local ECR with these images (`<repository>:<tag>` → labels or Dockerfile). */
export async function startLocalEcr(opts: { images: Record<string, LocalEcrImage>; port?: number }): Promise<LocalEcr> {
  const images = Object.entries(opts.images).map(([reference, image]) => buildImage(reference, image));
  const repositories = new Set(images.map((i) => i.repository));
  let endpoint = '';

  const batchGetImage = (req: Record<string, unknown>, res: ServerResponse) => {
    const repository = String(req.repositoryName ?? '');
    if (!repositories.has(repository)) {
      return send(res, 400, `The repository with name '${repository}' does not exist in the registry with id '${REGISTRY_ID}'`, 'RepositoryNotFoundException');
    }
    const accepted = Array.isArray(req.acceptedMediaTypes) ? (req.acceptedMediaTypes as unknown[]) : [OCI_MANIFEST];
    const found: unknown[] = [];
    const failures: unknown[] = [];
    for (const id of Array.isArray(req.imageIds) ? (req.imageIds as Array<{ imageTag?: string; imageDigest?: string }>) : []) {
      const image = images.find((i) => i.repository === repository && (id.imageDigest ? i.manifestDigest === id.imageDigest : i.tag === id.imageTag));
      if (!image || (id.imageTag !== undefined && id.imageDigest !== undefined && image.tag !== id.imageTag)) {
        failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
      } else if (!accepted.includes(OCI_MANIFEST)) {
        failures.push({ imageId: id, failureCode: 'UnsupportedImageType', failureReason: `The image is ${OCI_MANIFEST}` });
      } else {
        found.push({ registryId: REGISTRY_ID, repositoryName: repository, imageId: { imageDigest: image.manifestDigest, imageTag: image.tag }, imageManifest: image.manifest, imageManifestMediaType: OCI_MANIFEST });
      }
    }
    send(res, 200, { images: found, failures });
  };

  const getDownloadUrlForLayer = (req: Record<string, unknown>, res: ServerResponse) => {
    const repository = String(req.repositoryName ?? '');
    if (!repositories.has(repository)) {
      return send(res, 400, `The repository with name '${repository}' does not exist in the registry with id '${REGISTRY_ID}'`, 'RepositoryNotFoundException');
    }
    const digest = String(req.layerDigest ?? '');
    if (!images.some((i) => i.repository === repository && i.configDigest === digest)) {
      return send(res, 400, `The specified layer '${digest}' does not exist in repository '${repository}'`, 'LayersNotFoundException');
    }
    send(res, 200, { downloadUrl: `${endpoint}/v2/${repository}/blobs/${digest}`, layerDigest: digest });
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url?.startsWith('/v2/')) {
        const m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url);
        const blob = m && images.find((i) => i.repository === m[1] && i.configDigest === m[2]);
        if (!blob) return send(res, 404, 'blob unknown', 'BlobUnknown');
        res.writeHead(200, { 'content-type': OCI_CONFIG, 'content-length': String(blob.config.length) });
        return res.end(blob.config);
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) return send(res, 400, 'Expected an ECR JSON request (POST with X-Amz-Target)', 'UnknownOperationException');
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, 'Request body too large', 'ValidationException');
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return send(res, 400, 'The request body is not JSON', 'SerializationException');
      }
      const operation = target.slice(TARGET_PREFIX.length);
      if (operation === 'BatchGetImage') return batchGetImage(request, res);
      if (operation === 'GetDownloadUrlForLayer') return getDownloadUrlForLayer(request, res);
      send(res, 400, `The local ECR does not implement ${operation}`, 'UnknownOperationException');
    })().catch((err: Error) => {
      if (!res.headersSent) send(res, 500, err.message, 'ServerException');
    });
  });
  const listener = await listenOnLoopback(server, opts.port);
  endpoint = listener.endpoint;
  return { endpoint, stop: () => listener.stop() };
}
